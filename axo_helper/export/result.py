"""What an export returns: every file it lists, and the result `export --json` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axo_helper.rundir import EXPORT_VARIANTS


@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the run directory, with "/"
    size: int
    sha256: str


@dataclass(frozen=True)
class ExportResult:
    run_dir: Path
    method: str  # "lora", "qlora", "full" or "freeze"
    built: tuple[str, ...]  # variants written by this call
    kept: tuple[str, ...]  # variants that were already there (an interrupted export)
    modelfile: Path
    manifest: Path
    files: tuple[ExportedFile, ...]
    merge: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    verified: bool = False

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(v for v in EXPORT_VARIANTS if v in self.built or v in self.kept)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "method": self.method,
            "variants": {
                v: {
                    "path": str(self.run_dir / v),
                    "status": "built" if v in self.built else "kept",
                }
                for v in self.variants
            },
            "modelfile": str(self.modelfile),
            "manifest": str(self.manifest),
            "files": len(self.files),
            "bytes": sum(f.size for f in self.files),
            "merge": self.merge,
            "verified": self.verified,
            "warnings": list(self.warnings),
        }
