"""The run directory: the one place that names its files and reads and writes plan.json.

    runs/NAME/
      plan.json       the run record: status, commands, attempts, versions, the plan
      axolotl.yml     the exact config Axolotl ran
      train.log       everything Axolotl printed, every phase and attempt, in order
      output/         Axolotl's output_dir (checkpoints, adapter or weights)
      prepared/       the tokenized dataset (generated configs)
      metrics.jsonl   one line per step, written by the plugin
      metrics.json    the plugin's summary at the end
      adapter/ merged/ Modelfile manifest.json   the export step (.export.lock while it runs)
      gguf/           `export --gguf QUANT`: model-QUANT.gguf, converted from merged/
      report.html     `axo-helper report`: the run's figures and the held-out comparison

plan.json (the record) is written by `run` only, through `write_plan_record`. Its
readers (export's model card, the plugin's calibration) go through `plan_object`,
`predicted_gib` and `data_rows` here, so a key is read where it is really written.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLAN_JSON = "plan.json"
CONFIG_YML = "axolotl.yml"
TRAIN_LOG = "train.log"
OUTPUT = "output"
PREPARED = "prepared"
METRICS_STREAM = "metrics.jsonl"
METRICS_SUMMARY = "metrics.json"
ADAPTER = "adapter"
MERGED = "merged"
MODELFILE = "Modelfile"
MANIFEST = "manifest.json"
EXPORT_LOCK = ".export.lock"
REPORT_HTML = "report.html"
GGUF_DIR = "gguf"
# The exported variants, in the order export builds and lists them.
EXPORT_VARIANTS: tuple[str, ...] = (ADAPTER, MERGED)

# How a config names the run directory to the plugin that writes metrics into it.
PLUGIN = "axo_helper.plugin.AxoHelperPlugin"
PLUGIN_RUN_DIR_KEY = "axo_helper_run_dir"
PLUGIN_PREDICTED_KEY = "axo_helper_predicted_gib"

# Status and paths first, the long plan last: people read the top of the file.
RECORD_ORDER = (
    "status",
    "error",
    "axo_helper_version",
    "created",
    "updated",
    "run_dir",
    "config",
    "source",
    "config_source",
    "changes",
    "inputs",
    "hardware",
    "node_rank",
    "commands",
    "preprocess_seconds",
    "memory",
    "attempts",
    "versions",
    "plan",
)


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (nothing is created)."""

    path: Path

    @property
    def plan_json(self) -> Path:
        return self.path / PLAN_JSON

    @property
    def config(self) -> Path:
        return self.path / CONFIG_YML

    @property
    def train_log(self) -> Path:
        return self.path / TRAIN_LOG

    @property
    def output(self) -> Path:
        return self.path / OUTPUT

    @property
    def prepared(self) -> Path:
        return self.path / PREPARED

    @property
    def metrics_stream(self) -> Path:
        return self.path / METRICS_STREAM

    @property
    def metrics_summary(self) -> Path:
        return self.path / METRICS_SUMMARY

    @property
    def adapter(self) -> Path:
        return self.path / ADAPTER

    @property
    def merged(self) -> Path:
        return self.path / MERGED

    @property
    def modelfile(self) -> Path:
        return self.path / MODELFILE

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    @property
    def export_lock(self) -> Path:
        return self.path / EXPORT_LOCK

    @property
    def report_html(self) -> Path:
        return self.path / REPORT_HTML

    @property
    def gguf_dir(self) -> Path:
        return self.path / GGUF_DIR

    def gguf_file(self, quant: str) -> Path:
        """gguf/model-QUANT.gguf, the quantization's name in lower case."""
        return self.gguf_dir / gguf_name(quant)

    def read_plan_record(self) -> dict[str, Any] | None:
        """plan.json as written, or None when it is missing or not a JSON object."""
        try:
            record = json.loads(self.plan_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def read_config(self) -> dict[str, Any] | None:
        """axolotl.yml as written, or None when it is missing or not a YAML mapping."""
        import yaml

        try:
            cfg = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return None
        return cfg if isinstance(cfg, dict) else None

    def write_plan_record(self, record: Mapping[str, Any]) -> None:
        """Write plan.json atomically, keys in RECORD_ORDER first."""
        from axo_helper.atomic import atomic_write_text

        ordered = {k: record[k] for k in RECORD_ORDER if k in record}
        ordered.update((k, v) for k, v in record.items() if k not in ordered)
        atomic_write_text(self.plan_json, json.dumps(ordered, indent=2, default=str) + "\n")

    def holds_only_a_dry_run(self) -> bool:
        """A dry run's leftovers, which a real run may reuse without --force."""
        record = self.read_plan_record() or {}
        return record.get("status") == "dry-run" and not self.output.exists()


def gguf_name(quant: str) -> str:
    """The file name of one GGUF conversion: model-q8_0.gguf."""
    return f"model-{quant.lower()}.gguf"


def default_run_dir(label: str, now: _dt.datetime | None = None) -> Path:
    """runs/<label>-<YYYYmmdd-HHMMSS>, the label reduced to file-name-safe characters."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")[:60] or "run"
    return Path("runs") / f"{slug}-{stamp}"


def now_iso() -> str:
    """The record's timestamp format (`created`, `updated`)."""
    return _dt.datetime.now().isoformat(timespec="seconds")


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete Trainer checkpoint (checkpoint-N with trainer_state.json)."""
    best: tuple[int, Path] | None = None
    with contextlib.suppress(OSError):
        for child in output_dir.iterdir():
            m = re.fullmatch(r"checkpoint-(\d+)", child.name)
            if m and (child / "trainer_state.json").is_file():
                step = int(m.group(1))
                if best is None or step > best[0]:
                    best = (step, child)
    return best[1] if best else None


# --------------------------------------------------------------------------- reading the record
def plan_object(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The Plan's `plan --json` object (record["plan"]); None for a --config run."""
    plan = record.get("plan") if isinstance(record, Mapping) else None
    return plan if isinstance(plan, dict) else None


def _total_gib(entry: Any) -> float | None:
    mem = entry.get("memory") if isinstance(entry, Mapping) else None
    value = mem.get("total_gib") if isinstance(mem, Mapping) else None
    # JSON allows Infinity and NaN; neither is a prediction a measurement can be held to.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value) if math.isfinite(value) else None
    return None


def predicted_gib(record: Mapping[str, Any] | None) -> float | None:
    """The predicted peak the training ran under, in GiB.

    After an OOM re-plan the last attempt's estimate is the one that ran, so it wins;
    then the record's `memory` (the config as it runs now), then the plan's.
    """
    if not isinstance(record, Mapping):
        return None
    attempts = record.get("attempts")
    for attempt in reversed(attempts if isinstance(attempts, list) else []):
        if (found := _total_gib(attempt)) is not None:
            return found
    return _total_gib(record) or _total_gib(plan_object(record))


def data_rows(record: Mapping[str, Any] | None) -> int | None:
    """Rows of the planned dataset (inputs.data_rows); None for a --config run."""
    inputs = record.get("inputs") if isinstance(record, Mapping) else None
    rows = inputs.get("data_rows") if isinstance(inputs, Mapping) else None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


# --------------------------------------------------------------------------- a copied run directory
# The config keys `run` writes as absolute paths inside the run directory.
RUN_PATH_KEYS = (
    "output_dir",
    PLUGIN_RUN_DIR_KEY,
    "dataset_prepared_path",
    "deepspeed",
    "resume_from_checkpoint",
)


def config_run_dir(cfg: Mapping[str, Any]) -> Path | None:
    """The run directory a config was written for: axo_helper_run_dir, else output/'s parent."""
    named = cfg.get(PLUGIN_RUN_DIR_KEY)
    if isinstance(named, str) and Path(named).is_absolute():
        return Path(named)
    out = cfg.get("output_dir")
    if isinstance(out, str) and Path(out).is_absolute() and Path(out).name == OUTPUT:
        return Path(out).parent
    return None


def rebound_paths(run_dir: Path, cfg: Mapping[str, Any]) -> dict[str, str]:
    """The path keys of cfg that point into another run directory, mapped into run_dir.

    A run directory copied (`cp -a runs/A runs/B`) or moved keeps A's absolute paths in
    its axolotl.yml; B's own files are the same paths under B. {} when cfg is B's own.
    """
    origin = config_run_dir(cfg)
    here = Path(run_dir).resolve()
    if origin is None or _same(origin, here):
        return {}
    changes: dict[str, str] = {}
    for key in RUN_PATH_KEYS:
        value = cfg.get(key)
        if not isinstance(value, str) or not Path(value).is_absolute():
            continue
        p = Path(value)
        if p == origin or origin in p.parents:
            changes[key] = str(here / p.relative_to(origin))
    return changes


def _same(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return a.samefile(b)
    return a.resolve() == b.resolve()
