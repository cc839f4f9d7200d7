"""How fast dataset.inspect scans a large JSONL file, and that its memory stays flat.

For each size, writes an alpaca-style JSONL file of that many rows (seeded, so every run
writes the same bytes) into a temporary directory, then runs `inspect` on it in a fresh
subprocess, so each size reports its own peak RSS (ru_maxrss) and nothing is shared
between sizes. Prints one line per size, plus the RSS of a child that only imports
axo_helper.dataset, so the scan's own footprint can be read off.

    .venv/bin/python benchmarks/dataset_scan.py                      # 100k, 300k, 1M rows
    .venv/bin/python benchmarks/dataset_scan.py --rows 2000000 --format chat
    .venv/bin/python benchmarks/dataset_scan.py --tokenizer path/to/model_dir

Not a test: the figures depend on the machine's disk and CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "the",
    "model",
    "learns",
    "to",
    "answer",
    "questions",
    "about",
    "the",
    "town",
    "its",
    "clocks",
    "railway",
    "bread",
    "river",
    "mountains",
    "market",
    "winter",
    "bells",
    "council",
    "mayor",
    "skating",
    "ice",
    "valley",
    "tower",
    "locksmith",
    "farmers",
]

# Run in the child: import, time one inspect, report the figures as JSON on stdout.
CHILD = """
import json, resource, sys, time
from axo_helper.dataset import inspect
path, tokenizer, k = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
spec = inspect(path, tokenizer=tokenizer, max_token_rows=k) if path != "-" else None
dt = time.perf_counter() - t
print(json.dumps({
    "seconds": dt,
    "rows": spec.rows if spec else 0,
    "sampled": spec.sampled_rows if spec else 0,
    "p50": spec.tokens.p50 if spec else 0,
    "p99": spec.tokens.p99 if spec else 0,
    "approximate": spec.approximate if spec else True,
    "import_rss_kib": base,
    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def write_alpaca(path: Path, rows: int, seed: int = 0) -> None:
    """Alpaca rows of varied length (about 400 bytes on average); a third carry an input."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            row = {
                "instruction": f"Question {i}: "
                + " ".join(rng.choices(WORDS, k=rng.randint(5, 30))),
                "input": " ".join(rng.choices(WORDS, k=rng.randint(5, 20))) if i % 3 == 0 else "",
                "output": " ".join(rng.choices(WORDS, k=rng.randint(10, 80))),
            }
            fh.write(json.dumps(row) + "\n")


def write_chat(path: Path, rows: int, seed: int = 0) -> None:
    """OpenAI-style conversations: a system turn and 1-3 user/assistant exchanges."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            msgs = [{"role": "system", "content": "You are a guide to the town."}]
            for _ in range(rng.randint(1, 3)):
                msgs.append(
                    {
                        "role": "user",
                        "content": f"Q{i} " + " ".join(rng.choices(WORDS, k=rng.randint(5, 25))),
                    }
                )
                msgs.append(
                    {
                        "role": "assistant",
                        "content": " ".join(rng.choices(WORDS, k=rng.randint(10, 60))),
                    }
                )
            fh.write(json.dumps({"messages": msgs}) + "\n")


WRITERS = {"alpaca": write_alpaca, "chat": write_chat}


def run_child(path: str, tokenizer: str, k: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, path, tokenizer, str(k)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--max-token-rows", type=int, default=20_000)
    ap.add_argument("--format", choices=sorted(WRITERS), default="alpaca")
    ap.add_argument("--tokenizer", default="", help="a directory with tokenizer.json")
    args = ap.parse_args()

    print(
        f"python {sys.version.split()[0]}; {args.format} rows; max_token_rows={args.max_token_rows}; "
        f"tokenizer={args.tokenizer or 'none (approximation)'}"
    )
    idle = run_child("-", "", 1)
    print(f"import only: peak RSS {idle['peak_rss_kib'] / 1024:.1f} MiB")
    print(
        f"{'rows':>10} {'file MiB':>9} {'seconds':>8} {'rows/s':>10} {'MiB/s':>7} "
        f"{'peak RSS MiB':>13} {'sampled':>8} {'p50':>5} {'p99':>5}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = Path(tmp) / f"{args.format}_{n}.jsonl"
            t = time.perf_counter()
            WRITERS[args.format](path, n)
            gen = time.perf_counter() - t
            size = path.stat().st_size / 2**20
            r = run_child(str(path), args.tokenizer, args.max_token_rows)
            assert r["rows"] == n, (r["rows"], n)
            print(
                f"{n:>10,} {size:>9.1f} {r['seconds']:>8.2f} {n / r['seconds']:>10,.0f} "
                f"{size / r['seconds']:>7.1f} {r['peak_rss_kib'] / 1024:>13.1f} "
                f"{r['sampled']:>8,} {r['p50']:>5} {r['p99']:>5}   (generated in {gen:.1f} s)"
            )
            path.unlink()


if __name__ == "__main__":
    main()
