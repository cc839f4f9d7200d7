"""`axo-helper export RUN_DIR`: adapter/, merged/, gguf/, Modelfile and manifest.json for a run."""

from __future__ import annotations

from pathlib import Path

import click

from axo_helper.errors import AxoHelperError
from axo_helper.output import emit_json, info, warn
from axo_helper.rundir import EXPORT_VARIANTS, GGUF_DIR, MODELFILE
from axo_helper.shell import command, quote


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
@click.option(
    "--verify",
    "verify_only",
    is_flag=True,
    help="Only check an existing export: every file against manifest.json, and "
    "manifest.json against output/. Writes nothing.",
)
@click.option(
    "--unfinished",
    is_flag=True,
    help="Export a run whose training did not finish (interrupted, failed); "
    "the model card says how far it got.",
)
@click.option(
    "--gguf",
    "gguf",
    multiple=True,
    metavar="QUANT",
    help="Also convert merged/ to gguf/model-QUANT.gguf for llama.cpp and Ollama "
    "(repeatable): f16, bf16, q8_0; q4_k_m, q5_k_m, q6_k, ... with llama-quantize "
    "(docs/gguf.md).",
)
@click.option(
    "--llama-cpp",
    "llama_cpp",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="The llama.cpp checkout (or unpacked llama-cpp-python sdist) whose "
    "convert_hf_to_gguf.py --gguf runs. Default: $AXO_HELPER_LLAMA_CPP.",
)
@click.option("json_", "--json", is_flag=True, help="Print the result as JSON.")
def export(
    run_dir: Path,
    force: bool,
    variants: tuple[str, ...],
    max_shard_size: str,
    verify_only: bool,
    unfinished: bool,
    gguf: tuple[str, ...],
    llama_cpp: Path | None,
    json_: bool,
) -> None:
    """Export a finished run: adapter, merged model, Ollama Modelfile, checksummed manifest.

    \b
    axo-helper export runs/my-run
    axo-helper export runs/my-run --variant adapter
    axo-helper export runs/my-run --force          # rebuild an existing export
    axo-helper export runs/my-run --gguf q8_0 --llama-cpp ~/llama.cpp
    axo-helper export runs/my-run --verify         # check it, change nothing

    The export is checked against its manifest (sizes and sha256) after writing.
    """
    if verify_only:
        _verify(run_dir, json_)
        return
    from axo_helper.export.exporter import export_run
    from axo_helper.launch import captured_output

    # torch, torchao and Axolotl log while they load: keep stdout for the result.
    with captured_output():
        result = export_run(
            run_dir,
            force=force,
            variants=variants or EXPORT_VARIANTS,
            max_shard_size=max_shard_size,
            unfinished=unfinished,
            gguf=gguf,
            llama_cpp=llama_cpp,
        )
    for w in result.warnings:
        warn(w)
    ggufs = [f for f in result.files if f.path.startswith(f"{GGUF_DIR}/")]
    if json_:
        emit_json({**result.to_json(), "gguf": [{"path": f.path, "size": f.size} for f in ggufs]})
        return
    for v in result.variants:
        state = "written" if v in result.built else "kept (already exported)"
        click.echo(f"{v + '/':9} {result.run_dir / v}  {state}")
    for f in ggufs:
        click.echo(f"{'gguf':9} {result.run_dir / f.path}  {f.size / 1e6:,.1f} MB")
    click.echo(f"{MODELFILE:9} {result.modelfile}")
    total = sum(f.size for f in result.files)
    click.echo(
        f"{'manifest':9} {result.manifest}  {len(result.files)} files, "
        f"{total / 1e6:,.1f} MB, checksums verified"
    )
    serve = command("ollama", "create", result.run_dir.name, "-f", MODELFILE)
    info(f"serve it: cd {quote(result.run_dir)} && {serve}")


def _verify(run_dir: Path, json_: bool) -> None:
    from axo_helper.export.exporter import verify_run

    problems = verify_run(run_dir)
    if json_:
        emit_json({"run_dir": str(run_dir), "verified": not problems, "problems": problems})
    elif not problems:
        click.echo(f"{run_dir}: the export verifies (every file, and output/, as in the manifest)")
    if problems:
        raise AxoHelperError(
            f"{run_dir}'s export does not verify ({len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''}):\n" + "\n".join(f"  {p}" for p in problems),
            hint="rebuild it from output/ with: "
            + command("axo-helper", "export", run_dir, "--force"),
        )
