"""The held-out rows the report evaluates on, tokenized exactly as the training saw them.

- `val_set_size`: Axolotl tokenizes the training data into its prepared dataset, then
  holds out `train_test_split(test_size=val_set_size, shuffle=False, seed=seed)` of it,
  after `dataset.shard(...)` when dataset_shard_num is set (axolotl.utils.data.sft
  `_handle_train_dataset_split` and shared `create_train_validation_split`). The same
  call on the same prepared dataset (the one train.log says training loaded) gives
  the same rows: the last ones, as shuffle=False means.
- `--eval-data FILE`: Axolotl's own `preprocess` tokenizes the file in the format of
  the config's first dataset into a temporary directory (a child process, as `run`
  preprocesses), so prompts and labels are built by the same chat template code.

Each row keeps Axolotl's `labels` (-100 where no loss is taken: prompts, padding), so
the loss is over the same tokens the training was scored on. `datasets` memory-maps the
Arrow files: rows are read batch by batch, never all into memory.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo_helper.config.read import lax_int
from axo_helper.errors import DatasetError, MissingPathError
from axo_helper.report.missing import Missing
from axo_helper.rundir import PLUGIN, RunDir

IGNORE_INDEX = -100  # the label of a token no loss is taken on (PyTorch's, Axolotl's)

# What Axolotl's training prints when it loads the tokenized data (utils/data/shared.py).
_PREPARED_LINE = re.compile(r"Loading prepared dataset from disk at (\S+?)\.{3}")
_NOT_FOR_PREPROCESS = ("axo_helper_", "eval_", "evals_per_epoch", "load_best_model_at_end")
_DS_TYPES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class HeldOut:
    """Tokenized held-out rows and where they come from."""

    dataset: Any  # datasets.Dataset with input_ids and labels
    source: str  # "val_set_size" or "eval_data"
    description: str
    prepared: Path | None  # the prepared dataset the rows come from (None: a temporary one)

    @property
    def rows(self) -> int:
        return len(self.dataset)


def val_set_size(cfg: Mapping[str, Any]) -> int | float:
    """val_set_size as Axolotl uses it: a row count above 1, a fraction otherwise."""
    raw = cfg.get("val_set_size") or 0
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return 0
    return int(value) if value > 1 else value


def held_out_split(run: RunDir, cfg: Mapping[str, Any]) -> HeldOut:
    """The rows Axolotl held out of training (val_set_size), or Missing saying why none."""
    size = val_set_size(cfg)
    if not size:
        raise Missing(
            "the config holds out no rows (val_set_size is 0"
            + (", it evaluates on test_datasets" if cfg.get("test_datasets") else "")
            + "): pass --eval-data FILE with rows the training did not see"
        )
    prepared = prepared_dataset_dir(run, cfg)
    dataset = _load(prepared)
    shards, index = lax_int(cfg.get("dataset_shard_num")), lax_int(cfg.get("dataset_shard_idx"))
    if shards and index is not None:
        dataset = dataset.shard(num_shards=shards, index=index)
    seed = lax_int(cfg.get("seed"))
    split = dataset.train_test_split(test_size=size, shuffle=False, seed=seed)["test"]
    share = f"{size:g} of the rows" if isinstance(size, float) else f"{size} rows"
    return HeldOut(
        split,
        "val_set_size",
        f"the {len(split):,} rows Axolotl held out of {len(dataset):,} (val_set_size {share}, "
        "the last rows of its prepared dataset), tokenized as in training",
        prepared,
    )


def prepared_dataset_dir(run: RunDir, cfg: Mapping[str, Any]) -> Path:
    """The prepared dataset training loaded: named in train.log, else the only one there."""
    try:
        log = run.train_log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        log = ""
    named = _PREPARED_LINE.findall(log)
    if named:  # a relative path is Axolotl's working directory's: here, or the run's
        for candidate in (Path(named[-1]), run.path / named[-1]):
            if candidate.is_dir():
                return candidate
    root = Path(str(cfg.get("dataset_prepared_path") or run.prepared))
    if not root.is_absolute():
        root = run.path / root if (run.path / root).is_dir() else Path.cwd() / root
    found = sorted(p.parent for p in root.glob("*/state.json")) if root.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise Missing(
        f"cannot tell which prepared dataset the training used ({len(found)} in {root}, "
        f"none named in {run.train_log.name}): pass --eval-data FILE"
    )


def _load(path: Path) -> Any:
    from axo_helper.launch import captured_output

    with captured_output():  # its import's warnings are noise in the demo's terminal
        from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except Exception as exc:  # a half-written or foreign folder: say which
        raise Missing(f"cannot read the prepared dataset {path}: {exc}") from exc
    if "input_ids" not in dataset.column_names or "labels" not in dataset.column_names:
        raise Missing(f"the prepared dataset {path} has no input_ids and labels columns")
    return dataset


# ------------------------------------------------------------------ --eval-data
def eval_data_split(run: RunDir, cfg: Mapping[str, Any], file: Path, workdir: Path) -> HeldOut:
    """`file` tokenized by Axolotl's preprocess in the format of the config's first dataset."""
    from axo_helper.launch import PREPROCESS_MODULE, LaunchSpec, launch_env, run_launch
    from axo_helper.run.logscan import error_summary

    file = Path(file).expanduser().resolve()
    if not file.is_file():
        raise MissingPathError(f"--eval-data {file} does not exist", hint="pass a data file")
    config = workdir / "eval-data.yml"
    config.write_text(_eval_config_text(cfg, file, workdir), encoding="utf-8")
    base = Path(str(cfg.get("base_model") or ""))
    spec = LaunchSpec(
        (sys.executable, "-m", PREPROCESS_MODULE, str(config)),
        launch_env(os.environ, offline=base.is_dir()),
        os.getcwd(),
    )
    log = workdir / "preprocess.log"
    lines: list[str] = []
    if run_launch(spec, log, lines.append) != 0:
        raise DatasetError(
            f"Axolotl could not tokenize {file}: {error_summary(lines[-400:]) or 'see its output'}",
            hint=f"the --eval-data file must be in the format of the first dataset of {run.config}",
        )
    prepared = sorted(p.parent for p in (workdir / "prepared").glob("*/state.json"))
    if not prepared:
        raise DatasetError(f"Axolotl's preprocess wrote no dataset for {file}", hint=f"see {log}")
    dataset = _load(prepared[0])
    return HeldOut(
        dataset,
        "eval_data",
        f"the {len(dataset):,} rows of {file.name} (--eval-data), tokenized by Axolotl "
        "in the training's dataset format",
        None,  # tokenized into a temporary directory, gone after the report
    )


def _eval_config_text(cfg: Mapping[str, Any], file: Path, workdir: Path) -> str:
    """The run's config with `file` as its only dataset, nothing held out, no plugin."""
    import yaml

    datasets = cfg.get("datasets") or [{}]
    entry = {
        k: v
        for k, v in dict(datasets[0]).items()
        if k not in ("data_files", "name", "split", "shards", "revision")
    }
    entry["path"] = str(file)
    entry["ds_type"] = _DS_TYPES.get(file.suffix.lower(), entry.get("ds_type", "json"))
    # Evaluation keys without a split fail Axolotl's validation; the plugin's keys are ours.
    derived = {k: v for k, v in cfg.items() if not str(k).startswith(_NOT_FOR_PREPROCESS)}
    plugins = [p for p in cfg.get("plugins") or [] if p != PLUGIN]
    derived.pop("plugins", None)
    derived.pop("test_datasets", None)
    if plugins:
        derived["plugins"] = plugins
    derived.update(
        datasets=[entry],
        val_set_size=0.0,
        dataset_prepared_path=str(workdir / "prepared"),
        output_dir=str(workdir / "output"),
    )
    return yaml.safe_dump(derived, sort_keys=False)


# ------------------------------------------------------------------ prompts
def prompt_and_reference(
    input_ids: Sequence[int], labels: Sequence[int]
) -> tuple[list[int], list[int]] | None:
    """A row's prompt (every token before the first one trained on) and its reference
    answer (that first run of trained tokens); None for a row with no trained token."""
    start = next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), None)
    if start is None or start == 0:
        return None
    end = start
    while end < len(labels) and labels[end] != IGNORE_INDEX:
        end += 1
    return list(input_ids[:start]), list(input_ids[start:end])
