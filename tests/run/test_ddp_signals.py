"""Stopping a multi-process launch: what reaches torchrun, so that no worker outlives a run.

torchrun starts each worker in a session of its own, so only torchrun can stop them:
the child here does what torchrun does (a worker in its own session, stopped when the
launcher gets SIGINT or SIGTERM). The real torchrun and Axolotl: test_ddp_launch.py.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from axo_helper import launch as launch_mod
from axo_helper.launch import LaunchSpec, interrupted, run_launch

psutil = pytest.importorskip("psutil")

# A stand-in for torchrun: one worker in its own session, stopped on SIGINT/SIGTERM
# (torchrun forwards the signal it got; the worker here just ends).
LAUNCHER = """
import pathlib, signal, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                          start_new_session=True)
ignore_first_sigint = sys.argv[2] == "slow-save"
def stop(signum, _frame):
    global ignore_first_sigint
    print(f"launcher got {signal.Signals(signum).name}", flush=True)
    if signum == signal.SIGINT and ignore_first_sigint:
        ignore_first_sigint = False  # like a save that takes a while
        return
    worker.terminate(); worker.wait()
    sys.exit(128 + signum)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
pathlib.Path(sys.argv[1]).write_text(str(worker.pid))
for _ in range(400):  # 20 s: nothing came, end anyway (the test then fails, not hangs)
    time.sleep(0.05)
worker.terminate(); worker.wait()
sys.exit(3)
"""


@pytest.fixture(autouse=True)
def _forget_the_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    """These runs end interrupted; later tests that fake the child must not read it."""
    monkeypatch.setattr(launch_mod, "_interrupted", False)


def launch_and_signal(
    tmp_path: Path, mode: str, *signals: signal.Signals
) -> tuple[int, list[str], int]:
    """run_launch the stand-in; send `signals` to this process once its worker runs."""
    pid_file = tmp_path / "worker.pid"
    spec = LaunchSpec(
        (sys.executable, "-c", LAUNCHER, str(pid_file), mode), dict(os.environ), str(tmp_path)
    )

    def send() -> None:
        for _ in range(400):
            if pid_file.exists() and pid_file.read_text():
                break
            threading.Event().wait(0.05)
        for sig in signals:
            os.kill(os.getpid(), sig)
            threading.Event().wait(0.5)

    threading.Thread(target=send, daemon=True).start()
    lines: list[str] = []
    rc = run_launch(spec, tmp_path / "train.log", lines.append)
    return rc, lines, int(pid_file.read_text())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_closed_terminal_stops_the_launcher_and_its_workers(tmp_path: Path) -> None:
    # Our own handler meanwhile: a SIGHUP that run_launch did not take must not end pytest.
    before = signal.signal(signal.SIGHUP, lambda *_: None)
    try:
        rc, lines, worker = launch_and_signal(tmp_path, "plain", signal.SIGHUP)
        restored = signal.getsignal(signal.SIGHUP)
    finally:
        ours = signal.signal(signal.SIGHUP, before)
    assert lines == ["launcher got SIGTERM"]
    assert rc == 128 + signal.SIGTERM
    assert interrupted()
    assert gone(worker)
    assert restored is ours  # run_launch put the previous handler back


def test_a_second_ctrl_c_during_a_slow_save_sends_sigterm(tmp_path: Path) -> None:
    rc, lines, worker = launch_and_signal(tmp_path, "slow-save", signal.SIGINT, signal.SIGINT)
    assert lines == ["launcher got SIGINT", "launcher got SIGTERM"]
    assert rc == 128 + signal.SIGTERM
    assert interrupted()
    assert gone(worker)
