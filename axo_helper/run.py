"""`axo-helper run`: plan -> render -> validate -> run directory -> preprocess -> train -> export.

    runs/NAME/
      plan.json     the plan (or the hand-written config's estimate), versions, commands,
                    every attempt with its micro batch, outcome and reason, the status
      axolotl.yml   the exact config Axolotl ran (a --config file as written, plus the
                    bookkeeping keys listed in plan.json "changes")
      train.log     everything Axolotl printed, every phase and attempt, in order
      output/       Axolotl's output_dir (checkpoints, adapter or weights)
      prepared/     the tokenized dataset (generated configs)
      metrics.jsonl / metrics.json   written by the plugin (axo_helper/plugin.py)

Everything that decides is a plain function here (which micro batch next, whether a
log shows an OOM, how a config line is rewritten); `start_run` strings them
together and is the only caller of launch.run_launch. Torch, transformers and
Axolotl are never imported in this process: Axolotl runs as a child.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import importlib.util
import json
import re
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml

from axo_helper import __version__
from axo_helper import launch as launch_mod
from axo_helper.errors import (
    EXIT_FAILURE,
    AxoHelperError,
    ConfigError,
    DatasetError,
    MissingExtraError,
    OutputExistsError,
    UsageError,
)
from axo_helper.launch import LaunchSpec, LaunchTarget
from axo_helper.progress import ProgressDisplay, ProgressState

PLAN_JSON = "plan.json"
CONFIG_YML = "axolotl.yml"
TRAIN_LOG = "train.log"
OUTPUT = "output"
PREPARED = "prepared"
METRICS_STREAM = "metrics.jsonl"
PLUGIN = "axo_helper.plugin.AxoHelperPlugin"
PLUGIN_RUN_DIR_KEY = "axo_helper_run_dir"
DEFAULT_MAX_ATTEMPTS = 3
EXIT_INTERRUPTED = 130

Status = Literal[
    "dry-run", "prepared", "preprocessing", "running", "finished", "failed", "interrupted"
]

# What CUDA (and ROCm) print when the caching allocator gives up.
_OOM = re.compile(
    r"CUDA out of memory|OutOfMemoryError|HIP out of memory|CUBLAS_STATUS_ALLOC_FAILED"
)
# A Python exception line at the start of a line: "ValueError: ...", "pkg.mod.Error: ...".
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Invalid)\b:?.*")
_ROW = re.compile(r"\b(?:in )?row \d+|\bline \d+|\bindex \d+", re.I)


# --------------------------------------------------------------------------- request/result
@dataclass(frozen=True)
class RunRequest:
    """Everything `axo-helper run` (and the demo) can ask for."""

    plan_kwargs: Mapping[str, Any] | None = None  # core.make_plan's keyword arguments
    config: Path | None = None  # --config FILE (mutually exclusive with plan_kwargs)
    resume: Path | None = None  # --resume RUN_DIR
    output_dir: Path | None = None
    force: bool = False
    dry_run: bool = False
    max_steps: int | None = None
    fit: bool = False
    gpu: str = "auto"  # --config runs: the hardware to check the fit against
    nodes: int = 1
    node_rank: int | None = None
    master_addr: str | None = None
    master_port: int = launch_mod.DEFAULT_MASTER_PORT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    export: bool = True
    allow_cpu: bool = False  # plan for CPU when --gpu auto finds no GPU (the demo)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # extra top-level keys
    python: str = sys.executable
    quiet: bool = False


@dataclass
class Attempt:
    number: int
    micro_batch_size: int
    gradient_accumulation_steps: int
    gradient_checkpointing: bool
    resumed_from: str | None
    command: str
    exit_code: int | None = None
    outcome: str = "running"  # finished | oom | failed | interrupted
    reason: str | None = None
    seconds: float | None = None
    memory_total_gib: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["effective_batch_per_gpu"] = self.micro_batch_size * self.gradient_accumulation_steps
        # The plugin looks for memory.total_gib in the last attempt (plugin._find_total_gib).
        total = d.pop("memory_total_gib")
        d["memory"] = {"total_gib": total} if total is not None else None
        return d


@dataclass
class RunResult:
    run_dir: Path
    config_path: Path
    status: Status
    exit_code: int
    commands: list[str]
    attempts: list[Attempt] = field(default_factory=list)
    progress: ProgressState | None = None
    export: Any = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "config": str(self.config_path),
            "status": self.status,
            "exit_code": self.exit_code,
            "commands": self.commands,
            "attempts": [a.as_dict() for a in self.attempts],
            "progress": self.progress.as_dict() if self.progress else None,
            "output_dir": str(self.run_dir / OUTPUT),
            "export": _jsonable(self.export),
            "message": self.message,
            "warnings": self.warnings,
        }


# --------------------------------------------------------------------------- pure helpers
def smaller_batch(micro_batch: int, accumulation: int) -> tuple[int, int] | None:
    """The next smaller micro batch that keeps micro x accumulation exactly; None at 1.

    Halves an even micro batch (doubling accumulation, as an operator would);
    otherwise takes the largest divisor of the per-GPU batch below the micro batch.
    """
    if micro_batch <= 1:
        return None
    per_gpu = micro_batch * max(1, accumulation)
    if micro_batch % 2 == 0:
        return micro_batch // 2, per_gpu // (micro_batch // 2)
    for candidate in range(micro_batch - 1, 0, -1):
        if per_gpu % candidate == 0:
            return candidate, per_gpu // candidate
    return None  # unreachable: 1 always divides


def looks_like_oom(lines: list[str]) -> bool:
    return any(_OOM.search(line) for line in lines)


def error_summary(lines: list[str]) -> str | None:
    """The last exception line of a failed child, plus a line naming a row if any."""
    exception = None
    for line in reversed(lines):
        stripped = line.strip()
        if _EXCEPTION.match(stripped) and not stripped.startswith("Traceback"):
            exception = stripped
            break
    rows = [ln.strip() for ln in lines if _ROW.search(ln) and ("rror" in ln or "JSON" in ln)]
    parts = [p for p in (exception, rows[-1] if rows else None) if p]
    if not parts:
        return None
    # Keep the message short: an exception line can carry a whole row of data.
    return " / ".join(dict.fromkeys(p[:400] for p in parts))


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


def _yaml_value(value: Any) -> str:
    from axo_helper.render import yaml_value

    return yaml_value(value)


def set_top_level(text: str, changes: Mapping[str, Any], note: str) -> str:
    """Set top-level keys of a YAML config, keeping every other line and comment.

    A key already present has its line replaced (a block value under it is removed);
    a new key is appended. Each changed line carries `# note`. The result is parsed
    back and must equal the original mapping with the changes; otherwise (a layout
    this editor cannot follow, such as anchors) the mapping is dumped plainly with a
    comment saying so, never a wrong file.
    """
    original = yaml.safe_load(text) or {}
    lines = text.splitlines()
    for key, value in changes.items():
        new_line = f"{key}: {_yaml_value(value)}  # {note}"
        pattern = re.compile(rf"^{re.escape(key)}\s*:(.*)$")
        index = next((i for i, ln in enumerate(lines) if pattern.match(ln)), None)
        if index is None:
            lines.append(new_line)
            continue
        end = index + 1
        rest = pattern.match(lines[index]).group(1)  # type: ignore[union-attr]
        if not rest.split("#", 1)[0].strip() or rest.strip().startswith(("|", ">")):
            # A block value: drop its indented (or blank) continuation lines.
            while end < len(lines) and (
                not lines[end].strip() or lines[end][:1] in (" ", "\t", "-")
            ):
                end += 1
            # Blank lines that separated sections belong after the new line.
            while end > index + 1 and not lines[end - 1].strip():
                end -= 1
        lines[index:end] = [new_line]
    result = "\n".join(lines) + "\n"
    expected = {**original, **changes}
    try:
        ok = yaml.safe_load(result) == expected
    except yaml.YAMLError:
        ok = False
    if not ok:
        result = (
            f"# rewritten by axo-helper ({note}); the original layout could not be kept\n"
            + yaml.safe_dump(expected, sort_keys=False, allow_unicode=True)
        )
    return result


def inputs_are_local(cfg: Mapping[str, Any], cwd: Path) -> bool:
    """True when the model, tokenizer and every dataset are local paths (HF_HUB_OFFLINE=1)."""

    def local(value: Any) -> bool:
        if not isinstance(value, str) or not value:
            return False
        p = Path(value).expanduser()
        return (p if p.is_absolute() else cwd / p).exists()

    if not local(cfg.get("base_model")):
        return False
    for key in ("base_model_config", "tokenizer_config"):
        if cfg.get(key) and not local(cfg.get(key)):
            return False
    if cfg.get("pretraining_dataset"):
        return False
    datasets = cfg.get("datasets") or []
    if not isinstance(datasets, list):
        return False
    for entry in datasets:
        if not isinstance(entry, Mapping) or not local(entry.get("path")):
            return False
    return True


def default_run_dir(label: str, now: _dt.datetime | None = None) -> Path:
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")[:60] or "run"
    return Path("runs") / f"{slug}-{stamp}"


def versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (nothing is imported)."""
    out: dict[str, str | None] = {"axo-helper": __version__}
    for dist in ("axolotl", "torch", "transformers", "peft", "accelerate", "deepspeed"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def axolotl_installed() -> bool:
    """Axolotl importable by this interpreter (found, not imported: importing takes ~10 s)."""
    return importlib.util.find_spec("axolotl") is not None


def plugin_available() -> bool:
    return importlib.util.find_spec("axo_helper.plugin") is not None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    try:
        json.dumps(value)
        return value
    except TypeError:
        if hasattr(value, "__dict__"):
            return {k: _jsonable(v) for k, v in vars(value).items()}
        return str(value)


def _batch_of(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """(micro_batch_size, gradient_accumulation_steps) as Axolotl will use them."""

    def positive(key: str) -> int | None:
        value = cfg.get(key)
        return (
            int(value)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0
            else None
        )

    mb = positive("micro_batch_size") or 1
    ga = positive("gradient_accumulation_steps")
    if ga is None:
        bs = positive("batch_size")
        ga = max(1, bs // mb) if bs else 1
    return mb, ga


_RECORD_ORDER = (
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
_PHASES = {
    "preprocess": "preprocessing the dataset (axolotl preprocess) ...",
    "train": "training (axolotl train) ...",
}


# --------------------------------------------------------------------------- the run
class _Run:
    """One `run` invocation: owns the run directory and plan.json."""

    def __init__(self, req: RunRequest, display: ProgressDisplay | None):
        self.req = req
        self.display = display
        self.run_dir = Path()
        self.record: dict[str, Any] = {}
        self.attempts: list[Attempt] = []
        self.warnings: list[str] = []
        self.hardware: Any = None
        self.model_spec: Any = None

    # ------------------------------------------------------------------ messages
    def say(self, message: str) -> None:
        if not self.req.quiet:
            from axo_helper.output import info

            info(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if not self.req.quiet:
            from axo_helper.output import warn

            warn(message)

    # ------------------------------------------------------------------ plan.json
    def save_record(self, **updates: Any) -> None:
        from axo_helper.atomic import atomic_write_text

        self.record.update(updates)
        self.record["attempts"] = [a.as_dict() for a in self.attempts]
        self.record["updated"] = _dt.datetime.now().isoformat(timespec="seconds")
        # Status and paths first, the long plan last: people read the top of the file.
        ordered = {k: self.record[k] for k in _RECORD_ORDER if k in self.record}
        ordered.update((k, v) for k, v in self.record.items() if k not in ordered)
        atomic_write_text(
            self.run_dir / PLAN_JSON, json.dumps(ordered, indent=2, default=str) + "\n"
        )

    # ------------------------------------------------------------------ run directory
    def claim_run_dir(self, run_dir: Path) -> None:
        """Refuse an existing run directory unless --force (or a dry run's leftovers)."""
        self.run_dir = run_dir
        if not run_dir.exists():
            return
        if not run_dir.is_dir():
            raise OutputExistsError(f"{run_dir} exists and is not a directory")
        if not any(run_dir.iterdir()):
            return
        if self._only_a_dry_run(run_dir):
            return
        if not self.req.force:
            raise OutputExistsError(
                f"{run_dir} already holds a run",
                hint=f"continue it with --resume {run_dir}, pick another --output-dir, "
                "or pass --force to replace it",
            )

    @staticmethod
    def _only_a_dry_run(run_dir: Path) -> bool:
        try:
            record = json.loads((run_dir / PLAN_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return record.get("status") == "dry-run" and not (run_dir / OUTPUT).exists()

    def reset_run_dir(self) -> None:
        """Called only after the new config rendered and validated: then --force may clear."""
        if self.run_dir.exists() and any(self.run_dir.iterdir()):
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ config
    def from_plan(self) -> tuple[str, dict[str, Any], str | None, LaunchTarget]:
        """Plan and render: (yaml text, parsed config, deepspeed json, launch target)."""
        from axo_helper.core import make_plan
        from axo_helper.launch import target_of
        from axo_helper.render import render_plan

        kwargs = dict(self.req.plan_kwargs or {})
        if not kwargs.get("model"):
            raise UsageError("--model is required (or pass --config FILE or --resume RUN_DIR)")
        if not kwargs.get("data"):
            raise UsageError("run needs --data PATH: the dataset to train on")
        kwargs.setdefault("allow_cpu", self.req.allow_cpu)
        plan = make_plan(**kwargs)
        for message in plan.warnings:
            self.warn(message)
        self.hardware = plan.hardware
        self.model_spec = plan.model
        if self.req.output_dir is not None:
            run_dir = Path(self.req.output_dir)
        else:
            run_dir = default_run_dir(f"{Path(plan.model.name).name}-{plan.method}")
        self.claim_run_dir(run_dir)
        abs_dir = self.run_dir.resolve()
        ds_path = None
        if plan.setup.distributed in ("zero1", "zero2", "zero3"):
            from axo_helper.render import deepspeed_filename

            # Absolute: Axolotl resolves `deepspeed:` against its working directory.
            ds_path = str(
                abs_dir / deepspeed_filename(plan.setup.distributed, plan.setup.cpu_offload)
            )
        overrides = dict(self.req.overrides)
        if self.req.max_steps is not None:
            overrides["max_steps"] = self.req.max_steps
        assert plan.data is not None  # make_plan was given data
        rendered = render_plan(
            plan,
            output_dir=str(abs_dir / OUTPUT),
            dataset_path=str(Path(plan.data.path).resolve()),
            run_dir=str(abs_dir) if plugin_available() else None,
            dataset_prepared_path=str(abs_dir / PREPARED),
            deepspeed_path=ds_path,
            config_name=str(self.run_dir / CONFIG_YML),
            overrides=overrides or None,
        )
        for message in rendered.warnings:
            if message not in plan.warnings:
                self.warn(message)
        self.record.update(
            source="plan",
            plan=plan.to_json(),
            memory=plan.to_json()["memory"],
            inputs={"model": plan.model.name, "data": str(Path(plan.data.path).resolve())},
        )
        return rendered.yaml_text, rendered.config, rendered.deepspeed_json, target_of(plan)

    def from_config(self) -> tuple[str, dict[str, Any], str | None, LaunchTarget]:
        """A hand-edited config: re-validate, warn on fit (or --fit), keep it as written."""
        from axo_helper import hardware as hardware_mod
        from axo_helper.validate import validate_text

        path = Path(self.req.config)  # type: ignore[arg-type]
        if not path.is_file():
            raise UsageError(
                f"config file {path} does not exist"
                if not path.exists()
                else f"{path} is not a file",
                hint="pass the path of an Axolotl YAML, e.g. one written by `axo-helper render`",
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        try:
            hardware = hardware_mod.resolve(self.req.gpu, nodes=self.req.nodes, allow_cpu=True)
        except AxoHelperError as exc:
            self.warn(f"memory fit not checked: {exc.message}")
            hardware = None
        self.hardware = hardware
        report = validate_text(
            text, source=str(path), config_dir=path.parent, hardware=hardware, run_axolotl=False
        )
        if report.errors:
            lines = "\n".join(f"  {e.format()}" for e in report.errors)
            raise ConfigError(
                f"{path} is not a valid Axolotl config ({len(report.errors)} "
                f"problem{'s' if len(report.errors) > 1 else ''}):\n{lines}",
                hint=f"fix them, or check with: axo-helper validate {path}",
            )
        for w in report.warnings:
            self.warn(f"{path}: {w.format()}")
        cfg: dict[str, Any] = dict(report.config or {})
        changes: dict[str, Any] = {}
        notes: list[str] = []

        memory = report.memory
        if memory is not None and not memory.fits:
            if self.req.fit:
                fitted = self._fit(cfg, hardware)
                if fitted is None:
                    self.warn(
                        f"--fit: {memory.summary()}; no smaller micro batch fits, running as written"
                    )
                else:
                    (mb, ga), total = fitted
                    old_mb, old_ga = _batch_of(cfg)
                    changes.update(micro_batch_size=mb, gradient_accumulation_steps=ga)
                    notes.append(
                        f"--fit: micro_batch_size {old_mb} -> {mb}, gradient_accumulation_steps "
                        f"{old_ga} -> {ga} (same {mb * ga} samples per GPU per step); "
                        f"predicted {total:.1f} of {memory.budget_gib:.1f} GiB"
                    )
                    self.say(notes[-1])
            else:
                self.warn(
                    f"{memory.summary()} on {memory.gpu}; running it as written "
                    "(pass --fit to lower micro_batch_size and keep the effective batch)"
                )
        elif memory is not None:
            self.say(f"memory: {memory.summary()} on {memory.gpu}")

        label = path.stem
        run_dir = Path(self.req.output_dir) if self.req.output_dir else default_run_dir(label)
        self.claim_run_dir(run_dir)
        abs_dir = self.run_dir.resolve()
        # Bookkeeping so the run directory is complete; recorded in plan.json "changes".
        changes["output_dir"] = str(abs_dir / OUTPUT)
        notes.append(f"output_dir -> {abs_dir / OUTPUT} (was {cfg.get('output_dir')!r})")
        ds = cfg.get("deepspeed")
        if isinstance(ds, str) and not Path(ds).is_absolute() and not Path(ds).exists():
            beside = (path.parent / ds).resolve()
            if beside.exists():
                changes["deepspeed"] = str(beside)
                notes.append(
                    f"deepspeed -> {beside} (relative to the config, not the working directory)"
                )
        if plugin_available():
            plugins = list(cfg.get("plugins") or [])
            if PLUGIN not in plugins:
                changes["plugins"] = [*plugins, PLUGIN]
            changes[PLUGIN_RUN_DIR_KEY] = str(abs_dir)
            notes.append("plugins += axo-helper's plugin (metrics.jsonl), axo_helper_run_dir set")
        if self.req.max_steps is not None:
            changes["max_steps"] = self.req.max_steps
            notes.append(f"max_steps -> {self.req.max_steps} (--max-steps)")
        changes.update(self.req.overrides)
        new_text = set_top_level(text, changes, "set by axo-helper run") if changes else text
        cfg.update(changes)

        num_gpus = hardware.num_gpus if hardware is not None else 0
        target = LaunchTarget(
            gpus_per_node=num_gpus,
            nodes=self.req.nodes,
            distributed=memory.setup.distributed if memory and memory.setup else "none",
            offline=inputs_are_local(cfg, Path.cwd()),
        )
        self.record.update(
            source="config",
            config_source=str(path.resolve()),
            plan=None,
            memory=memory.as_dict() if memory else None,
            changes=notes,
            inputs={
                "model": cfg.get("base_model"),
                "data": [
                    d.get("path") for d in cfg.get("datasets") or [] if isinstance(d, Mapping)
                ],
            },
        )
        return new_text, cfg, None, target

    def _fit(self, cfg: Mapping[str, Any], hardware: Any) -> tuple[tuple[int, int], float] | None:
        """The largest smaller micro batch (same effective batch) that the estimate fits."""
        from axo_helper.validate import memory_check

        mb, ga = _batch_of(cfg)
        while True:
            nxt = smaller_batch(mb, ga)
            if nxt is None:
                return None
            mb, ga = nxt
            check = memory_check(
                {**cfg, "micro_batch_size": mb, "gradient_accumulation_steps": ga}, hardware
            )
            if check.fits:
                return (mb, ga), check.breakdown.total_gib

    # ------------------------------------------------------------------ estimates
    def estimate_gib(self, cfg: Mapping[str, Any]) -> float | None:
        """The predicted peak for cfg as it will run now (recorded with each attempt)."""
        if self.hardware is None or getattr(self.hardware, "is_cpu", True):
            return None
        try:
            from axo_helper.validate import memory_check

            return float(
                memory_check(cfg, self.hardware, model=self.model_spec).breakdown.total_gib
            )
        except Exception:  # an estimate is bookkeeping here; never fail a run over it
            return None

    # ------------------------------------------------------------------ running
    def launch_specs(self, target: LaunchTarget, config_path: Path) -> list[LaunchSpec]:
        return launch_mod.build_launch(
            target,
            config_path,
            node_rank=self.req.node_rank,
            master_addr=self.req.master_addr,
            master_port=self.req.master_port,
            python=self.req.python,
        )

    def run_child(
        self,
        spec: LaunchSpec,
        phase: str,
        tail: deque[str],
        watch: Callable[[str], None] | None = None,
    ) -> int:
        header = f"\n=== axo-helper {phase}: {launch_mod.format_command(spec)}\n"
        display = self.display

        def on_line(line: str) -> None:
            tail.append(line)
            if watch is not None:
                watch(line)
            if display is not None:
                display.on_line(line)

        if display is not None:
            display.watch_metrics(self.run_dir / METRICS_STREAM)
            display.start(_PHASES.get(phase, f"{phase} ..."))
        try:
            return launch_mod.run_launch(spec, self.run_dir / TRAIN_LOG, on_line, header=header)
        finally:
            if display is not None:
                display.stop()


def _check_axolotl(req: RunRequest) -> None:
    if not req.dry_run and req.python == sys.executable and not axolotl_installed():
        raise MissingExtraError("axo-helper run")


def start_run(req: RunRequest, display: ProgressDisplay | None = None) -> RunResult:
    """Do the whole run; return its result. Raises AxoHelperError for bad input.

    A training failure is not raised: it comes back as status "failed" with
    Axolotl's exit code (the CLI passes it through), after plan.json says why.
    """
    planned = bool(req.plan_kwargs and req.plan_kwargs.get("model"))
    if planned + (req.config is not None) + (req.resume is not None) > 1:
        raise UsageError("pass only one of --model (plan a run), --config FILE or --resume RUN_DIR")
    if req.max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")
    if req.max_steps is not None and req.max_steps < 1:
        raise UsageError("--max-steps must be at least 1")
    _check_axolotl(req)
    run = _Run(req, display)
    if req.resume is not None:
        return _resume(run)

    if req.config is not None:
        text, cfg, ds_json, target = run.from_config()
    else:
        text, cfg, ds_json, target = run.from_plan()

    specs = run.launch_specs(target, run.run_dir.resolve() / CONFIG_YML)
    if len(specs) > 1 and not req.dry_run:
        raise UsageError(
            f"a run on {target.nodes} nodes is started once per node",
            hint="run the same command on every node with --node-rank 0..."
            f"{target.nodes - 1} (see --dry-run for each node's command)",
        )
    # Validated and launchable: only now may --force clear an old run.
    run.reset_run_dir()
    from axo_helper.atomic import atomic_write_text

    if ds_json is not None:
        ds_file = Path(str(cfg["deepspeed"]))
        atomic_write_text(ds_file, ds_json)
    atomic_write_text(run.run_dir / CONFIG_YML, text)
    commands = [launch_mod.format_command(s) for s in specs]
    pre = launch_mod.preprocess_launch(specs[0], run.run_dir.resolve() / CONFIG_YML)
    run.record.update(
        {
            "axo_helper_version": __version__,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "run_dir": str(run.run_dir.resolve()),
            "config": str(run.run_dir.resolve() / CONFIG_YML),
            "hardware": run.hardware.describe() if run.hardware is not None else None,
            "versions": versions(),
            "commands": {"preprocess": launch_mod.format_command(pre), "train": commands},
            "node_rank": req.node_rank,
        }
    )
    result = RunResult(
        run.run_dir,
        run.run_dir / CONFIG_YML,
        "prepared",
        0,
        commands,
        run.attempts,
        warnings=run.warnings,
    )
    if req.dry_run:
        run.save_record(status="dry-run")
        result.status = "dry-run"
        return result

    run.save_record(status="preprocessing")
    _preprocess(run, pre, cfg)
    return _train(run, target, cfg, text, result, resume_from=None)


def _preprocess(run: _Run, spec: LaunchSpec, cfg: Mapping[str, Any]) -> None:
    """`axolotl preprocess`: dataset problems surface here, before any GPU time."""
    tail: deque[str] = deque(maxlen=400)
    started = time.monotonic()
    rc = run.run_child(spec, "preprocess", tail)
    run.record["preprocess_seconds"] = round(time.monotonic() - started, 1)
    if launch_mod.interrupted():
        run.save_record(status="interrupted")
        raise AxoHelperError("interrupted while preprocessing", exit_code=EXIT_INTERRUPTED)
    if rc == 0:
        return
    lines = list(tail)
    summary = error_summary(lines) or f"exit code {rc}"
    detail = _dataset_detail(cfg)
    run.save_record(status="failed", error=f"preprocess: {summary}")
    message = f"Axolotl could not prepare the dataset: {summary}"
    if detail:
        message += f"\n  {detail}"
    raise DatasetError(
        message,
        hint=f"fix the dataset or the datasets: block of {run.run_dir / CONFIG_YML}; "
        f"the full output is in {run.run_dir / TRAIN_LOG}",
    )


def _dataset_detail(cfg: Mapping[str, Any]) -> str | None:
    """Our own scan of each local dataset, which names the offending row when it finds one."""
    from axo_helper import dataset as dataset_mod

    for entry in cfg.get("datasets") or []:
        if not isinstance(entry, Mapping):
            continue
        path = entry.get("path")
        if isinstance(path, str) and Path(path).exists():
            try:
                dataset_mod.inspect(path, max_token_rows=1)
            except AxoHelperError as exc:
                return str(exc.message)
    return None


def _resume(run: _Run) -> RunResult:
    req = run.req
    run_dir = Path(req.resume)  # type: ignore[arg-type]
    config_path = run_dir / CONFIG_YML
    if not config_path.is_file():
        raise UsageError(
            f"{run_dir} is not an axo-helper run directory (no {CONFIG_YML})",
            hint="pass the directory `axo-helper run` created, e.g. runs/NAME",
        )
    run.run_dir = run_dir
    try:
        run.record = json.loads((run_dir / PLAN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run.record = {}
    run.attempts = [_attempt_from_dict(a) for a in run.record.get("attempts") or []]
    text = config_path.read_text(encoding="utf-8")
    from axo_helper.validate import parse_config

    cfg, _ = parse_config(text, str(config_path))
    from axo_helper import hardware as hardware_mod

    with contextlib.suppress(AxoHelperError):
        run.hardware = hardware_mod.resolve(req.gpu, nodes=req.nodes, allow_cpu=True)
    changes: dict[str, Any] = {}
    if req.max_steps is not None:
        changes["max_steps"] = req.max_steps
    if changes:
        text = set_top_level(text, changes, "set by axo-helper run --resume")
        cfg.update(changes)
        config_path.write_text(text, encoding="utf-8")
    hw = run.hardware
    target = LaunchTarget(
        gpus_per_node=hw.num_gpus if hw is not None else 0,
        nodes=req.nodes,
        offline=inputs_are_local(cfg, Path.cwd()),
    )
    specs = run.launch_specs(target, config_path.resolve())
    commands = [launch_mod.format_command(s) for s in specs]
    result = RunResult(
        run_dir, config_path, "prepared", 0, commands, run.attempts, warnings=run.warnings
    )
    output_dir = Path(str(cfg.get("output_dir") or run_dir / OUTPUT))
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        run.warn(f"no checkpoint in {output_dir}: training starts from the beginning")
    if req.dry_run:
        result.status = "dry-run"
        return result
    return _train(run, target, cfg, text, result, resume_from=checkpoint)


def _attempt_from_dict(d: Mapping[str, Any]) -> Attempt:
    fields: dict[str, Any] = {k: d.get(k) for k in Attempt.__dataclass_fields__}
    mem = d.get("memory")
    fields["memory_total_gib"] = mem.get("total_gib") if isinstance(mem, Mapping) else None
    return Attempt(**fields)


def _train(
    run: _Run,
    target: LaunchTarget,
    cfg: dict[str, Any],
    text: str,
    result: RunResult,
    *,
    resume_from: Path | None,
) -> RunResult:
    """Train, retrying after CUDA OOM with a smaller micro batch (same effective batch)."""
    req = run.req
    config_path = run.run_dir / CONFIG_YML
    output_dir = Path(str(cfg.get("output_dir") or run.run_dir / OUTPUT))
    first = len(run.attempts) + 1
    for number in range(first, first + req.max_attempts):
        changes: dict[str, Any] = {}
        if resume_from is not None:
            changes["resume_from_checkpoint"] = str(resume_from.resolve())
        if changes:
            text = set_top_level(text, changes, f"set by axo-helper run (attempt {number})")
            cfg.update(changes)
            config_path.write_text(text, encoding="utf-8")
        mb, ga = _batch_of(cfg)
        specs = run.launch_specs(target, config_path.resolve())
        spec = specs[0]
        attempt = Attempt(
            number=number,
            micro_batch_size=mb,
            gradient_accumulation_steps=ga,
            gradient_checkpointing=bool(cfg.get("gradient_checkpointing")),
            resumed_from=str(resume_from) if resume_from else None,
            command=launch_mod.format_command(spec),
            memory_total_gib=run.estimate_gib(cfg),
        )
        run.attempts.append(attempt)
        if attempt.memory_total_gib is not None:
            run.record["memory"] = {
                **(run.record.get("memory") or {}),
                "total_gib": round(attempt.memory_total_gib, 2),
            }
        run.save_record(status="running")
        tail: deque[str] = deque(maxlen=400)
        oom_seen = False

        def watch(line: str) -> None:
            nonlocal oom_seen
            if not oom_seen and _OOM.search(line):
                oom_seen = True

        started = time.monotonic()
        rc = run.run_child(
            spec, "train" if number == 1 else f"training, attempt {number}", tail, watch
        )
        attempt.seconds = round(time.monotonic() - started, 1)
        attempt.exit_code = rc
        if run.display is not None:
            result.progress = run.display.state

        if launch_mod.interrupted():
            attempt.outcome = "interrupted"
            attempt.reason = "Ctrl-C: Axolotl saved the model to output_dir and stopped"
            run.save_record(status="interrupted")
            result.status, result.exit_code = "interrupted", EXIT_INTERRUPTED
            result.message = f"interrupted; continue with: axo-helper run --resume {run.run_dir}"
            return result
        if rc == 0:
            attempt.outcome = "finished"
            run.save_record(status="finished")
            result.status, result.exit_code = "finished", 0
            result.export = _export(run)
            return result

        lines = list(tail)
        if not (oom_seen or looks_like_oom(lines)):
            attempt.outcome = "failed"
            attempt.reason = error_summary(lines) or f"exit code {rc}"
            run.save_record(status="failed")
            result.status, result.exit_code = "failed", rc if rc > 0 else EXIT_FAILURE
            result.message = (
                f"Axolotl failed: {attempt.reason} (full output: {run.run_dir / TRAIN_LOG})"
            )
            return result

        # CUDA OOM: re-plan with a smaller micro batch and the same effective batch.
        attempt.outcome = "oom"
        nxt = smaller_batch(mb, ga)
        if nxt is not None:
            new: dict[str, Any] = {"micro_batch_size": nxt[0]}
            if "gradient_accumulation_steps" in cfg or "batch_size" not in cfg:
                new["gradient_accumulation_steps"] = nxt[1]
            what = (
                f"micro_batch_size {mb} -> {nxt[0]}, gradient_accumulation_steps {ga} -> {nxt[1]}"
                f" (same {mb * ga} samples per GPU per step)"
            )
        elif not cfg.get("gradient_checkpointing"):
            new = {
                "gradient_checkpointing": True,
                "gradient_checkpointing_kwargs": {"use_reentrant": False},
            }
            what = "gradient_checkpointing on (micro_batch_size is already 1)"
        else:
            new = {}
            what = ""
        attempt.reason = "CUDA out of memory" + (f"; next: {what}" if what else "")
        if not new or number == first + req.max_attempts - 1:
            run.save_record(status="failed")
            result.status, result.exit_code = "failed", rc if rc > 0 else EXIT_FAILURE
            tried = ", ".join(
                f"{a.micro_batch_size}x{a.gradient_accumulation_steps}" for a in run.attempts
            )
            result.message = (
                f"CUDA out of memory in every attempt (micro batch x accumulation tried: {tried})"
            )
            return result
        text = set_top_level(text, new, f"lowered by axo-helper after CUDA OOM (attempt {number})")
        cfg.update(new)
        config_path.write_text(text, encoding="utf-8")
        resume_from = latest_checkpoint(output_dir)
        run.save_record(status="running")
        run.warn(
            f"CUDA out of memory (attempt {number}); retrying with {what}"
            + (f", resuming from {resume_from.name}" if resume_from else "")
        )
    raise AssertionError("unreachable: the loop returns")  # pragma: no cover


def _export(run: _Run) -> Any:
    """The export step (axo_helper.export, when installed); its failure is reported, not raised."""
    if not run.req.export or importlib.util.find_spec("axo_helper.export") is None:
        return None
    export_mod = importlib.import_module("axo_helper.export")
    run.say("exporting adapter/ and merged/ ...")
    try:
        # The merge loads torch/transformers in this process: their noise goes to train.log.
        with launch_mod.captured_output(run.run_dir / TRAIN_LOG):
            # force: a resumed run re-exports the model it just trained.
            return export_mod.export_run(run.run_dir, force=True)
    except AxoHelperError as exc:
        run.warn(f"training finished but the export failed: {exc}")
        return {"error": str(exc)}
