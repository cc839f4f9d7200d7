"""LaunchSpec: the exact argv and environment for each kind of run, and running one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from axo_helper.errors import UsageError
from axo_helper.launch import (
    LaunchSpec,
    LaunchTarget,
    build_launch,
    format_command,
    preprocess_launch,
    redact,
    run_launch,
    shown_env,
    target_of,
)

PY = "/opt/venv/bin/python"
CFG = "/runs/r1/axolotl.yml"
USER_ENV = {"PATH": "/usr/bin", "HF_TOKEN": "hf_secret_value_123", "CUDA_VISIBLE_DEVICES": "0,1"}
OURS = {
    "AXOLOTL_DO_NOT_TRACK": "1",
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    "PYTHONUNBUFFERED": "1",
}


def _plan(gpu: str, model: str, **kw: object):  # type: ignore[no-untyped-def]
    from axo_helper.core import PlanRequest, make_plan

    return make_plan(PlanRequest(gpu, model, **kw))  # type: ignore[arg-type]


def test_one_gpu_exact_argv_and_env() -> None:
    plan = _plan("rtx4090", "meta-llama/Llama-3.1-8B")
    specs = build_launch(plan, CFG, python=PY, base_env=USER_ENV, cwd="/work")
    assert specs == [
        LaunchSpec(
            argv=(PY, "-m", "axolotl.cli.train", CFG),
            # a hub model: HF_HUB_OFFLINE is not set; the user's env (HF_TOKEN too) passes
            env={**USER_ENV, **OURS},
            cwd="/work",
        )
    ]


def test_eight_gpus_zero3_exact_argv_and_env() -> None:
    plan = _plan("8xh100", "meta-llama/Llama-3.1-8B", method="full", distributed="zero3")
    assert plan.setup.distributed == "zero3"
    specs = build_launch(plan, CFG, python=PY, base_env=USER_ENV, cwd="/work")
    assert specs == [
        LaunchSpec(
            argv=(
                PY,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc-per-node",
                "8",
                "-m",
                "axolotl.cli.train",
                CFG,
            ),
            env={**USER_ENV, **OURS},
            cwd="/work",
        )
    ]


def test_two_nodes_of_eight_exact_argv_per_node() -> None:
    plan = _plan("8xh100", "meta-llama/Llama-3.1-8B", method="full", distributed="zero3", nodes=2)
    specs = build_launch(
        plan,
        CFG,
        python=PY,
        base_env=USER_ENV,
        cwd="/work",
        master_addr="10.0.0.1",
        master_port=29600,
    )
    assert [s.argv for s in specs] == [
        (
            PY, "-m", "torch.distributed.run",
            "--nnodes", "2", "--node-rank", str(rank),
            "--master-addr", "10.0.0.1", "--master-port", "29600",
            "--nproc-per-node", "8",
            "-m", "axolotl.cli.train", CFG,
        )
        for rank in (0, 1)
    ]  # fmt: skip
    assert all(s.env == {**USER_ENV, **OURS} and s.cwd == "/work" for s in specs)
    # one node's command only, as each machine runs it
    only = build_launch(plan, CFG, python=PY, base_env=USER_ENV, cwd="/work",
                        master_addr="10.0.0.1", master_port=29600, node_rank=1)  # fmt: skip
    assert only == specs[1:]


def test_multi_node_needs_master_addr_and_valid_rank() -> None:
    target = LaunchTarget(gpus_per_node=8, nodes=2, distributed="zero3")
    with pytest.raises(UsageError, match="--master-addr"):
        build_launch(target, CFG, python=PY, base_env={})
    with pytest.raises(UsageError, match="node-rank"):
        build_launch(target, CFG, python=PY, base_env={}, master_addr="h", node_rank=2)


def test_cpu_local_inputs_set_offline() -> None:
    target = LaunchTarget(gpus_per_node=0, offline=True)
    (spec,) = build_launch(target, CFG, python=PY, base_env={}, cwd="/w")
    assert spec.argv == (PY, "-m", "axolotl.cli.train", CFG)
    assert spec.env == {**OURS, "HF_HUB_OFFLINE": "1"}


def test_local_model_plan_is_offline(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(
        '{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64,'
        ' "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,'
        ' "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 512}'
    )
    plan = _plan("rtx4090", str(model))
    assert target_of(plan).offline
    (spec,) = build_launch(plan, CFG, python=PY, base_env={}, cwd="/w")
    assert spec.env["HF_HUB_OFFLINE"] == "1"


def test_user_env_wins_except_telemetry() -> None:
    env = {"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128", "AXOLOTL_DO_NOT_TRACK": "0"}
    (spec,) = build_launch(LaunchTarget(1), CFG, python=PY, base_env=env)
    assert spec.env["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"
    # without network the telemetry flush hangs at exit: always off
    assert spec.env["AXOLOTL_DO_NOT_TRACK"] == "1"


def test_printed_command_never_shows_secrets() -> None:
    (spec,) = build_launch(LaunchTarget(1), CFG, python=PY, base_env=USER_ENV)
    line = format_command(spec, base_env={})  # even against an empty base
    assert "hf_secret_value_123" not in line and "HF_TOKEN" not in line
    assert "HF_TOKEN" not in shown_env(spec, {})
    # axo-helper's settings always show (the line must work in another shell)
    assert format_command(spec, spec.env) == (
        "AXOLOTL_DO_NOT_TRACK=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
        f"{PY} -m axolotl.cli.train {CFG}"
    )
    assert redact("token=hf_secret_value_123", USER_ENV) == "token=***"


def test_preprocess_is_one_process_even_for_many_gpus() -> None:
    (spec,) = build_launch(LaunchTarget(8, distributed="zero3"), CFG, python=PY, base_env={})
    pre = preprocess_launch(spec, CFG)
    assert pre.argv == (PY, "-m", "axolotl.cli.preprocess", CFG)
    assert pre.env == spec.env


def test_run_launch_streams_lines_logs_and_passes_exit_code(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.stdout.write('one\\ntwo\\r three\\n'); sys.stdout.flush()\n"
        "sys.stderr.write('err line\\n')\n"
        "sys.exit(7)\n"
    )
    spec = LaunchSpec((sys.executable, "-c", script), {"PATH": "/usr/bin"}, str(tmp_path))
    lines: list[str] = []
    log = tmp_path / "train.log"
    rc = run_launch(spec, log, lines.append, header="=== header")
    assert rc == 7
    assert lines == ["one", "two", " three", "err line"]
    text = log.read_text()
    assert text.startswith("=== header\n") and "err line" in text


def test_run_launch_missing_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    spec = LaunchSpec(("/nonexistent/python", "-m", "x"), {}, str(tmp_path))
    with pytest.raises(UsageError, match="cannot start"):
        run_launch(spec, tmp_path / "log")


def test_ctrl_c_is_forwarded_once_and_the_exit_code_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import threading

    from axo_helper import launch as launch_mod
    from axo_helper.launch import interrupted

    # Restored at teardown: later tests that fake the child must not read this interrupt.
    monkeypatch.setattr(launch_mod, "_interrupted", False)

    ready = tmp_path / "ready"
    # Like Axolotl: on SIGINT save, say so, exit 0.
    script = (
        "import signal, sys, time, pathlib\n"
        "def stop(*_):\n"
        "    print('saved on SIGINT', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    spec = LaunchSpec((sys.executable, "-c", script), dict(os.environ), str(tmp_path))

    def press_ctrl_c() -> None:
        for _ in range(200):
            if ready.exists():
                break
            threading.Event().wait(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends to the foreground

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    lines: list[str] = []
    rc = run_launch(spec, tmp_path / "log", lines.append)
    assert rc == 0 and lines == ["saved on SIGINT"]
    assert interrupted()
    # the handler is restored: a later Ctrl-C is an ordinary KeyboardInterrupt again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
