"""DDP for real on CPU: the planner's torchrun commands, two processes, gloo, real Axolotl.

There is no GPU here, so the runs plan with `--gpu 2x24GB` (one node, two processes)
and `--gpu 24GB --nodes 2` (two "nodes" on 127.0.0.1): the GPU count is all the launch
depends on, and the argv is the one build_launch makes for any such plan. Two settings
make Axolotl 0.19 train DDP on CPU (docs/run.md, "Several GPUs and nodes"):

- ACCELERATE_USE_CPU=true: transformers' TrainingArguments then builds Accelerate's
  PartialState(cpu=True), which is MULTI_CPU with the gloo backend when WORLD_SIZE > 1.
  Without it every rank trains alone ("process group is initialized, but parallel_mode
  != ParallelMode.DISTRIBUTED") and both write the same checkpoints.
- `max_memory: {cpu: ...}`: for any world size above 1 Axolotl sets device_map
  {"": LOCAL_RANK}, an accelerator index ("Cannot access accelerator device when none
  is available" while loading the model); with a max_memory map it infers the device
  map instead, all on the CPU.

Slow (every Axolotl process spends 10-20 s importing): two runs of 1-2 steps, one of
them stopped with Ctrl-C, and the export of the other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from axo_helper.config.read import batch_of
from axo_helper.errors import EXIT_INTERRUPTED
from axo_helper.launch import LaunchTarget, build_launch
from axo_helper.run.configedit import set_top_level
from axo_helper.shell import command
from axo_helper.tinymodel import demo_data_path

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("axolotl", reason="needs the [train] extra")
psutil = pytest.importorskip("psutil")  # installed with accelerate

QA = str(demo_data_path("qa.jsonl"))
TIMEOUT = 900  # seconds for one run; two cores shared with other jobs
STOP_WITHIN = 60  # seconds from Ctrl-C until axo-helper has exited


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ddp_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of every run here (module scope: set up before the autouse home)."""
    return {
        **os.environ,
        "AXO_HELPER_HOME": str(tmp_path_factory.mktemp("ddp-home")),
        "HF_HUB_OFFLINE": "1",
        "NO_COLOR": "1",
        "ACCELERATE_USE_CPU": "true",
        # gloo otherwise uses the interface of the host name; these runs stay on loopback.
        "GLOO_SOCKET_IFNAME": "lo",
    }


@pytest.fixture(scope="module")
def cpu_config(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory, ddp_env: dict[str, str]
) -> str:
    """The config `run --gpu cpu` plans for the tiny model (a dry run: no Axolotl)."""
    gen = tmp_path_factory.mktemp("ddp-gen") / "gen"
    proc = axo("run", "--gpu", "cpu", "--model", str(tiny_model), "--data", QA, "-o", str(gen),
               "--dry-run", env=ddp_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (gen / "axolotl.yml").read_text(encoding="utf-8")


def ddp_config(cpu_config: str, path: Path) -> Path:
    """The planned CPU config, DDP-ready on CPU, with its own dataset cache (one per node)."""
    changes: dict[str, Any] = {
        "max_memory": {"cpu": "4GiB"},
        "dataset_prepared_path": str(prepared_of(path)),
    }
    path.write_text(set_top_level(cpu_config, changes, "DDP on CPU"), encoding="utf-8")
    return path


def prepared_of(config: Path) -> Path:
    return config.parent / f"{config.stem}-prepared"


def axo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "axo_helper", *args],
        capture_output=True, text=True, env=env, timeout=TIMEOUT,
    )  # fmt: skip


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`axo-helper ARGS` as a terminal's foreground job: the leader of its own group."""
    return subprocess.Popen(
        [sys.executable, "-m", "axo_helper", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "plan.json").read_text())


def descendants(pid: int) -> list[Any]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def has_step(stream: Path) -> bool:
    """Whether rank 0 has written a step line (text only: the file is being appended to)."""
    return stream.exists() and '"event":"step"' in stream.read_text()


def kill_tree(proc: subprocess.Popen[str], known: Sequence[Any] = ()) -> None:
    """After a failure: every process the run started (workers are in sessions of their own)."""
    for p in [*descendants(proc.pid), *known]:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    proc.kill()


def still_running(procs: list[Any]) -> list[str]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.pid} {' '.join(p.cmdline()[:6])}")
        except psutil.NoSuchProcess:
            pass
    return alive


# --------------------------------------------------------------------------- one node, Ctrl-C
def test_ctrl_c_stops_every_rank_of_a_two_process_run(
    cpu_config: str, ddp_env: dict[str, str], tmp_path: Path
) -> None:
    config = ddp_config(cpu_config, tmp_path / "ddp.yml")
    run_dir = tmp_path / "run"
    proc = start("run", "--config", str(config), "--gpu", "2x24GB", "-o", str(run_dir),
                 "--max-steps", "200", "--no-export", env=ddp_env)  # fmt: skip
    seen: dict[int, Any] = {}
    try:
        deadline = time.monotonic() + TIMEOUT
        # Wait for rank 0's first step, noting every process the run starts meanwhile.
        while not has_step(run_dir / "metrics.jsonl"):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no training step within the timeout"
            seen.update((p.pid, p) for p in descendants(proc.pid))
            time.sleep(0.5)
        tree = descendants(proc.pid)
        seen.update((p.pid, p) for p in tree)

        # The launcher runs exactly the planner's command: torchrun, two workers.
        target = LaunchTarget(gpus_per_node=2, offline=True)
        (spec,) = build_launch(target, run_dir.resolve() / "axolotl.yml", python=sys.executable)
        assert spec.argv[2:6] == ("torch.distributed.run", "--standalone", "--nproc-per-node", "2")
        launchers = [p for p in tree if p.cmdline()[1:3] == ["-m", "torch.distributed.run"]]
        assert [tuple(p.cmdline()) for p in launchers] == [spec.argv]
        workers = [p for p in tree if "axolotl.cli.train" in p.cmdline() and p not in launchers]
        ranks = sorted((p.environ()["RANK"], p.environ()["WORLD_SIZE"]) for p in workers)
        assert ranks == [("0", "2"), ("1", "2")]

        # Ctrl-C as a terminal sends it: SIGINT to the foreground process group.
        pressed = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=STOP_WITHIN)
        stopped_after = time.monotonic() - pressed
    finally:
        if proc.poll() is None:  # a failed assertion above: leave nothing behind
            kill_tree(proc, list(seen.values()))

    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert stopped_after < STOP_WITHIN
    assert "interrupted; continue with: axo-helper run --resume" in err
    time.sleep(1)  # the workers are torchrun's, reaped by it before it exits
    assert still_running(list(seen.values())) == []  # no rank, launcher or helper left

    rec = record(run_dir)
    assert rec["status"] == "interrupted"
    (attempt,) = rec["attempts"]
    assert attempt["outcome"] == "interrupted"
    assert attempt["command"].endswith(command(*spec.argv))
    # Rank 0 alone writes the stream: one start line for the job of two, no step twice.
    stream = lines(run_dir / "metrics.jsonl")
    starts = [r for r in stream if r["event"] == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2
    steps = [r["step"] for r in stream if r["event"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    # Axolotl's SIGINT handler on local rank 0 saved the adapter before it exited.
    assert (run_dir / "output" / "adapter_model.safetensors").is_file()


# --------------------------------------------------------------------------- two nodes
NODES = 2


@pytest.fixture(scope="module")
def two_nodes(
    cpu_config: str, ddp_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Node 0 and node 1 of one job, started at once, rendezvous on 127.0.0.1."""
    root = tmp_path_factory.mktemp("two-nodes")
    port = free_port()
    runs = []
    for rank in range(NODES):
        config = ddp_config(cpu_config, root / f"node{rank}.yml")
        run_dir = root / f"node{rank}"
        proc = start("run", "--config", str(config), "--gpu", "24GB", "--nodes", str(NODES),
                     "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port",
                     str(port), "-o", str(run_dir), "--max-steps", "2", "--no-export", "--json",
                     env=ddp_env)  # fmt: skip
        runs.append((rank, config, run_dir, proc))
    done = []
    try:
        for rank, config, run_dir, proc in runs:
            out, err = proc.communicate(timeout=TIMEOUT)
            done.append({"rank": rank, "config": config, "dir": run_dir, "rc": proc.returncode,
                         "result": json.loads(out) if out.strip() else None, "stderr": err})  # fmt: skip
    finally:
        for *_, proc in runs:
            if proc.poll() is None:
                kill_tree(proc)
    return {"port": port, "nodes": done}


def test_two_node_rendezvous_trains_one_job_and_only_rank_0_writes(
    two_nodes: dict[str, Any],
) -> None:
    port = two_nodes["port"]
    for node in two_nodes["nodes"]:
        assert node["rc"] == 0, node["stderr"][-3000:]
        assert node["result"]["status"] == "finished"
        # Each node ran the command the planner builds for its rank (`--nodes`).
        target = LaunchTarget(gpus_per_node=1, nodes=NODES, offline=True)
        (spec,) = build_launch(
            target, node["dir"].resolve() / "axolotl.yml", node_rank=node["rank"],
            master_addr="127.0.0.1", master_port=port, python=sys.executable,
        )  # fmt: skip
        assert "--nnodes" in spec.argv and "--standalone" not in spec.argv
        (attempt,) = record(node["dir"])["attempts"]
        assert attempt["command"].endswith(command(*spec.argv))

    node0, node1 = (n["dir"] for n in two_nodes["nodes"])
    # The plugin writes once, on the global rank 0: node 0's stream is one run of two
    # steps, each line once; node 1 (global rank 1) writes no metrics at all.
    assert [(r["event"], r.get("step")) for r in lines(node0 / "metrics.jsonl")] == [
        ("start", None), ("step", 1), ("step", 2), ("end", None),
    ]  # fmt: skip
    summary = json.loads((node0 / "metrics.json").read_text())
    assert (summary["world_size"], summary["steps"], summary["last_step"]) == (2, 2, 2)
    assert not (node1 / "metrics.jsonl").exists() and not (node1 / "metrics.json").exists()

    # One job, not two: every optimizer step took world size x micro batch rows, the
    # two ranks splitting the data (a rank training alone would advance half as fast).
    from datasets import load_from_disk

    config = two_nodes["nodes"][0]["config"]
    (prepared,) = prepared_of(config).glob("*/")
    rows = len(load_from_disk(str(prepared)))
    micro_batch, _ = batch_of(yaml.safe_load(config.read_text()))
    first = next(r for r in lines(node0 / "metrics.jsonl") if r["event"] == "step")
    assert first["epoch"] == pytest.approx(NODES * micro_batch / rows, rel=0.15)
    state = json.loads((node0 / "output" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2


def test_export_works_on_the_two_node_run(two_nodes: dict[str, Any]) -> None:
    node0 = two_nodes["nodes"][0]["dir"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = axo("export", str(node0), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (node0 / "adapter" / "adapter_model.safetensors").is_file()
    assert any((node0 / "merged").glob("*.safetensors"))
    manifest = json.loads((node0 / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert "adapter/adapter_model.safetensors" in listed
    assert manifest["metrics"]["world_size"] == 2  # the DDP run's own metrics.json
