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


def test_demo_detects_the_hardware_once_and_plans_with_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Training stubbed as a dry run: what is left is detect -> plan -> run directory.
    from dataclasses import replace

    from axo_helper import demo, hardware
    from axo_helper.errors import TrainingError
    from axo_helper.run.request import RunRequest, RunResult
    from axo_helper.run.start import start_run
    from axo_helper.tinymodel import demo_data_path

    rtx4090 = hardware.resolve("rtx4090")
    calls: list[str] = []

    def detect(spec: str, **kwargs: object) -> object:
        calls.append(spec)
        return rtx4090

    def dry(req: RunRequest, display: object = None) -> RunResult:
        assert req.hardware is rtx4090 and req.plan is not None and req.plan.allow_cpu
        return start_run(replace(req, dry_run=True))

    monkeypatch.setattr(hardware, "resolve", detect)
    monkeypatch.setattr(
        demo,
        "_build_inputs",
        lambda *a: (Path("Qwen/Qwen2.5-0.5B"), demo_data_path("qa.jsonl"), None),
    )
    monkeypatch.setattr(demo, "start_run", dry)
    with pytest.raises(TrainingError) as caught:
        demo.run_demo(tmp_path / "d", quiet=True)
    assert calls == ["auto"]  # once, by the demo; the plan reused it
    assert "the demo's training dry-run" in caught.value.message
    assert caught.value.exit_code == 1
    record = demo.demo_run_dir(tmp_path / "d").read_plan_record()
    assert record is not None and record["hardware"] == rtx4090.describe()


def test_demo_training_failure_passes_the_exit_code_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from axo_helper import demo
    from axo_helper.errors import TrainingError
    from axo_helper.run.request import RunResult

    failed = RunResult(tmp_path, tmp_path / "axolotl.yml", "failed", 7, [], message="boom")
    monkeypatch.setattr(demo, "_build_inputs", lambda *a: (tmp_path, tmp_path / "qa.jsonl", None))
    monkeypatch.setattr(demo, "start_run", lambda req, display=None: failed)
    with pytest.raises(TrainingError) as caught:
        demo.run_demo(tmp_path / "d", quiet=True)
    assert caught.value.exit_code == 7
    assert caught.value.message == "the demo's training failed: boom"
