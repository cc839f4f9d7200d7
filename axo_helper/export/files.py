"""File plumbing of an export: reading JSON, checksums, permissions, fsync, the lock,
publishing a finished variant directory atomically, and reading --max-shard-size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from axo_helper.errors import AxoHelperError, ExportUsageError
from axo_helper.rundir import EXPORT_VARIANTS, RunDir


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def shareable(path: Path) -> None:
    """Give a file the permissions a plain write would (temp files are created 0600).

    The export is meant to be served (vLLM, Ollama) possibly by another user.
    """
    os.chmod(path, 0o666 & ~_umask())


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush one file (or directory) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file under root, then the directories, before the rename publishes it."""
    mode = 0o666 & ~_umask()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(dirpath, name), mode)
            fsync_path(os.path.join(dirpath, name))
        with contextlib.suppress(OSError):  # directories cannot be fsynced everywhere
            fsync_path(dirpath)


def parse_size(value: int | str) -> int:
    """'5GB', '500MB', '2GiB' or a number of bytes -> bytes."""
    if isinstance(value, int):
        size = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*", str(value).upper())
        if not m:
            raise ExportUsageError(
                f"cannot read the size {value!r}", hint="write it like 5GB, 500MB or 2GiB"
            )
        unit = m.group(2).rstrip("B") or ""
        base = 1024 if unit.endswith("I") else 1000
        power = "KMGT".find(unit[:1]) + 1 if unit else 0
        size = int(float(m.group(1)) * base**power)
    if size <= 0:
        raise ExportUsageError(
            f"max shard size must be positive, got {value!r}",
            hint="write it like 5GB, 500MB or 2GiB",
        )
    return size


@contextlib.contextmanager
def export_lock(run_dir: Path) -> Iterator[None]:
    """One export of a run at a time (the temp-dir cleanup must not hit a live export)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, run unguarded
        yield
        return
    with RunDir(run_dir).export_lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise AxoHelperError(
                f"another export of {run_dir} is running",
                hint="wait for it to finish, then run `axo-helper export` again",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def temp_dir_for(final: Path) -> Path:
    """The hidden directory a variant is built in before publish() renames it."""
    return final.with_name(f".{final.name}.tmp-{secrets.token_hex(4)}")


def clean_stale(run_dir: Path) -> None:
    """Remove what a killed export left: hidden .<variant>.tmp-* / .old-* directories."""
    for v in EXPORT_VARIANTS:
        for stale in [*run_dir.glob(f".{v}.tmp-*"), *run_dir.glob(f".{v}.old-*")]:
            shutil.rmtree(stale, ignore_errors=True)


def publish(tmp: Path, final: Path) -> None:
    """Rename a finished temp directory into place, replacing `final` if it exists.

    The old copy is renamed aside first, so at every instant `final` is either the
    complete old variant, absent, or the complete new one.
    """
    fsync_tree(tmp)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
