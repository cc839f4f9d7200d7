"""Reading a child's output: did it run out of GPU memory, and what was the error."""

from __future__ import annotations

import re

# What CUDA (and ROCm) print when the caching allocator gives up.
_OOM = re.compile(
    r"CUDA out of memory|OutOfMemoryError|HIP out of memory|CUBLAS_STATUS_ALLOC_FAILED"
)
# A Python exception line at the start of a line: "ValueError: ...", "pkg.mod.Error: ...".
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Invalid)\b:?.*")
_ROW = re.compile(r"\b(?:in )?row \d+|\bline \d+|\bindex \d+", re.I)


def line_is_oom(line: str) -> bool:
    return _OOM.search(line) is not None


def looks_like_oom(lines: list[str]) -> bool:
    return any(line_is_oom(line) for line in lines)


def error_summary(lines: list[str]) -> str | None:
    """The last exception line of a failed child, plus a line naming a row if any."""
    exception = None
    for line in reversed(lines):
        stripped = line.strip()
        if _EXCEPTION.match(stripped) and not stripped.startswith("Traceback"):
            exception = stripped
            break
    rows = [ln.strip() for ln in lines if _ROW.search(ln) and ("rror" in ln or "JSON" in ln)]
    parts = [p for p in (exception, rows[-1] if rows else None) if p]
    if not parts:
        return None
    # Keep the message short: an exception line can carry a whole row of data.
    return " / ".join(dict.fromkeys(p[:400] for p in parts))
