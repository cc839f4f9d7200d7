"""Whether a variant an earlier export left may be kept: only when something vouches for it.

A complete export is held to its manifest. A variant without a manifest entry (an
export killed before manifest.json was written, or a deleted manifest) is held to
output/, the files it was copied from: adapter/'s weights and adapter_config.json are
byte copies. merged/ is computed, so nothing but a manifest can vouch for it; it is
published by one rename, so a merged/ that exists is at least complete.
"""

from __future__ import annotations

from pathlib import Path

from axo_helper.errors import AxoHelperError
from axo_helper.export.files import read_json, sha256_file
from axo_helper.export.manifest import entry_problem
from axo_helper.export.source import RunInfo
from axo_helper.rundir import ADAPTER, RunDir
from axo_helper.shell import command

# adapter/ files that are byte copies of output/'s (build_adapter).
_COPIED = ("adapter_config.json", "adapter_model.safetensors")


def _against_manifest(run_dir: Path, variant: str) -> list[str] | None:
    """Problems of variant/ against the manifest; None when the manifest does not list it."""
    manifest = read_json(RunDir(run_dir).manifest)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        return None
    prefix = f"{variant}/"
    mine = [e for e in files if isinstance(e, dict) and str(e.get("path", "")).startswith(prefix)]
    if not mine:
        return None
    problems = [p for e in mine if (p := entry_problem(run_dir, e, "sha256 differs")) is not None]
    listed = {e["path"] for e in mine}
    for f in sorted((run_dir / variant).rglob("*")):
        rel = f.relative_to(run_dir).as_posix()
        if f.is_file() and rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    return problems


def _against_output(info: RunInfo, variant: str) -> list[str]:
    if variant != ADAPTER:
        return []
    problems = []
    for name in _COPIED:
        src, kept = info.output_dir / name, info.run_dir / variant / name
        if not src.is_file():
            continue  # adapter_model.bin: converted, not copied
        if not kept.is_file():
            problems.append(f"{variant}/{name}: missing")
        elif sha256_file(kept) != sha256_file(src):
            problems.append(f"{variant}/{name}: differs from {src}")
    return problems


def check_kept(info: RunInfo, variant: str) -> None:
    """Refuse to keep (and so to bless in a new manifest) a variant that does not verify."""
    problems = _against_manifest(info.run_dir, variant)
    if problems is None:
        problems = _against_output(info, variant)
    if problems:
        raise AxoHelperError(
            f"{info.run_dir / variant} is not the export of this run: " + "; ".join(problems[:5]),
            hint="rebuild it from output/ with: "
            + command("axo-helper", "export", info.run_dir, "--force"),
        )
