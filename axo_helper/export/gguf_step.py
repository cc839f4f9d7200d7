"""The GGUF step of an export: which conversions to make, keep or drop (docs/gguf.md).

    request = gguf_request(variants, quants, llama_cpp)   # before anything is read or built
    warnings = build_gguf(run_dir, request, force=..., merged_rebuilt=...)

Every conversion is made from merged/, after it is built or kept, and lands in
gguf/model-QUANT.gguf (rundir). A conversion an earlier export listed in its manifest
is kept only while it still matches it; one made from a merged/ that is rebuilt is
removed, since it no longer matches the weights beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from axo_helper.errors import AxoHelperError, ExportUsageError
from axo_helper.export.files import read_json
from axo_helper.export.gguf import (
    check_quant_tools,
    convert_merged,
    normalize_quant,
    remove_temporaries,
)
from axo_helper.export.llama_cpp import LlamaCpp, find_llama_cpp
from axo_helper.export.manifest import entry_problem
from axo_helper.rundir import GGUF_DIR, MERGED, RunDir, gguf_name
from axo_helper.shell import command


@dataclass(frozen=True)
class GGUFRequest:
    tools: LlamaCpp
    quants: tuple[str, ...]  # normalized: "q8_0", "q4_k_m"


def gguf_request(
    variants: Sequence[str], quants: Iterable[str], llama_cpp: Path | None
) -> GGUFRequest | None:
    """Check the GGUF options before the run is read: None when no GGUF was asked for."""
    wanted = tuple(dict.fromkeys(normalize_quant(q) for q in quants))
    if not wanted:
        return None
    if MERGED not in variants:
        raise ExportUsageError(
            "a GGUF file is converted from merged/, and this export has only the adapter",
            hint="export with the merged variant too: drop --variant adapter, or add "
            "--variant merged",
        )
    tools = find_llama_cpp(llama_cpp)
    for q in wanted:
        check_quant_tools(tools, q)
    return GGUFRequest(tools=tools, quants=wanted)


def gguf_present(run_dir: Path, request: GGUFRequest | None) -> bool:
    """Every requested conversion is there (part of what makes an export complete)."""
    return request is None or all(RunDir(run_dir).gguf_file(q).is_file() for q in request.quants)


def _manifest_entry(run_dir: Path, rel: str) -> dict[str, object] | None:
    manifest = read_json(RunDir(run_dir).manifest)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    for e in files if isinstance(files, list) else []:
        if isinstance(e, dict) and e.get("path") == rel:
            return e
    return None


def _check_kept(run_dir: Path, quant: str) -> None:
    """Refuse to keep (and bless in a new manifest) a conversion that no longer matches."""
    path = RunDir(run_dir).gguf_file(quant)
    rel = path.relative_to(run_dir).as_posix()
    entry = _manifest_entry(run_dir, rel)
    problem = entry_problem(run_dir, entry, "sha256 differs") if entry is not None else None
    if problem is not None:
        raise AxoHelperError(
            f"{path} is not the conversion this run's export recorded: {problem}",
            hint="convert it again with: "
            + command("axo-helper", "export", run_dir, "--gguf", quant, "--force"),
        )


def _drop_stale(run_dir: Path) -> list[str]:
    """merged/ was rebuilt: the conversions of the old one go (a warning names them)."""
    folder = RunDir(run_dir).gguf_dir
    old = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
    for f in old:
        f.unlink()
    if not old:
        return []
    names = ", ".join(f"{GGUF_DIR}/{f.name}" for f in old)
    return [f"removed {names}: converted from the merged/ this export replaced"]


def build_gguf(
    run_dir: Path, request: GGUFRequest | None, *, force: bool, merged_rebuilt: bool
) -> list[str]:
    """Convert merged/ for each requested quantization not kept; the warnings."""
    folder = RunDir(run_dir).gguf_dir
    if folder.is_dir():
        remove_temporaries(folder)
    warnings = _drop_stale(run_dir) if merged_rebuilt else []
    if request is None:
        return warnings
    run = RunDir(run_dir)
    kept = () if force else tuple(q for q in request.quants if run.gguf_file(q).is_file())
    for q in kept:  # all checked before the first conversion starts
        _check_kept(run_dir, q)
    built = tuple(q for q in request.quants if q not in kept)
    for q in built:
        convert_merged(request.tools, run.merged, q, run.gguf_file(q), name=run.path.name)
    return warnings


def modelfile_gguf(run_dir: Path, request: GGUFRequest | None) -> str | None:
    """The GGUF the Modelfile's FROM names: the first conversion asked for now, else
    one already exported (the largest first: the closest to the merged weights)."""
    rd = RunDir(run_dir)
    names = [gguf_name(q) for q in request.quants] if request is not None else []
    if not names and rd.gguf_dir.is_dir():
        found = sorted(rd.gguf_dir.glob("model-*.gguf"), key=lambda f: -f.stat().st_size)
        names = [f.name for f in found]
    for name in names:
        if (rd.gguf_dir / name).is_file():
            return f"./{GGUF_DIR}/{name}"
    return None

