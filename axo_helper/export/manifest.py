"""manifest.json: every exported file with its size and sha256, the versions, the run
record (plan.json) and metrics; written last, and checked again by verify_export.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from axo_helper.atomic import atomic_write_text
from axo_helper.export.defaults import MANIFEST_VERSION
from axo_helper.export.files import read_json, sha256_file, shareable
from axo_helper.export.result import ExportedFile
from axo_helper.export.source import RunInfo
from axo_helper.rundir import EXPORT_VARIANTS, GGUF_DIR, MODELFILE, RunDir
from axo_helper.versions import versions


def _listed(run_dir: Path, names: Iterable[str]) -> list[Path]:
    """Every file under the named directories (or the named files that exist)."""
    out: list[Path] = []
    for name in names:
        root = run_dir / name
        if root.is_dir():
            out += sorted(p for p in root.rglob("*") if p.is_file())
        elif root.is_file():
            out.append(root)
    return out


def _entry(run_dir: Path, p: Path) -> ExportedFile:
    rel = p.relative_to(run_dir).as_posix() if p.is_relative_to(run_dir) else str(p)
    return ExportedFile(path=rel, size=p.stat().st_size, sha256=sha256_file(p))


def files_of(run_dir: Path, names: Iterable[str]) -> list[ExportedFile]:
    """Every file under the named directories (or the named files), with checksums."""
    return [_entry(run_dir, p) for p in _listed(run_dir, names)]


def sources_of(info: RunInfo) -> list[ExportedFile]:
    """The files of Axolotl's output_dir the export was built from (checkpoints aside)."""
    out = info.output_dir
    files = sorted(p for p in out.iterdir() if p.is_file()) if out.is_dir() else []
    return [_entry(info.run_dir, p) for p in files]


def previous_merge(run_dir: Path) -> dict[str, Any]:
    """The merge details an earlier export recorded (kept when merged/ is not rebuilt)."""
    previous = read_json(RunDir(run_dir).manifest)
    if isinstance(previous, dict):
        return previous.get("merge") or {}
    return {}


def write_manifest(
    info: RunInfo,
    exported: Sequence[str],
    files: Sequence[ExportedFile],
    merge: dict[str, Any],
    sources: Sequence[ExportedFile] = (),
) -> Path:
    """Write manifest.json atomically; call it last: a manifest means the export finished."""
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "run": info.run_dir.name,
        "base_model": info.base_model,
        "method": info.method,
        "variants": list(exported),
        "files": [f.__dict__ for f in files],
        # What the export was made from: `export --verify` holds output/ to it.
        "sources": [f.__dict__ for f in sources],
        "versions": versions(),
        "merge": merge,
        "plan": info.record,
        "metrics": info.metrics,
    }
    path = RunDir(info.run_dir).manifest
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    shareable(path)
    return path


def entry_problem(run_dir: Path, entry: Any, changed: str) -> str | None:
    """What is wrong with one manifest entry's file, or None when it matches."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        return f"a manifest entry is not a file record: {entry!r:.80}"
    name = entry["path"]
    path = run_dir / name
    if not path.is_file():
        return f"{name}: missing"
    size = path.stat().st_size
    if size != entry.get("size"):
        return f"{name}: size {size}, manifest {entry.get('size')}"
    if sha256_file(path) != entry.get("sha256"):
        return f"{name}: {changed}"
    return None


def verify_export(run_dir: Path) -> list[str]:
    """Problems with an export; [] when it verifies.

    Every listed file must be there with its size and sha256, every file under the
    exported variants and gguf/ (and the Modelfile) must be listed, and the output/ files the
    export was made from must still be the ones it recorded.
    """
    run_dir = Path(run_dir)
    manifest_path = RunDir(run_dir).manifest
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return [f"{manifest_path} is missing or unreadable"]
    problems = [
        p
        for e in manifest["files"]
        if (p := entry_problem(run_dir, e, "sha256 differs from the manifest")) is not None
    ]
    listed = {e.get("path") for e in manifest["files"] if isinstance(e, dict)}
    variants = [v for v in manifest.get("variants") or [] if v in EXPORT_VARIANTS]
    for f in _listed(run_dir, [*variants, GGUF_DIR, MODELFILE]):
        rel = f.relative_to(run_dir).as_posix()
        if rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    sources = manifest.get("sources")
    for e in sources if isinstance(sources, list) else []:
        problem = entry_problem(run_dir, e, "changed since the export (sha256)")
        if problem is not None:
            problems.append(problem)
    return problems
