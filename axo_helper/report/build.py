"""`axo-helper report RUN_DIR`: gather a run's figures into one object, write report.html.

The object is `report --json` (its keys are documented in docs/report.md); the page
shows the same object. Nothing here raises for a figure that cannot be made: the
object says what is missing and why. A path that is not a run directory is an error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from axo_helper import __version__
from axo_helper.errors import ConfigError, MissingPathError
from axo_helper.report.evaluation import EvalOptions, evaluate_run
from axo_helper.report.memory import memory_figures
from axo_helper.report.plan import plan_figures
from axo_helper.report.training import read_training
from axo_helper.rundir import RunDir, now_iso

REPORT_VERSION = 1
_NOT_A_RUN_HINT = "pass the directory `axo-helper run` created (runs/NAME)"


@dataclass(frozen=True)
class ReportOptions:
    evaluate: bool = True  # False: --no-eval, figures from the run's own files only
    eval: EvalOptions = field(default_factory=EvalOptions)


def open_run(run_dir: Path) -> tuple[RunDir, dict[str, Any]]:
    """The run directory and its axolotl.yml; the usual errors for anything else."""
    run = RunDir(Path(run_dir).expanduser().resolve())
    if not run.path.is_dir():
        raise MissingPathError(f"run directory {run.path} does not exist", hint=_NOT_A_RUN_HINT)
    if not run.config.is_file():
        raise ConfigError(
            f"{run.path} has no {run.config.name}, so it is not a run directory",
            hint=_NOT_A_RUN_HINT,
        )
    cfg = run.read_config()
    if cfg is None:
        raise ConfigError(
            f"cannot read {run.config} as a YAML mapping", hint="is it an Axolotl config?"
        )
    return run, cfg


def build_report(run_dir: Path, options: ReportOptions | None = None) -> dict[str, Any]:
    """`report --json`: every figure of the run, and what is missing and why."""
    options = options or ReportOptions()
    run, cfg = open_run(run_dir)
    record = run.read_plan_record()
    training = read_training(run)
    memory = memory_figures(record, training.summary, training.steps)
    if options.evaluate:
        evaluation, samples = evaluate_run(run, cfg, options.eval)
    else:
        evaluation = {"status": "missing", "reason": "not asked for (--no-eval)"}
        samples = []
    missing = [f"training: {m}" for m in training.missing]
    missing += [f"memory: {m}" for m in memory["missing"]]
    if evaluation["status"] != "ok":
        missing.append(f"evaluation: {evaluation['reason']}")
    return {
        "version": REPORT_VERSION,
        "run_dir": str(run.path),
        "run_name": run.path.name,
        "report_html": str(run.report_html),
        "status": (record or {}).get("status"),
        "created": now_iso(),
        "axo_helper_version": __version__,
        "training": training.to_json(),
        "memory": memory,
        "evaluation": evaluation,
        "samples": samples,
        "plan": plan_figures(run, cfg, record),
        "options": {"evaluate": options.evaluate, **asdict(options.eval)},
        "missing": missing,
    }


def write_report(run_dir: Path, options: ReportOptions | None = None) -> dict[str, Any]:
    """Build the report, write RUN_DIR/report.html atomically, return the object."""
    from axo_helper.atomic import atomic_write_text
    from axo_helper.report.html import figures, render_html

    report = build_report(run_dir, options)
    drawn = figures(report)
    report["missing"] += [
        f"figure {name}: {fig['missing']}"
        for name, fig in drawn.items()
        if fig["missing"] and "matplotlib" in fig["missing"]
    ]
    atomic_write_text(Path(report["report_html"]), render_html(report, drawn))
    return report
