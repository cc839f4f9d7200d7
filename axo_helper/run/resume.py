"""`run --resume RUN_DIR`: continue a run from its newest complete checkpoint."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from axo_helper import launch as launch_mod
from axo_helper.atomic import atomic_write_text
from axo_helper.errors import AxoHelperError, UsageError
from axo_helper.launch import LaunchTarget
from axo_helper.run.attempts import train
from axo_helper.run.configedit import inputs_are_local, set_top_level
from axo_helper.run.context import RunContext
from axo_helper.run.request import Attempt, RunResult
from axo_helper.rundir import (
    CONFIG_YML,
    RunDir,
    config_run_dir,
    latest_checkpoint,
    rebound_paths,
)


def claim_for_resume(run: RunContext) -> None:
    """Take over RUN_DIR and its plan.json; a directory without axolotl.yml is a usage error."""
    run_dir = RunDir(Path(run.req.resume))  # type: ignore[arg-type]
    if not run_dir.config.is_file():
        raise UsageError(
            f"{run_dir.path} is not an axo-helper run directory (no {CONFIG_YML})",
            hint="pass the directory `axo-helper run` created, e.g. runs/NAME",
        )
    run.dir = run_dir
    run.record = run_dir.read_plan_record() or {}
    run.attempts = [Attempt.from_dict(a) for a in run.record.get("attempts") or []]


def _rebind(run: RunContext, cfg: dict[str, Any]) -> dict[str, Any]:
    """A copied or moved run directory trains into itself, never into the one it came from."""
    here = run.run_dir.resolve()
    changes: dict[str, Any] = dict(rebound_paths(here, cfg))
    if changes:
        run.say(
            f"{CONFIG_YML} was written for {config_run_dir(cfg)} (a copy or a move): "
            f"{', '.join(changes)} rebound to {here}"
        )
        run.record.update(run_dir=str(here), config=str(here / CONFIG_YML))
    return changes


def resume(run: RunContext) -> RunResult:
    """Train the claimed run directory's config again from its last checkpoint."""
    from axo_helper import hardware as hardware_mod
    from axo_helper.validate import parse_config

    req = run.req
    config_path = run.dir.config
    text = config_path.read_text(encoding="utf-8")
    cfg, _ = parse_config(text, str(config_path))
    if run.hardware is None:
        with contextlib.suppress(AxoHelperError):
            run.hardware = hardware_mod.resolve(req.gpu, nodes=req.nodes, allow_cpu=True)
    changes: dict[str, Any] = _rebind(run, cfg)
    if req.max_steps is not None:
        changes["max_steps"] = req.max_steps
    if changes:
        text = set_top_level(text, changes, "set by axo-helper run --resume")
        cfg.update(changes)
        atomic_write_text(config_path, text)
    hw = run.hardware
    target = LaunchTarget(
        gpus_per_node=hw.num_gpus if hw is not None else 0,
        nodes=req.nodes,
        offline=inputs_are_local(cfg, Path.cwd()),
    )
    specs = run.launch_specs(target, config_path.resolve())
    commands = [launch_mod.format_command(s) for s in specs]
    result = RunResult(
        run.run_dir, config_path, "prepared", 0, commands, run.attempts, warnings=run.warnings
    )
    output_dir = run.dir.output
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        run.warn(f"no checkpoint in {output_dir}: training starts from the beginning")
    if req.dry_run:
        result.status = "dry-run"
        return result
    return train(run, target, cfg, text, result, resume_from=checkpoint)
