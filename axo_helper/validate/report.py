"""The results of validating a config: each Issue, the memory check, the whole report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from axo_helper.errors import EXIT_DOES_NOT_FIT, EXIT_FAILURE, EXIT_OK
from axo_helper.specs import MemoryBreakdown, TrainSetup

Source = Literal["yaml", "schema", "axolotl", "keys", "file", "memory"]


@dataclass(frozen=True)
class Issue:
    """One error or warning, located in the file where possible."""

    path: str  # "datasets.0.type"; "" for the config as a whole
    line: int | None
    message: str
    source: Source = "schema"

    def format(self) -> str:
        where = self.path or "(config)"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "message": self.message,
            "source": self.source,
        }


@dataclass(frozen=True)
class MemoryCheck:
    gpu: str  # Hardware.describe()
    breakdown: MemoryBreakdown
    budget_gib: float  # per GPU, after the policy's headroom
    fits: bool
    suggestion: str | None = None  # "micro_batch_size 2 would fit"
    setup: TrainSetup | None = None

    def summary(self) -> str:
        total = self.breakdown.total_gib
        if self.fits:
            return f"fits: {total:.1f} / {self.budget_gib:.1f} GiB"
        tail = f"; {self.suggestion}" if self.suggestion else ""
        return f"does not fit: needs {total:.1f} GiB of {self.budget_gib:.1f} GiB{tail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.breakdown.as_dict(),
            "budget_gib": round(self.budget_gib, 2),
            "trainable_params": self.breakdown.trainable_params,
            "gpu": self.gpu,
            "fits": self.fits,
            "suggestion": self.suggestion,
            "notes": list(self.breakdown.notes),
        }


@dataclass
class ValidationReport:
    path: str
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped and why
    axolotl: str = "not run"  # "checked (Axolotl 0.19.0)", "skipped: ..."
    memory: MemoryCheck | None = None
    config: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def fits(self) -> bool | None:
        return None if self.memory is None else self.memory.fits

    @property
    def exit_code(self) -> int:
        """0 valid and fits (or fit unchecked), 1 invalid, 3 valid but does not fit."""
        if self.errors:
            return EXIT_FAILURE
        if self.fits is False:
            return EXIT_DOES_NOT_FIT
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.path,
            "valid": self.valid,
            "errors": [e.as_dict() for e in self.errors],
            "warnings": [w.as_dict() for w in self.warnings],
            "notes": list(self.notes),
            "axolotl": self.axolotl,
            "memory": self.memory.as_dict() if self.memory else None,
            "fits": self.fits,
        }
