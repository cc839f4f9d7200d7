"""The config a run will train: planned and rendered (`from_plan`) or the user's (`from_config`).

Both claim the run directory (refusing an existing run) but write nothing: start.py
writes only once the config is valid and launchable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo_helper import versions as versions_mod
from axo_helper.config.read import batch_of
from axo_helper.errors import AxoHelperError, ConfigError, UsageError
from axo_helper.launch import LaunchTarget
from axo_helper.run import batch as batch_mod
from axo_helper.run.configedit import inputs_are_local, set_top_level
from axo_helper.run.context import RunContext
from axo_helper.run.record import config_entries, plan_entries
from axo_helper.rundir import PLUGIN, PLUGIN_RUN_DIR_KEY, RunDir, default_run_dir
from axo_helper.shell import command

if TYPE_CHECKING:
    from axo_helper.specs import Hardware, Plan
    from axo_helper.validate import MemoryCheck, ValidationReport


@dataclass
class Prepared:
    """A config ready to write: its text, parsed, its DeepSpeed JSON and where it runs."""

    text: str
    config: dict[str, Any]
    deepspeed_json: str | None
    target: LaunchTarget


# --------------------------------------------------------------------------- planned
def from_plan(run: RunContext) -> Prepared:
    """Plan and render; the run directory is --output-dir or runs/<model>-<method>-<time>."""
    from axo_helper.core import make_plan
    from axo_helper.launch import target_of

    request = run.req.plan
    if request is None or not request.model:
        raise UsageError("--model is required (or pass --config FILE or --resume RUN_DIR)")
    if not request.data:
        raise UsageError("run needs --data PATH: the dataset to train on")
    plan = make_plan(request, hardware=run.hardware)
    for message in plan.warnings:
        run.warn(message)
    run.hardware = plan.hardware
    run.model_spec = plan.model
    if run.req.output_dir is not None:
        run_dir = Path(run.req.output_dir)
    else:
        run_dir = default_run_dir(f"{Path(plan.model.name).name}-{plan.method}")
    run.claim_run_dir(run_dir)
    text, cfg, ds_json = _render(run, plan)
    run.record.update(plan_entries(plan))
    return Prepared(text, cfg, ds_json, target_of(plan))


def _render(run: RunContext, plan: Plan) -> tuple[str, dict[str, Any], str | None]:
    """The plan as Axolotl YAML with every path absolute inside the run directory."""
    from axo_helper.config.build import deepspeed_filename
    from axo_helper.config.render import render_plan

    absolute = RunDir(run.run_dir.resolve())
    abs_dir = absolute.path
    ds_path = None
    if plan.setup.distributed in ("zero1", "zero2", "zero3"):
        # Absolute: Axolotl resolves `deepspeed:` against its working directory.
        ds_path = str(abs_dir / deepspeed_filename(plan.setup.distributed, plan.setup.cpu_offload))
    overrides = dict(run.req.overrides)
    if run.req.max_steps is not None:
        overrides["max_steps"] = run.req.max_steps
    assert plan.data is not None  # make_plan was given data
    rendered = render_plan(
        plan,
        output_dir=str(absolute.output),
        dataset_path=str(Path(plan.data.path).resolve()),
        run_dir=str(abs_dir) if versions_mod.plugin_available() else None,
        dataset_prepared_path=str(absolute.prepared),
        deepspeed_path=ds_path,
        config_name=str(run.dir.config),
        overrides=overrides or None,
    )
    for message in rendered.warnings:
        if message not in plan.warnings:
            run.warn(message)
    return rendered.yaml_text, rendered.config, rendered.deepspeed_json


# --------------------------------------------------------------------------- --config
def from_config(run: RunContext) -> Prepared:
    """A hand-edited config: re-validate, warn on fit (or --fit), keep it as written."""
    path = Path(run.req.config)  # type: ignore[arg-type]
    text = _read_config(path)
    run.hardware = _config_hardware(run)
    report = _validated(run, path, text)
    cfg: dict[str, Any] = dict(report.config or {})
    memory = report.memory
    if memory is not None and memory.setup is not None:
        run.model_spec = memory.setup.model  # inspected once, by validation
    changes, notes = _fit_changes(run, cfg, memory)

    run_dir = Path(run.req.output_dir) if run.req.output_dir else default_run_dir(path.stem)
    run.claim_run_dir(run_dir)
    more, more_notes = _bookkeeping_changes(run, path, cfg)
    changes.update(more)
    notes.extend(more_notes)
    changes.update(run.req.overrides)
    new_text = set_top_level(text, changes, "set by axo-helper run") if changes else text
    cfg.update(changes)

    target = LaunchTarget(
        gpus_per_node=run.hardware.num_gpus if run.hardware is not None else 0,
        nodes=run.req.nodes,
        distributed=memory.setup.distributed if memory and memory.setup else "none",
        offline=inputs_are_local(cfg, Path.cwd()),
    )
    run.record.update(config_entries(path, cfg, memory, notes))
    return Prepared(new_text, cfg, None, target)


def _read_config(path: Path) -> str:
    if not path.is_file():
        raise UsageError(
            f"config file {path} does not exist" if not path.exists() else f"{path} is not a file",
            hint="pass the path of an Axolotl YAML, e.g. one written by `axo-helper render`",
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _config_hardware(run: RunContext) -> Hardware | None:
    """--gpu for the fit check, resolved once; None (with a warning) when it cannot be."""
    from axo_helper import hardware as hardware_mod

    if run.hardware is not None:  # the caller resolved it (RunRequest.hardware)
        return run.hardware
    try:
        return hardware_mod.resolve(run.req.gpu, nodes=run.req.nodes, allow_cpu=True)
    except AxoHelperError as exc:
        run.warn(f"memory fit not checked: {exc.message}")
        return None


def _validated(run: RunContext, path: Path, text: str) -> ValidationReport:
    """The config validated without Axolotl; every error at once, warnings passed on."""
    from axo_helper.validate import validate_text

    report = validate_text(
        text, source=str(path), config_dir=path.parent, hardware=run.hardware, run_axolotl=False
    )
    if report.errors:
        lines = "\n".join(f"  {e.format()}" for e in report.errors)
        raise ConfigError(
            f"{path} is not a valid Axolotl config ({len(report.errors)} "
            f"problem{'s' if len(report.errors) > 1 else ''}):\n{lines}",
            hint="fix them, or check with: " + command("axo-helper", "validate", path),
        )
    for w in report.warnings:
        run.warn(f"{path}: {w.format()}")
    from axo_helper.validate.files import missing_plugins

    missing = missing_plugins(report.config or {})
    if missing:
        # Axolotl would stop with an ImportError once the model is loaded: say it first.
        raise ConfigError(
            f"{path}: " + "; ".join(m.split(" (")[0] for m in missing),
            hint="install it first: " + "; ".join(m.split(" (", 1)[1].rstrip(")") for m in missing),
        )
    return report


def _fit_changes(
    run: RunContext, cfg: Mapping[str, Any], memory: MemoryCheck | None
) -> tuple[dict[str, Any], list[str]]:
    """With --fit and an estimate that does not fit: the smaller micro batch, and why."""
    if memory is None:
        return {}, []
    if memory.fits:
        run.say(f"memory: {memory.summary()} on {memory.gpu}")
        return {}, []
    if not run.req.fit:
        run.warn(
            f"{memory.summary()} on {memory.gpu}; running it as written "
            "(pass --fit to lower micro_batch_size and keep the effective batch)"
        )
        return {}, []
    fitted = batch_mod.fit(cfg, memory)
    if fitted is None:
        run.warn(f"--fit: {memory.summary()}; no smaller micro batch fits, running as written")
        return {}, []
    (mb, ga), total = fitted
    old_mb, old_ga = batch_of(cfg)
    note = (
        f"--fit: micro_batch_size {old_mb} -> {mb}, gradient_accumulation_steps "
        f"{old_ga} -> {ga} (same {mb * ga} samples per GPU per step); "
        f"predicted {total:.1f} of {memory.budget_gib:.1f} GiB"
    )
    run.say(note)
    return {"micro_batch_size": mb, "gradient_accumulation_steps": ga}, [note]


def _bookkeeping_changes(
    run: RunContext, path: Path, cfg: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The keys that make the run directory complete; recorded in plan.json "changes"."""
    abs_dir = run.run_dir.resolve()
    output = RunDir(abs_dir).output
    changes: dict[str, Any] = {"output_dir": str(output)}
    notes = [f"output_dir -> {output} (was {cfg.get('output_dir')!r})"]
    ds = cfg.get("deepspeed")
    if isinstance(ds, str) and not Path(ds).is_absolute() and not Path(ds).exists():
        beside = (path.parent / ds).resolve()
        if beside.exists():
            changes["deepspeed"] = str(beside)
            notes.append(
                f"deepspeed -> {beside} (relative to the config, not the working directory)"
            )
    if versions_mod.plugin_available():
        plugins = list(cfg.get("plugins") or [])
        if PLUGIN not in plugins:
            changes["plugins"] = [*plugins, PLUGIN]
        changes[PLUGIN_RUN_DIR_KEY] = str(abs_dir)
        notes.append("plugins += axo-helper's plugin (metrics.jsonl), axo_helper_run_dir set")
    if run.req.max_steps is not None:
        changes["max_steps"] = run.req.max_steps
        notes.append(f"max_steps -> {run.req.max_steps} (--max-steps)")
    return changes, notes
