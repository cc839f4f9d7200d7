"""`axo-helper calibration list|clear|export|import`: the store of measured runs."""

from __future__ import annotations

import io
import sys
from dataclasses import asdict
from pathlib import Path

import click

from axo_helper.calibration import CalibrationStore
from axo_helper.errors import OutputExistsError, UsageError
from axo_helper.output import console, emit_json, warn, write_output


def _store() -> CalibrationStore:
    return CalibrationStore()


def _flush_warnings(store: CalibrationStore) -> None:
    for w in store.warnings:
        warn(w)


@click.group()
def calibration() -> None:
    """Measured runs that correct the memory estimate (stored in SQLite)."""


@calibration.command("list")
@click.option("json_", "--json", is_flag=True, help="Print JSON for scripts.")
def list_(json_: bool) -> None:
    """List stored measurements."""
    store = _store()
    rows = store.measurements()
    _flush_warnings(store)
    if json_:
        emit_json({"path": str(store.path), "runs": [asdict(m) for m in rows]})
        return
    if not rows:
        click.echo(f"No measured runs yet ({store.path}).")
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} measured run(s) in {store.path}")
    for col in (
        "gpu",
        "model",
        "method",
        "seq",
        "mbs",
        "GC",
        "predicted",
        "measured",
        "ratio",
        "tok/s",
    ):
        table.add_column(col)
    for m in rows:
        table.add_row(
            m.gpu,
            m.model,
            m.method,
            str(m.sequence_len),
            str(m.micro_batch_size),
            "on" if m.gradient_checkpointing else "off",
            f"{m.predicted_gib:.2f}",
            f"{m.measured_gib:.2f}",
            f"{m.ratio:.2f}",
            f"{m.tokens_per_s:.0f}" if m.tokens_per_s else "-",
        )
    console().print(table)


@calibration.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def clear(yes: bool) -> None:
    """Delete every stored measurement."""
    store = _store()
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "refusing to clear the calibration store without confirmation", hint="pass --yes"
            )
        click.confirm(f"Delete every measurement in {store.path}?", abort=True)
    n = store.clear()
    _flush_warnings(store)
    click.echo(f"Deleted {n} measurement(s).")


@calibration.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the CSV here instead of standard output.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
def export(output: Path | None, force: bool) -> None:
    """Export measurements as CSV, to share them."""
    store = _store()
    buf = io.StringIO()
    n = store.export_csv(buf)
    _flush_warnings(store)
    if output is None:
        click.echo(buf.getvalue(), nl=False)
        return
    if output.exists() and not force:
        raise OutputExistsError(f"{output} already exists", hint="pass --force to overwrite it")
    write_output(output, buf.getvalue())
    click.echo(f"Wrote {n} measurement(s) to {output}.", err=True)


@calibration.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(csv_file: Path) -> None:
    """Add measurements from a CSV written by `calibration export`."""
    store = _store()
    with csv_file.open(encoding="utf-8", newline="") as fh:
        n = store.import_csv(fh)
    _flush_warnings(store)
    click.echo(f"Imported {n} measurement(s).")
