"""Atomic file writes: a temporary file in the same directory, fsync, then rename.

A reader sees the old file or the new one, never half of one; an interrupted
write leaves at most a stray `.tmp-*` file, never a truncated target.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from axo_helper.errors import OutputExistsError


def atomic_write_bytes(path: Path, data: bytes, *, force: bool = True) -> None:
    path = Path(path)
    if not force and path.exists():
        raise OutputExistsError(f"{path} already exists", hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, force: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), force=force)
