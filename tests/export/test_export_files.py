"""export's file plumbing: reading --max-shard-size (a usage error when unreadable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from axo_helper.errors import EXIT_USAGE, AxoHelperError
from axo_helper.export.files import parse_size


@pytest.mark.parametrize(
    ("raw", "size"), [("5GB", 5 * 10**9), ("500MB", 5 * 10**8), ("2GiB", 2 * 2**30), (1024, 1024)]
)
def test_parse_size(raw: Any, size: int) -> None:
    assert parse_size(raw) == size


def test_parse_size_rejects_garbage() -> None:
    with pytest.raises(AxoHelperError, match="5GB"):
        parse_size("lots")


def test_a_bad_max_shard_size_is_a_usage_error(tmp_path: Path, cli: Callable[..., Result]) -> None:
    res = cli("export", str(tmp_path), "--max-shard-size", "lots")
    assert res.exit_code == EXIT_USAGE and "cannot read the size 'lots'" in res.stderr
