"""Start-up time of `axo-helper plan ... --json` as a new process (target: median < 0.3 s).

Runs the installed console script (or `python -m axo_helper` when it is not on the
venv's bin path) N times, offline, and prints min / median / max wall time, next to
a bare `python -c pass` so the interpreter's own start-up can be read off.
`--importtime` also prints the slowest imports of one run (python -X importtime),
which is where to look when the median goes over the target.

    .venv/bin/python benchmarks/plan_startup.py
    .venv/bin/python benchmarks/plan_startup.py --runs 20 --importtime

Not a test: the figures depend on the machine. tests/test_cli_plan.py checks what
is imported on this path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.3
ARGS = ["plan", "--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B", "--json"]


def command() -> list[str]:
    script = Path(sys.executable).parent / "axo-helper"
    return [str(script)] if script.exists() else [sys.executable, "-m", "axo_helper"]


def timed(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
    return times


def importtime(argv: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest top-level imports."""
    base = [
        sys.executable,
        "-X",
        "importtime",
        "-c",
        "import sys; from axo_helper.cli import main; main(sys.argv[1:])",
        *argv,
    ]
    proc = subprocess.run(base, env=env, capture_output=True, text=True, check=False)
    rows = []
    for line in proc.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package", nesting by indentation
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:]
        if not name.startswith(" "):  # top level only: children are indented
            rows.append((int(parts[1]), name))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--importtime", action="store_true", help="show the slowest imports")
    ns = ap.parse_args()

    home = tempfile.mkdtemp(prefix="axo-bench-")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "AXO_HELPER_HOME": home, "NO_COLOR": "1"}
    # An installed package has its bytecode cached (pip compiles it). A sandbox with
    # PYTHONDONTWRITEBYTECODE=1 recompiles every module on every start: measure both,
    # the cached case with the cache in a temporary folder, not in the tree.
    cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = os.path.join(home, "pycache")
    argv = command() + ARGS

    print(f"command: {' '.join(['axo-helper', *ARGS])}")
    print(f"runs: {ns.runs}  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    verdict = ""
    for label, e in (("bytecode cached", cached), ("no bytecode cache", env)):
        timed(argv, e, 1)  # warm the page cache (and the bytecode cache); not counted
        bare = timed([sys.executable, "-c", "pass"], e, ns.runs)
        plan = timed(argv, e, ns.runs)
        med = statistics.median(plan)
        if not verdict:
            verdict = "OK" if med < TARGET_S else "OVER"
        print(
            f"{label:18}: axo-helper plan median {med:.3f} s (min {min(plan):.3f}, max "
            f"{max(plan):.3f}); python -c pass median {statistics.median(bare):.3f} s"
        )
    print(f"target: median < {TARGET_S} s with bytecode cached: {verdict}")
    if ns.importtime:
        print("slowest top-level imports (cumulative):")
        for us, name in importtime(ARGS, cached, 12):
            print(f"  {us / 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
