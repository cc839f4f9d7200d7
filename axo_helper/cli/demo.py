"""`axo-helper demo`: plan, train and export a tiny model end to end, offline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from axo_helper.demo import DemoResult


@click.command()
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("axo-helper-demo"),
    show_default=True,
    help="Where the tiny model, the data and the run go.",
)
@click.option("--force", is_flag=True, help="Run again over an earlier demo in that directory.")
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Fine-tuning steps (default: 200; the whole demo takes 2-3 minutes on 2 CPU cores).",
)
@click.option("--verbose", "-v", is_flag=True, help="Show Axolotl's raw output too.")
def demo(output_dir: Path, force: bool, max_steps: int | None, verbose: bool) -> None:
    """Fine-tune a tiny local Llama on bundled Q&A with real Axolotl; no network needed.

    Builds the model, plans for the detected hardware (CPU when there is no GPU),
    trains, exports adapter/ and merged/, answers a question with the result and
    writes the run's report.html (base vs fine-tuned on held-out rows).
    """
    from axo_helper.demo import DEMO_MAX_STEPS, run_demo
    from axo_helper.output import info
    from axo_helper.progress import ProgressDisplay
    from axo_helper.rundir import RunDir

    display = ProgressDisplay(mode=ProgressDisplay.default_mode(quiet=False), verbose=verbose)
    result = run_demo(
        output_dir,
        force=force,
        max_steps=max_steps or DEMO_MAX_STEPS,
        display=display,
        say=info,
    )
    run = result.run
    click.echo(f"demo finished in {result.seconds:.0f} s{' on CPU' if result.cpu else ''}")
    click.echo(f"  run:     {run.run_dir}  (plan.json, axolotl.yml, train.log)")
    if result.adapter_dir:
        click.echo(f"  adapter: {result.adapter_dir}")
    if result.merged_dir:
        click.echo(f"  merged:  {result.merged_dir}")
    if not result.adapter_dir and not result.merged_dir:
        click.echo(
            f"  output:  {RunDir(run.run_dir).output}  (Axolotl's output; export not installed)"
        )
    if result.answer is not None:
        model = "the merged model" if result.merged_dir else "the trained model"
        click.echo(f"sample from {model} ({_caveat(result)}):")
        click.echo(f"  Q: {result.question}")
        click.echo(f"  A: {result.answer}")
    if result.report is not None:
        _show_report(result.report)
    click.echo(f"next: axo-helper run --config {run.config_path}  (edit it first, or not)")


def _show_report(report: dict[str, Any]) -> None:
    """Where the report is and its comparison in one line."""
    click.echo(f"report:    {report['report_html']}  (open it in a browser)")
    evaluation = report["evaluation"]
    if evaluation["status"] == "ok":
        click.echo(
            f"  held-out loss: base {evaluation['base']['loss']} -> "
            f"fine-tuned {evaluation['fine_tuned']['loss']} "
            f"({evaluation['split']['rows_scored']} rows the training did not see)"
        )
    else:
        click.echo(f"  no held-out comparison: {evaluation['reason']}")


def _caveat(result: DemoResult) -> str:
    """What the sample comes from, honestly: a toy that saw a few KB of text."""
    params = result.model_params
    size = f"a {params / 1e6:.1f}M-parameter toy" if params else "a toy model"
    pre = result.pretrain
    if not pre:
        return f"{size} with random base weights: expect word salad"
    return (
        f"{size} pretrained for {pre['seconds']:.0f} s on {pre['corpus_bytes'] / 1000:.0f} KB "
        "of prose, then fine-tuned on the Q&A rows: it recalls them, it does not reason"
    )
