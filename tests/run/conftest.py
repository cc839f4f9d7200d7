"""The `invoke` fixture for run's CLI tests: `axo-helper run ARGS...`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result


@pytest.fixture
def invoke(cli: Callable[..., Result]) -> Callable[..., Result]:
    """`axo-helper run ARGS...` through the shared cli fixture."""
    return lambda *args: cli("run", *args)
