"""Peak memory measured by the plugin against the plan's prediction, per component.

The prediction is the one the training ran under (rundir.predicted_gib: the last
attempt's after an OOM re-plan); its components are plan.json's `memory` breakdown
(memory.estimate's MemoryBreakdown.as_dict, in GiB). The measurement is only a total:
what a device reports is one high-water mark, not a breakdown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from axo_helper.rundir import predicted_gib

# Keys of the breakdown that are not components of the predicted peak.
_NOT_COMPONENTS = ("total_gib", "budget_gib")


def memory_figures(
    record: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    steps: list[dict[str, Any]],
) -> dict[str, Any]:
    """`report --json`'s `memory` object (docs/report.md)."""
    predicted = predicted_gib(record)
    measured, kind = _measured(summary, steps)
    missing: list[str] = []
    if predicted is None:
        missing.append("no predicted peak: plan.json holds no memory estimate")
    if measured is None:
        missing.append("no measured peak: the plugin recorded no step")
    on_cpu = kind == "process_max_rss"
    if on_cpu:
        missing.append(
            "measured on CPU: the peak is the process's resident memory, which a GPU "
            "prediction does not describe"
        )
    error = (
        round(100.0 * (measured - predicted) / predicted, 1)
        if predicted and measured is not None and not on_cpu
        else None
    )
    return {
        "predicted_gib": predicted,
        "measured_gib": measured,
        "measured_kind": kind,
        "error_pct": error,
        "budget_gib": _budget(record),
        "components_gib": _components(record),
        "device": summary.get("device") if summary else None,
        "missing": missing,
    }


def _measured(
    summary: Mapping[str, Any] | None, steps: list[dict[str, Any]]
) -> tuple[float | None, str | None]:
    if summary and isinstance(summary.get("peak_memory_gib"), (int, float)):
        return float(summary["peak_memory_gib"]), summary.get("peak_memory_kind")
    peaks = [s["peak_memory_gib"] for s in steps if isinstance(s.get("peak_memory_gib"), float)]
    return (max(peaks), None) if peaks else (None, None)


def _breakdown(record: Mapping[str, Any] | None) -> Mapping[str, Any]:
    memory = record.get("memory") if isinstance(record, Mapping) else None
    return memory if isinstance(memory, Mapping) else {}


def _components(record: Mapping[str, Any] | None) -> dict[str, float]:
    """name -> GiB of the predicted peak ("weights", "activations", ...)."""
    return {
        key.removesuffix("_gib"): float(value)
        for key, value in _breakdown(record).items()
        if key.endswith("_gib")
        and key not in _NOT_COMPONENTS
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    }


def _budget(record: Mapping[str, Any] | None) -> float | None:
    value = _breakdown(record).get("budget_gib")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
