"""`axo-helper run`: plan, render, validate, preprocess, train, export (docs/run.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from axo_helper.cli.options import plan_options, plan_request


@click.command()
@plan_options(model_required=False)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Train this (hand-edited) Axolotl YAML as written instead of planning one.",
)
@click.option(
    "--fit",
    is_flag=True,
    help="With --config: if the estimate does not fit, lower micro_batch_size and raise "
    "gradient_accumulation_steps (same effective batch).",
)
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The run directory (default: runs/<model>-<method>-<time>).",
)
@click.option("--force", is_flag=True, help="Replace an existing run directory.")
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="RUN_DIR",
    help="Continue a run from its last checkpoint.",
)
@click.option(
    "--dry-run", is_flag=True, help="Write the config, print the command(s), run nothing."
)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after N steps.")
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Tries in all, counting retries after CUDA out-of-memory.",
)
@click.option("--no-export", is_flag=True, help="Stop at Axolotl's output (skip adapter/merged).")
@click.option("--no-report", is_flag=True, help="Do not write report.html when training finishes.")
@click.option(
    "--node-rank", type=click.IntRange(min=0), default=None, help="This node (multi-node)."
)
@click.option("--master-addr", default=None, metavar="HOST", help="Node 0's address (multi-node).")
@click.option("--master-port", type=click.IntRange(1, 65535), default=29500, show_default=True)
@click.option("--verbose", "-v", is_flag=True, help="Show Axolotl's raw output too.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display; errors only.")
@click.option("json_", "--json", is_flag=True, help="Print the result as one JSON object.")
def run(
    config: Path | None,
    fit: bool,
    output_dir: Path | None,
    force: bool,
    resume: Path | None,
    dry_run: bool,
    max_steps: int | None,
    max_attempts: int,
    no_export: bool,
    no_report: bool,
    node_rank: int | None,
    master_addr: str | None,
    master_port: int,
    verbose: bool,
    quiet: bool,
    json_: bool,
    **opts: Any,
) -> None:
    """Train with Axolotl: plan a config that fits, or run your own; recover from OOM.

    \b
    axo-helper run --gpu auto --model meta-llama/Llama-3.1-8B --data qa.jsonl
    axo-helper run --config train.yml --fit
    axo-helper run --resume runs/llama-lora-20250101-120000
    axo-helper run --gpu 8xh100 --nodes 2 --model ... --data ... --dry-run --master-addr 10.0.0.1

    Exit status: 0 finished, 1 failure, 2 usage, 130 interrupted; a failed
    training passes Axolotl's own exit code through.
    """
    from axo_helper.output import emit_json
    from axo_helper.progress import ProgressDisplay
    from axo_helper.run.request import RunRequest
    from axo_helper.run.start import start_run

    # Without --model the planning options only say which GPU --config/--resume is for.
    planned = bool(opts.get("model"))
    req = RunRequest(
        plan=plan_request(opts) if planned else None,
        config=config,
        resume=resume,
        output_dir=output_dir,
        force=force,
        dry_run=dry_run,
        max_steps=max_steps,
        fit=fit,
        gpu=opts.get("gpu") or "auto",
        nodes=opts.get("nodes") or 1,
        node_rank=node_rank,
        master_addr=master_addr,
        master_port=master_port,
        max_attempts=max_attempts,
        export=not no_export,
        # --json keeps warnings on stderr (scripts read stdout); --quiet drops them.
        quiet=quiet,
    )
    if not planned and config is None and resume is None:
        raise click.UsageError("pass --model and --data, --config FILE or --resume RUN_DIR")
    if not planned and opts.get("revision"):
        raise click.UsageError("--revision pins a hub revision of --model; pass --model too")
    display = ProgressDisplay(
        mode=ProgressDisplay.default_mode(quiet=quiet or json_),
        verbose=verbose and not json_,
    )
    result = start_run(req, display=display)
    if result.status == "finished" and not no_report and not node_rank:
        write_run_report(result.run_dir, quiet=quiet or json_)
    if json_:
        emit_json(result.to_json())
    else:
        show(result, quiet=quiet)
    if result.exit_code:
        raise SystemExit(result.exit_code)


def write_run_report(run_dir: Path, *, quiet: bool) -> None:
    """report.html of a finished run (docs/report.md); a failure warns, the training stands."""
    import os

    from axo_helper.output import warn
    from axo_helper.report import EvalOptions, ReportOptions, write_report

    try:
        write_report(run_dir, ReportOptions(eval=EvalOptions(progress=not quiet)))
    except Exception as exc:
        if os.environ.get("AXO_HELPER_DEBUG"):
            raise
        from axo_helper.shell import command

        warn(f"report.html not written ({exc}); retry with: {command('axo-helper', 'report', run_dir)}")


def show(result: Any, *, quiet: bool = False) -> None:
    """Where things are, and what to do next."""
    from axo_helper.rundir import RunDir

    echo = click.echo
    run_dir = RunDir(result.run_dir)
    if result.status == "dry-run":
        echo(f"config: {result.config_path}")
        many = len(result.commands) > 1
        for i, command in enumerate(result.commands):
            echo(f"command (node {i}):" if many else "command:")
            echo(f"  {command}")
        return
    if result.status == "finished":
        echo(f"finished: {result.run_dir}")
        echo(f"  config: {result.config_path}")
        echo(f"  output: {run_dir.output}")
        if result.progress is not None and result.progress.train_loss is not None:
            echo(f"  train loss: {result.progress.train_loss:.4g}")
        export = getattr(result.export, "to_json", None)
        if export is not None:
            for name, variant in export()["variants"].items():
                echo(f"  {name}: {variant['path']}")
        if run_dir.report_html.is_file():
            echo(f"  report: {run_dir.report_html}")
        return
    if not quiet or result.message:
        click.echo(f"{result.status}: {result.message or result.run_dir}", err=True)
        if result.status == "failed":
            click.echo(f"  log: {run_dir.train_log}", err=True)
