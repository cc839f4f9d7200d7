"""`axo-helper demo` without training: refusing an earlier demo, the CPU thread cap."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result


def test_demo_refuses_an_earlier_demo_without_force(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    (tmp_path / "d" / "run").mkdir(parents=True)
    (tmp_path / "d" / "run" / "plan.json").write_text("{}")
    res = cli("demo", "-o", str(tmp_path / "d"))
    assert res.exit_code == 2 and "--force" in res.stderr
    assert not (tmp_path / "d" / "tiny-model").exists()


@pytest.mark.parametrize(
    ("load", "cores", "expected"),
    [(0.4, 2, None), (1.1, 2, 1), (1.9, 2, 1), (3.0, 2, 1), (3.5, 16, 12)],
)
def test_demo_uses_the_free_cores_on_a_busy_cpu(
    monkeypatch: pytest.MonkeyPatch, load: float, cores: int, expected: int | None
) -> None:
    import os

    from axo_helper import demo

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert demo.busy_cpu_threads() == expected

    with demo._child_threads(expected):  # what the Axolotl processes inherit
        assert os.environ.get("OMP_NUM_THREADS") == (None if expected is None else str(expected))
    assert "OMP_NUM_THREADS" not in os.environ

    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's setting wins
    assert demo.busy_cpu_threads() is None
    with demo._child_threads(1):
        assert os.environ["OMP_NUM_THREADS"] == "4"
