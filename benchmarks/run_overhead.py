"""Wall time of `axo-helper run` against bare Axolotl on the same YAML (tiny model, CPU).

    .venv/bin/python benchmarks/run_overhead.py [--steps 10] [--repeat 1]

Both sides start cold (their own dataset_prepared_path, nothing cached):

  bare:  python -m axolotl.cli.train CONFIG          (Axolotl tokenizes inside train)
  axo:   axo-helper run --config CONFIG --no-export  (plan check, axolotl preprocess,
                                                      then python -m axolotl.cli.train)

Printed: both wall times and their ratio; and, from the run's plan.json, where axo-helper's
time went: the preprocess process (a second Axolotl start-up, ~10 s of imports, spent on
purpose so dataset errors surface before GPU time), the train process, and the rest, which
is the wrapper's own overhead (validation, writing the run directory, streaming the log).
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

import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from axo_helper.rundir import RunDir
    from axo_helper.tinymodel import build_tiny_model, demo_data_path

    work = Path(tempfile.mkdtemp(prefix="axo-overhead-"))
    model = build_tiny_model(work / "tiny-model")
    data = demo_data_path("qa.jsonl")
    axo = [sys.executable, "-m", "axo_helper"]
    # The config under test: what `run` itself would generate for this model on CPU.
    gen = work / "gen"
    subprocess.run(
        [*axo, "run", "--gpu", "cpu", "--model", str(model), "--data", str(data),
         "--max-steps", str(args.steps), "-o", str(gen), "--dry-run"],
        cwd=work, env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    base = yaml.safe_load((gen / "axolotl.yml").read_text())

    bare_times, axo_times, parts = [], [], []
    for i in range(args.repeat):
        cfg = dict(base, output_dir=str(work / f"bare-{i}" / "output"),
                   dataset_prepared_path=str(work / f"bare-{i}" / "prepared"),
                   axo_helper_run_dir=str(work / f"bare-{i}"))  # fmt: skip
        bare_cfg = work / f"bare-{i}.yml"
        bare_cfg.write_text(yaml.safe_dump(cfg, sort_keys=False))
        bare_times.append(timed([sys.executable, "-m", "axolotl.cli.train", str(bare_cfg)], work))

        cfg["dataset_prepared_path"] = str(work / f"axo-{i}-prepared")
        axo_cfg = work / f"axo-{i}.yml"
        axo_cfg.write_text(yaml.safe_dump(cfg, sort_keys=False))
        run_dir = work / f"axo-{i}"
        axo_times.append(
            timed(
                [
                    *axo,
                    "run",
                    "--config",
                    str(axo_cfg),
                    "--gpu",
                    "cpu",
                    "-o",
                    str(run_dir),
                    "--no-export",
                    "--quiet",
                ],
                work,
            )
        )
        rec = RunDir(run_dir).read_plan_record()
        if rec is None:
            sys.exit(f"no readable plan.json in {run_dir}")
        train_s = sum(a["seconds"] for a in rec["attempts"])
        parts.append((rec["preprocess_seconds"], train_s))

    bare = statistics.median(bare_times)
    total = statistics.median(axo_times)
    pre = statistics.median(p[0] for p in parts)
    train = statistics.median(p[1] for p in parts)
    own = total - pre - train
    print(f"tiny model, CPU, {args.steps} steps, median of {args.repeat}")
    print(f"  bare  python -m axolotl.cli.train : {bare:6.1f} s")
    print(f"  axo-helper run --config           : {total:6.1f} s")
    print(f"    axolotl preprocess process      : {pre:6.1f} s")
    print(f"    axolotl train process           : {train:6.1f} s")
    print(f"    axo-helper itself               : {own:6.1f} s")
    print(f"  ratio axo-helper run / bare       : {total / bare:6.2f}")
    print(f"  ratio without the preprocess step : {(total - pre) / bare:6.2f}")


if __name__ == "__main__":
    main()
