"""How Axolotl is started: the command as a value, and the one place that runs it.

`build_launch(...)` is pure: from a plan (or a LaunchTarget for a hand-written
config) and the config path it returns one `LaunchSpec(argv, env, cwd)` per node.
Tests assert those values exactly; nothing here is patched.

- one GPU or CPU:  python -m axolotl.cli.train CONFIG
- several GPUs:    python -m torch.distributed.run --standalone --nproc-per-node N -m axolotl.cli.train CONFIG
- several nodes:   python -m torch.distributed.run --nnodes N --node-rank R --master-addr HOST
                   --master-port P --nproc-per-node G -m axolotl.cli.train CONFIG

Why `python -m` and not `axolotl train` / `torchrun` / `accelerate launch`: those
console scripts are looked up on PATH. `axolotl train` re-executes itself as
`accelerate launch`, which fails with "No such file or directory: '/bin/accelerate'"
whenever the venv is not activated; the interpreter that has Axolotl is known
exactly (sys.executable). torch.distributed.run is torchrun's module; Axolotl reads
its DeepSpeed and FSDP settings from the YAML and sets accelerate's environment
itself, so the launcher needs no DeepSpeed/FSDP arguments.

`run_launch(spec, log_path, on_line)` is the only subprocess call of a training run:
argv list, never a shell; output streamed line by line (tqdm's carriage returns
count as line ends) to a callback and appended to the log; Ctrl-C forwarded once
to the child, whose exit code is returned.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axo_helper.errors import UsageError
from axo_helper.shell import command, quote
from axo_helper.specs import Distributed, Plan

TRAIN_MODULE = "axolotl.cli.train"
PREPROCESS_MODULE = "axolotl.cli.preprocess"
TORCHRUN_MODULE = "torch.distributed.run"  # what the `torchrun` script runs
DEFAULT_MASTER_PORT = 29500

# Always set: Axolotl's telemetry flush hangs forever at exit without network.
FORCED_ENV = {"AXOLOTL_DO_NOT_TRACK": "1"}
# Set unless the user set them: their own value wins.
DEFAULT_ENV = {
    # Less fragmentation on long runs with varying sequence lengths (PyTorch docs).
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    # Progress arrives line by line instead of in 8 KiB blocks through the pipe.
    "PYTHONUNBUFFERED": "1",
}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1"}

# Environment names never shown in a printed command, a log or plan.json.
_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY", re.I)


@dataclass(frozen=True)
class LaunchTarget:
    """What the launch depends on, for a config without a Plan (`run --config`)."""

    gpus_per_node: int  # 0: CPU
    nodes: int = 1
    distributed: Distributed = "none"
    offline: bool = False  # every input is local: HF_HUB_OFFLINE=1


@dataclass(frozen=True)
class LaunchSpec:
    """One process to start on one node."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(hash=False)
    cwd: str


def target_of(plan: Plan, *, offline: bool | None = None) -> LaunchTarget:
    """The LaunchTarget a plan implies. offline=None: local model dir (data is always local)."""
    hw = plan.hardware
    if offline is None:
        offline = plan.model.source == "local" and plan.model.local_path is not None
    return LaunchTarget(
        gpus_per_node=hw.num_gpus,
        nodes=hw.nodes,
        distributed=plan.setup.distributed,
        offline=offline,
    )


def launch_env(base_env: Mapping[str, str], *, offline: bool) -> dict[str, str]:
    """The child's environment: the user's, plus axo-helper's settings."""
    env = dict(base_env)
    for key, value in DEFAULT_ENV.items():
        env.setdefault(key, value)
    env.update(FORCED_ENV)
    if offline:
        env.update(OFFLINE_ENV)
    return env


def build_launch(
    plan_or_target: Plan | LaunchTarget,
    config_path: str | os.PathLike[str],
    *,
    node_rank: int | None = None,
    master_addr: str | None = None,
    master_port: int = DEFAULT_MASTER_PORT,
    python: str = sys.executable,
    base_env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    module: str = TRAIN_MODULE,
) -> list[LaunchSpec]:
    """The command(s) that train `config_path`: one LaunchSpec per node, rank order.

    node_rank: only that node's command (a multi-node run starts one per machine);
    None: every node's. master_addr is required when there is more than one node.
    base_env: the environment to extend (default: os.environ). cwd: where the
    child runs (default: the current directory), since Axolotl resolves the
    config's relative paths against it.
    """
    target = target_of(plan_or_target) if isinstance(plan_or_target, Plan) else plan_or_target
    env = launch_env(os.environ if base_env is None else base_env, offline=target.offline)
    workdir = os.fspath(cwd) if cwd is not None else os.getcwd()
    config = os.fspath(config_path)
    gpus = max(0, target.gpus_per_node)
    nodes = max(1, target.nodes)

    if nodes == 1 and gpus <= 1:
        # One process: no launcher at all (CPU, or one GPU).
        return [LaunchSpec((python, "-m", module, config), env, workdir)]

    argv: tuple[str, ...]
    if nodes == 1:
        argv = (
            python,
            "-m",
            TORCHRUN_MODULE,
            # A private rendezvous on localhost with a free port: two runs on one
            # machine do not collide on 29500.
            "--standalone",
            "--nproc-per-node",
            str(gpus),
            "-m",
            module,
            config,
        )
        return [LaunchSpec(argv, env, workdir)]

    return [
        LaunchSpec(argv, env, workdir)
        for argv in _node_argvs(
            python, module, config, nodes, gpus, node_rank, master_addr, master_port
        )
    ]


def _node_argvs(
    python: str,
    module: str,
    config: str,
    nodes: int,
    gpus: int,
    node_rank: int | None,
    master_addr: str | None,
    master_port: int,
) -> list[tuple[str, ...]]:
    """torchrun's argv for each node of a multi-node run (only node_rank's when given)."""
    if gpus == 0:
        raise UsageError(
            "a multi-node run needs GPUs", hint="drop --nodes, or plan with --gpu for the nodes"
        )
    if not master_addr:
        raise UsageError(
            f"a run on {nodes} nodes needs the address of node 0",
            hint="pass --master-addr HOST (reachable from every node) and, if 29500 is taken, --master-port",
        )
    if not 1 <= master_port <= 65535:
        raise UsageError(f"--master-port must be between 1 and 65535, not {master_port}")
    ranks = range(nodes) if node_rank is None else [node_rank]
    argvs: list[tuple[str, ...]] = []
    for rank in ranks:
        if not 0 <= rank < nodes:
            raise UsageError(f"--node-rank must be between 0 and {nodes - 1}, not {rank}")
        argvs.append(
            (
                python,
                "-m",
                TORCHRUN_MODULE,
                "--nnodes",
                str(nodes),
                "--node-rank",
                str(rank),
                "--master-addr",
                master_addr,
                "--master-port",
                str(master_port),
                "--nproc-per-node",
                str(gpus),
                "-m",
                module,
                config,
            )
        )
    return argvs


def preprocess_launch(spec: LaunchSpec, config_path: str | os.PathLike[str]) -> LaunchSpec:
    """`axolotl preprocess` for a training launch: one process, same interpreter and env.

    Tokenizing needs no GPU and no rendezvous, so it never goes through torchrun.
    """
    return LaunchSpec(
        (spec.argv[0], "-m", PREPROCESS_MODULE, os.fspath(config_path)), spec.env, spec.cwd
    )


# --------------------------------------------------------------------------- showing
# Always shown in a printed command, so it works when pasted into another shell.
_SHOWN = ("AXOLOTL_DO_NOT_TRACK", "HF_HUB_OFFLINE", "PYTORCH_CUDA_ALLOC_CONF")
# Set for our pipe only; noise in a command a person reads.
_NOT_SHOWN = ("PYTHONUNBUFFERED",)


def shown_env(spec: LaunchSpec, base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a printed command must carry: axo-helper's own settings, and any
    other variable that differs from `base_env` (default: os.environ).

    Secrets are never included, even if the user's environment differs for them.
    """
    base = os.environ if base_env is None else base_env
    return {
        k: v
        for k, v in spec.env.items()
        if (k in _SHOWN or (base.get(k) != v and k not in _NOT_SHOWN)) and not _SECRET.search(k)
    }


def format_command(spec: LaunchSpec, base_env: Mapping[str, str] | None = None) -> str:
    """A shell line that reproduces the launch (for --dry-run, plan.json and the log)."""
    env = shown_env(spec, base_env)
    parts = [f"{k}={quote(v)}" for k, v in sorted(env.items())]
    return " ".join([*parts, command(*spec.argv)]) if spec.argv else " ".join(parts)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with the values of secret-looking variables replaced by ***."""
    env = os.environ if env is None else env
    for key, value in env.items():
        if value and len(value) >= 6 and _SECRET.search(key):
            text = text.replace(value, "***")
    return text


# --------------------------------------------------------------------------- running
_LINE_END = re.compile(rb"\r\n|\r|\n")


def run_launch(
    spec: LaunchSpec,
    log_path: str | os.PathLike[str],
    on_line: Callable[[str], None] | None = None,
    *,
    header: str | None = None,
) -> int:
    """Start `spec`, stream its output, return its exit code.

    Every byte goes to `log_path` (appended, so attempts and phases share one
    train.log), each line (split at \\n or \\r, tqdm's update) to `on_line`.
    The child runs in its own session so a terminal Ctrl-C reaches only this
    process, which forwards SIGINT once (Axolotl saves and exits on it; torchrun
    passes it to its workers); a second Ctrl-C, a SIGTERM or a SIGHUP (the terminal
    closed) forwards SIGTERM, so no training outlives axo-helper. Returns the exit
    code, negative for a signal (as subprocess reports it). KeyboardInterrupt is
    never raised from here: the caller learns of an interrupt from `interrupted`.
    """
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    global _interrupted
    _interrupted = False
    with log.open("ab") as fh:
        if header:
            fh.write(redact(header, spec.env).encode("utf-8") + b"\n")
            fh.flush()
        try:
            proc = subprocess.Popen(
                list(spec.argv),
                env=dict(spec.env),
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise UsageError(
                f"cannot start {spec.argv[0]}: {exc.strerror or exc}",
                hint="is this the Python environment with Axolotl installed?",
            ) from None

        with _forward_signals(proc):
            assert proc.stdout is not None
            pending = b""
            fd = proc.stdout.fileno()
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                fh.write(chunk)
                fh.flush()
                pending += chunk
                parts = _LINE_END.split(pending)
                pending = parts.pop()
                if on_line is not None:
                    for part in parts:
                        on_line(part.decode("utf-8", errors="replace"))
            if pending and on_line is not None:
                on_line(pending.decode("utf-8", errors="replace"))
            return proc.wait()


_interrupted = False


def interrupted() -> bool:
    """Whether the last run_launch forwarded a Ctrl-C (Axolotl then exits 0 after saving)."""
    return _interrupted


@contextlib.contextmanager
def _forward_signals(proc: subprocess.Popen[Any]) -> Any:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    count = 0

    def handler(signum: int, frame: Any) -> None:
        global _interrupted
        nonlocal count
        _interrupted = True
        count += 1
        sig = signal.SIGINT if count == 1 and signum == signal.SIGINT else signal.SIGTERM
        with contextlib.suppress(ProcessLookupError):
            # The child leads its own group; torchrun passes it on to its workers.
            os.killpg(proc.pid, sig)

    # SIGHUP too: a closed terminal reaches only us, not the child's session.
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, handler) for s in forwarded}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def captured_output(log_path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Send this process's stdout/stderr (file descriptors 1 and 2) to a file meanwhile.

    For in-process work with torch/transformers (building the tiny model, the
    export's merge, the demo's generation): their import warnings, C++ log lines
    and progress bars go to `log_path` (appended; a temporary file when None)
    instead of the terminal. If an exception escapes, what was captured is
    replayed on stderr first, so nothing needed to understand it is lost.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    sink = open(log_path, "a+b") if log_path is not None else tempfile.TemporaryFile()  # noqa: SIM115
    saved = (os.dup(1), os.dup(2))
    try:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    except BaseException:
        with contextlib.suppress(OSError):
            sink.flush()
            sink.seek(0)
            text = sink.read().decode("utf-8", errors="replace")
            if log_path is not None:
                text = text[-20000:]  # the tail of a shared log is what explains it
            sys.stderr.write(text)
            sys.stderr.flush()
        raise
    finally:
        os.close(saved[0])
        os.close(saved[1])
        sink.close()
