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
            # mkstemp creates 0600; a new file gets what open() would give it (0666 less
            # the umask), a replaced one keeps its own mode.
            os.fchmod(fh.fileno(), _mode_for(path))
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux says it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str, *, force: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), force=force)
