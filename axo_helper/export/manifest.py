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
from axo_helper.rundir import RunDir
from axo_helper.versions import versions


def files_of(run_dir: Path, names: Iterable[str]) -> list[ExportedFile]:
    """Every file under the named directories (or the named files), with checksums."""
    out: list[ExportedFile] = []
    for name in names:
        root = run_dir / name
        paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in paths:
            out.append(
                ExportedFile(
                    path=p.relative_to(run_dir).as_posix(),
                    size=p.stat().st_size,
                    sha256=sha256_file(p),
                )
            )
    return out


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
        "versions": versions(),
        "merge": merge,
        "plan": info.record,
        "metrics": info.metrics,
    }
    path = RunDir(info.run_dir).manifest
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    shareable(path)
    return path


def verify_export(run_dir: Path) -> list[str]:
    """Problems with an export (missing, resized or changed files); [] when it verifies."""
    run_dir = Path(run_dir)
    manifest_path = RunDir(run_dir).manifest
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return [f"{manifest_path} is missing or unreadable"]
    problems = []
    for entry in manifest["files"]:
        path = run_dir / str(entry.get("path"))
        if not path.is_file():
            problems.append(f"{entry.get('path')}: missing")
        elif path.stat().st_size != entry.get("size"):
            problems.append(
                f"{entry.get('path')}: size {path.stat().st_size}, manifest {entry.get('size')}"
            )
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{entry.get('path')}: sha256 differs from the manifest")
    return problems
