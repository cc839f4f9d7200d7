"""`axo-helper report RUN_DIR`: figures of a finished run and base vs fine-tuned on
held-out rows, in RUN_DIR/report.html (docs/report.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--eval-data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Held-out rows to evaluate on, in the format of the training data "
    "(default: the split the config's val_set_size held out).",
)
@click.option("--no-eval", is_flag=True, help="Do not load the models: the run's own figures only.")
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Held-out rows to score (default: all on a GPU, 64 on CPU).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Held-out prompts in the answer table.",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Length cap of each greedy answer.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option(
    "json_", "--json", is_flag=True, help="Print the report's figures as one JSON object."
)
def report(
    run_dir: Path,
    eval_data: Path | None,
    no_eval: bool,
    max_rows: int | None,
    samples: int,
    max_new_tokens: int,
    quiet: bool,
    json_: bool,
) -> None:
    """Write RUN_DIR/report.html: loss, speed, memory, base vs fine-tuned, the plan.

    \b
    axo-helper report runs/llama-lora-20250101-120000
    axo-helper report runs/qa --eval-data held-out.jsonl --json
    """
    from axo_helper.output import emit_json
    from axo_helper.report import EvalOptions, ReportOptions, write_report

    options = ReportOptions(
        evaluate=not no_eval,
        eval=EvalOptions(
            eval_data=eval_data,
            max_rows=max_rows,
            samples=samples,
            max_new_tokens=max_new_tokens,
            progress=not quiet,
        ),
    )
    result = write_report(run_dir, options)
    if json_:
        emit_json(result)
    else:
        show(result)


def show(result: dict[str, Any]) -> None:
    """The page's path, the comparison in one line, and what is missing."""
    from axo_helper.output import warn

    click.echo(f"report: {result['report_html']}")
    evaluation = result["evaluation"]
    if evaluation["status"] == "ok":
        click.echo(
            f"  held-out loss: base {evaluation['base']['loss']} -> "
            f"fine-tuned {evaluation['fine_tuned']['loss']} "
            f"({evaluation['split']['rows_scored']} rows, {evaluation['device']})"
        )
    for gap in result["missing"]:
        warn(gap)
