"""`axo-helper validate`: check any Axolotl config (schema, Axolotl, memory) and say why not."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from axo_helper.cli.options import revision_option

if TYPE_CHECKING:  # annotations only: the package loads when the command runs
    from axo_helper.errors import AxoHelperError
    from axo_helper.validate.report import Issue, ValidationReport


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--gpu",
    default="auto",
    show_default=True,
    metavar="SPEC",
    help="GPU for the memory check: auto (detected), a profile, a size, or none to skip it.",
)
@click.option(
    "--no-axolotl", is_flag=True, help="Skip Axolotl's own validation (importing it takes ~10 s)."
)
@click.option(
    "--model",
    default=None,
    metavar="ID|DIR",
    help="Architecture for the memory check when base_model cannot be resolved offline "
    "(a shipped preset, a cached HF id, or a local directory with config.json).",
)
@revision_option
@click.option("json_", "--json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_context
def validate(
    ctx: click.Context,
    config: Path,
    gpu: str,
    no_axolotl: bool,
    model: str | None,
    revision: str | None,
    json_: bool,
) -> None:
    """Check an Axolotl config, ours or hand-written, and whether it fits the GPU.

    Reports every problem at once as `key.path (line N): message`.

    \b
    Exit codes: 0 valid and fits (or fit not checked), 1 invalid,
                3 valid but does not fit the GPU, 2 usage error.
    """
    from axo_helper.errors import ConfigError, HardwareError, UsageError
    from axo_helper.output import emit_json
    from axo_helper.validate.check import validate_file

    hardware = None
    skipped_gpu: str | None = None
    if gpu.strip().lower() not in ("none", "no", "skip"):
        from axo_helper import hardware as hardware_mod

        try:
            hardware = hardware_mod.resolve(gpu)
        except UsageError:
            raise
        except HardwareError as exc:
            if gpu.strip().lower() != "auto":
                raise
            # No GPU here is normal on a laptop: validate the rest, say memory was skipped.
            skipped_gpu = f"memory: not checked ({exc.message}; pass --gpu PROFILE to check it)"
    if revision is not None and model is None:
        raise UsageError(
            "--revision pins a hub revision of --model; pass --model too",
            hint="a config's own revision_of_model is what Axolotl loads",
        )
    fallback = None
    if model is not None:
        from axo_helper import model as model_mod

        fallback = model_mod.inspect(model, revision=revision)  # a bad --model is the user's error, not a note
    try:
        report = validate_file(
            config, hardware=hardware, run_axolotl=not no_axolotl, fallback_model=fallback
        )
    except ConfigError as exc:
        if not json_:
            raise
        # A script reading --json gets its report even for a file that cannot be read.
        report = unreadable_report(config, exc)
    if skipped_gpu:
        report.notes = [n for n in report.notes if not n.startswith("memory:")] + [skipped_gpu]
    if json_:
        emit_json(report.to_json())
    else:
        show(report)
    ctx.exit(report.exit_code)


def unreadable_report(config: Path, exc: AxoHelperError) -> ValidationReport:
    """The report of a config that could not be read as text (not UTF-8, unreadable)."""
    from axo_helper.validate.report import Issue, ValidationReport

    message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return ValidationReport(
        path=str(config),
        errors=[Issue("", None, message, source="file")],
        notes=["the schema, Axolotl and memory checks need a readable file"],
    )


def show(report: ValidationReport) -> None:
    """Plain text: errors and warnings one per line, then the notes and the memory check."""
    if report.valid:
        click.echo(f"{report.path}: valid")
    else:
        n = len(report.errors)
        click.echo(f"{report.path}: invalid ({n} error{'s' if n != 1 else ''})")
        for e in report.errors:
            click.echo(f"  error: {e.format()}{_tag(e)}")
    for w in report.warnings:
        click.echo(f"  warning: {w.format()}{_tag(w)}")
    for note in report.notes:
        click.echo(f"  {note}")
    m = report.memory
    if m is not None:
        b = m.breakdown
        click.echo(f"memory per GPU on {m.gpu}:")
        for label, value in (
            ("weights", b.weights_gib),
            ("gradients + optimizer", b.trainable_state_gib),
            ("activations", b.activations_gib),
            ("logits", b.logits_gib),
            ("overhead", b.overhead_gib),
        ):
            click.echo(f"  {label:<22} {value:6.2f} GiB")
        click.echo(f"  {'total':<22} {b.total_gib:6.2f} GiB   (budget {m.budget_gib:.2f} GiB)")
        click.echo(m.summary())


def _tag(issue: Issue) -> str:
    return "  [Axolotl]" if issue.source == "axolotl" else ""
