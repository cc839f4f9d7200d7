"""`axo-helper export RUN_DIR`: adapter/, merged/, Modelfile and manifest.json for a run."""

from __future__ import annotations

from pathlib import Path

import click

from axo_helper.output import emit_json, info, warn
from axo_helper.rundir import EXPORT_VARIANTS, MODELFILE


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Rebuild variants that already exist.")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    type=click.Choice(list(EXPORT_VARIANTS)),
    help="Export only this variant (repeatable). Default: adapter and merged.",
)
@click.option(
    "--max-shard-size",
    default="5GB",
    show_default=True,
    help="Largest safetensors shard in merged/ (e.g. 2GB, 500MB).",
)
@click.option("json_", "--json", is_flag=True, help="Print the result as JSON.")
def export(
    run_dir: Path, force: bool, variants: tuple[str, ...], max_shard_size: str, json_: bool
) -> None:
    """Export a finished run: adapter, merged model, Ollama Modelfile, checksummed manifest.

    \b
    axo-helper export runs/my-run
    axo-helper export runs/my-run --variant adapter
    axo-helper export runs/my-run --force          # rebuild an existing export

    The export is checked against its manifest (sizes and sha256) after writing.
    """
    from axo_helper.export.exporter import export_run

    result = export_run(
        run_dir, force=force, variants=variants or EXPORT_VARIANTS, max_shard_size=max_shard_size
    )
    for w in result.warnings:
        warn(w)
    if json_:
        emit_json(result.to_json())
        return
    for v in result.variants:
        state = "written" if v in result.built else "kept (already exported)"
        click.echo(f"{v + '/':9} {result.run_dir / v}  {state}")
    click.echo(f"{MODELFILE:9} {result.modelfile}")
    total = sum(f.size for f in result.files)
    click.echo(
        f"{'manifest':9} {result.manifest}  {len(result.files)} files, "
        f"{total / 1e6:,.1f} MB, checksums verified"
    )
    info(f"serve it: cd {result.run_dir} && ollama create {result.run_dir.name} -f Modelfile")
