"""`start_run`: check the request, prepare the config, write the run directory, then run.

The order matters: every usage check (the request, the config, the run directory,
the launch) comes before "is Axolotl installed", so a bad option exits 2 even on
an install without the train extra; nothing is written before both pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

from axo_helper import launch as launch_mod
from axo_helper import versions as versions_mod
from axo_helper.atomic import atomic_write_text
from axo_helper.errors import MissingExtraError, UsageError
from axo_helper.launch import LaunchSpec
from axo_helper.progress import ProgressDisplay
from axo_helper.run.attempts import train
from axo_helper.run.context import RunContext
from axo_helper.run.prepare import Prepared, from_config, from_plan
from axo_helper.run.preprocess import preprocess
from axo_helper.run.record import launch_entries
from axo_helper.run.request import RunRequest, RunResult
from axo_helper.run.resume import claim_for_resume, resume


def start_run(req: RunRequest, display: ProgressDisplay | None = None) -> RunResult:
    """Do the whole run; return its result. Raises AxoHelperError for bad input.

    A training failure is not raised: it comes back as status "failed" with
    Axolotl's exit code (the CLI passes it through), after plan.json says why.
    """
    check_request(req)
    run = RunContext(req, display)
    if req.resume is not None:
        claim_for_resume(run)
        check_axolotl(run)
        return resume(run)

    prepared = from_config(run) if req.config is not None else from_plan(run)
    config_path = run.run_dir.resolve() / run.dir.config.name
    specs = run.launch_specs(prepared.target, config_path)
    if len(specs) > 1 and not req.dry_run:
        nodes = prepared.target.nodes
        raise UsageError(
            f"a run on {nodes} nodes is started once per node",
            hint=f"run the same command on every node with --node-rank 0...{nodes - 1} "
            "(see --dry-run for each node's command)",
        )
    check_axolotl(run)
    pre = launch_mod.preprocess_launch(specs[0], config_path)
    result = _write_run_dir(run, prepared, config_path, pre, specs)
    if req.dry_run:
        run.save_record(status="dry-run")
        result.status = "dry-run"
        return result
    run.save_record(status="preprocessing")
    preprocess(run, pre, prepared.config)
    return train(run, prepared.target, prepared.config, prepared.text, result, resume_from=None)


def check_request(req: RunRequest) -> None:
    """The request's own usage errors (exit 2), before anything is looked at."""
    planned = bool(req.plan is not None and req.plan.model)
    if planned + (req.config is not None) + (req.resume is not None) > 1:
        raise UsageError(
            "pass only one of --model (plan a run), --config FILE or --resume RUN_DIR",
            hint="--config trains the file as written (its base_model is the model); "
            "drop --model, or drop --config to plan a new run",
        )
    if req.max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")
    if req.max_steps is not None and req.max_steps < 1:
        raise UsageError("--max-steps must be at least 1")


def check_axolotl(run: RunContext) -> None:
    """A real run with this interpreter needs Axolotl (a dry run or another --python does
    not), and says so when its version is outside the tested range."""
    req = run.req
    if req.python != sys.executable:
        return
    if not req.dry_run and not versions_mod.axolotl_installed():
        raise MissingExtraError("axo-helper run")
    outside = versions_mod.axolotl_version_warning()
    if outside:
        run.warn(outside)


def _write_run_dir(
    run: RunContext,
    prepared: Prepared,
    config_path: Path,
    pre: LaunchSpec,
    specs: list[LaunchSpec],
) -> RunResult:
    """Validated and launchable: only now may --force clear an old run and the files go in."""
    run.reset_run_dir()
    if prepared.deepspeed_json is not None:
        atomic_write_text(Path(str(prepared.config["deepspeed"])), prepared.deepspeed_json)
    atomic_write_text(run.dir.config, prepared.text)
    run.record.update(
        launch_entries(run.run_dir, config_path, run.hardware, pre, specs, run.req.node_rank)
    )
    commands = [launch_mod.format_command(s) for s in specs]
    return RunResult(
        run.run_dir,
        run.dir.config,
        "prepared",
        0,
        commands,
        run.attempts,
        warnings=run.warnings,
    )
