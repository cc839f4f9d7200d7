"""One measured run (a row of the calibration store) and what makes a row usable.

A row is read back from SQLite or imported from a CSV that anyone may have edited,
so every value is checked: types, a known method, and plausible sizes (a broken or
hostile row must never turn into a correction of the plan). CSV cells are escaped
so a spreadsheet shows them as text, never runs them as formulas.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any

from axo_helper.specs import TrainSetup

SCHEMA_VERSION = 1

# A row outside these is a broken measurement or another setup, never a correction:
# no GPU has 4 TiB, nothing trains in 10 MiB, and a model off by more than 5x in either
# direction measured something else. Rows are refused, not clamped into the factor.
PLAUSIBLE_GIB = (0.01, 4096.0)
PLAUSIBLE_RATIO = (0.2, 5.0)
PLAUSIBLE_TOKENS_PER_S = 1e8
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Measurement:
    """One finished run, as stored."""

    gpu: str
    family: str
    model: str
    method: str
    sequence_len: int
    micro_batch_size: int
    gradient_checkpointing: bool
    attn_implementation: str
    optimizer: str
    num_gpus: int
    distributed: str
    predicted_gib: float
    measured_gib: float
    tokens_per_s: float | None = None
    created_at: float = 0.0
    source: str = "run"  # "run" or "import"

    @property
    def ratio(self) -> float:
        return self.measured_gib / self.predicted_gib

    @classmethod
    def from_setup(
        cls,
        setup: TrainSetup,
        *,
        gpu: str,
        predicted_gib: float,
        measured_gib: float,
        tokens_per_s: float | None = None,
        source: str = "run",
    ) -> Measurement:
        return cls(
            gpu=gpu,
            family=setup.model.family,
            model=setup.model.name,
            method=setup.method,
            sequence_len=setup.sequence_len,
            micro_batch_size=setup.micro_batch_size,
            gradient_checkpointing=setup.gradient_checkpointing,
            attn_implementation=setup.attn_implementation,
            optimizer=setup.optimizer,
            num_gpus=setup.num_gpus,
            distributed=setup.distributed,
            predicted_gib=predicted_gib,
            measured_gib=measured_gib,
            tokens_per_s=tokens_per_s,
            created_at=time.time(),
            source=source,
        )


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Measurement))


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_uncell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def _implausible(m: Measurement) -> str | None:
    """Why a row cannot be a measurement of a training run; None when it can."""
    low, high = PLAUSIBLE_GIB
    for name in ("predicted_gib", "measured_gib"):
        v = getattr(m, name)
        if not math.isfinite(v) or v <= 0:
            return f"{name} must be a positive number, got {v!r}"
        if not low <= v <= high:
            return f"{name} {v:g} GiB is outside {low:g}-{high:g} GiB"
    lo, hi = PLAUSIBLE_RATIO
    if not lo <= m.ratio <= hi:
        return (
            f"measured/predicted is {m.ratio:.3g}, outside {lo:g}-{hi:g}: "
            "a broken measurement or a different setup"
        )
    t = m.tokens_per_s
    if t is not None and (not math.isfinite(t) or t <= 0 or t > PLAUSIBLE_TOKENS_PER_S):
        return f"tokens_per_s must be positive and plausible, got {t!r}"
    return None


def parse_row(version: Any, rec: dict[str, Any]) -> Measurement | str:
    """A Measurement, or the reason the row is unusable."""
    if version != SCHEMA_VERSION:
        return f"written by a different schema version ({version!r})"
    try:
        m = Measurement(
            gpu=str(rec["gpu"]),
            family=str(rec["family"]),
            model=str(rec["model"]),
            method=str(rec["method"]),
            sequence_len=int(rec["sequence_len"]),
            micro_batch_size=int(rec["micro_batch_size"]),
            gradient_checkpointing=str(rec["gradient_checkpointing"]).lower() in ("1", "true"),
            attn_implementation=str(rec["attn_implementation"]),
            optimizer=str(rec["optimizer"]),
            num_gpus=int(rec["num_gpus"]),
            distributed=str(rec["distributed"]),
            predicted_gib=float(rec["predicted_gib"]),
            measured_gib=float(rec["measured_gib"]),
            tokens_per_s=(
                float(rec["tokens_per_s"]) if rec.get("tokens_per_s") not in (None, "") else None
            ),
            created_at=float(rec.get("created_at") or 0.0),
            source=str(rec.get("source") or "run"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        return f"unreadable value ({exc})"
    if m.method not in ("full", "lora", "qlora"):
        return f"unknown method {m.method!r}"
    if (why := _implausible(m)) is not None:
        return why
    if m.sequence_len <= 0 or m.micro_batch_size <= 0 or m.num_gpus <= 0:
        return "sequence_len, micro_batch_size and num_gpus must be positive"
    return m
