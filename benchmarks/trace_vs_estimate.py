"""The memory estimate's tensor terms against the real training step traced on fake tensors.

    .venv/bin/python benchmarks/trace_vs_estimate.py [--presets a,b] [--retrace] [--worst N]

Grid: every model preset x {full, LoRA, QLoRA (quantized weights counted analytically)} x
sequence length {512, 2048, 8192} x gradient checkpointing {on, off} x micro batch {1, 2};
LoRA/QLoRA r=16 on all linear layers, dropout 0.05, flash-attention (traced as the CPU flash kernel), bf16, adamw_torch_fused.

Each case is traced at 1 and 2 transformer blocks and extrapolated to the model's depth:
every component is exactly linear in the number of blocks (each block adds the same
weights, gradients, states and, with or without checkpointing, the same saved tensors;
the loss buffers do not depend on depth), so value(L) = v1 + (L - 1) * (v2 - v1).
The optimizer-step peak is extrapolated the same way and the steady-state peak recomputed.

Traces are cached in benchmarks/results/trace-cache.json (they depend on transformers/PEFT,
not on the estimator): a later run re-estimates from the cache in a second; --retrace
traces again. Writes benchmarks/results/trace-vs-estimate.csv and prints the error
summary: per component, median |error| and the worst cases under the trace. The errors of
activations and logits (the two parts of the step's own tensors) are shares of the step.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from axo_helper.model.facts import from_config  # noqa: E402
from axo_helper.specs import GIB, TrainSetup  # noqa: E402
from axo_helper.trace.result import estimated  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "trace-cache.json"
TABLE = RESULTS / "trace-vs-estimate.csv"
METHODS = ("full", "lora", "qlora")
SEQS = (512, 2048, 8192)
GCS = (True, False)
MBS = (1, 2)
TERMS = ("weights", "state", "activations", "logits", "step")


def setup_for(raw: dict[str, Any], name: str, method: str, seq: int, gc: bool, mbs: int) -> TrainSetup:
    return TrainSetup(
        model=from_config(raw, name=name, source="preset"),
        method=method,  # type: ignore[arg-type]
        lora_r=16,
        lora_targets=("all-linear",),
        lora_dropout=0.05,
        sequence_len=seq,
        micro_batch_size=mbs,
        gradient_checkpointing=gc,
        attn_implementation="flash_attention_2",
        optimizer="adamw_torch_fused",
    )


def case_key(preset: str, method: str, seq: int, gc: bool, mbs: int) -> str:
    return f"{preset}|{method}|{seq}|{'gc' if gc else 'nogc'}|{mbs}"


def trace_case(raw: dict[str, Any], name: str, method: str, seq: int, gc: bool, mbs: int) -> dict[str, Any]:
    """Traced components (bytes) at 1 and 2 blocks."""
    from axo_helper.trace.result import trace_setup
    from axo_helper.trace.source import with_layers

    out: dict[str, Any] = {}
    for layers in (1, 2):
        small = with_layers(raw, layers)
        r = trace_setup(small, setup_for(small, name, method, seq, gc, mbs))
        out[str(layers)] = {
            "weights": r.traced["weights"],
            "state": r.traced["state"],
            "optimizer_peak": r.phase_peak.get("optimizer", 0.0),
            "phases": {p: list(v) for p, v in r.phase_step.items()},
        }
    return out


def _line(a: float, b: float, layers: int) -> float:
    return a + (layers - 1) * (b - a)


def extrapolate(traced: dict[str, Any], layers: int) -> dict[str, float]:
    """Each phase's peak is linear in depth, the maximum over phases is not: the
    phases are extrapolated one by one, then the largest taken."""
    one, two = traced["1"], traced["2"]
    full = {k: _line(one[k], two[k], layers) for k in ("weights", "state", "optimizer_peak")}
    best = (-1.0, 0.0)
    for phase, (s1, l1) in one["phases"].items():
        s2, l2 = two["phases"].get(phase, (s1, l1))
        step = _line(s1, s2, layers)
        if step > best[0]:
            best = (step, _line(l1, l2, layers))
    full["step"], full["logits"] = best
    full["activations"] = full["step"] - full["logits"]
    resident = full["weights"] + full["state"]
    full["allocated"] = max(resident + full["step"], full["optimizer_peak"])
    return full


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", help="comma-separated preset keys (default: all)")
    ap.add_argument("--retrace", action="store_true", help="trace again, ignoring the cache")
    ap.add_argument("--worst", type=int, default=10)
    ap.add_argument(
        "--cached-only", action="store_true", help="report the cached cases only, trace nothing"
    )
    args = ap.parse_args(argv)

    from axo_helper.model.presets import _presets

    presets = {p.key: p for p in _presets()}
    keys = args.presets.split(",") if args.presets else sorted(presets)
    cache: dict[str, Any] = {} if args.retrace or not CACHE.exists() else json.loads(CACHE.read_text())
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for key in keys:
        raw = dict(presets[key].config)
        layers = int(raw["num_hidden_layers"])
        for method, seq, gc, mbs in itertools.product(METHODS, SEQS, GCS, MBS):
            ck = case_key(key, method, seq, gc, mbs)
            if ck not in cache and args.cached_only:
                continue
            if ck not in cache:
                try:
                    cache[ck] = trace_case(raw, presets[key].hf_id, method, seq, gc, mbs)
                except Exception as exc:  # a case the trace cannot run is a row, not the end
                    cache[ck] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                _save(cache)
            rows.append(_row(ck, cache[ck], raw, presets[key].hf_id, layers, method, seq, gc, mbs))
    _write(rows)
    _summary(rows, args.worst, time.perf_counter() - start)
    return 0


def _row(ck: str, traced: dict[str, Any], raw: dict[str, Any], name: str, layers: int,
         method: str, seq: int, gc: bool, mbs: int) -> dict[str, Any]:
    row: dict[str, Any] = {"case": ck, "layers": layers}
    if "error" in traced:
        row["error"] = traced["error"]
        return row
    t = extrapolate(traced, layers)
    e = estimated(setup_for(raw, name, method, seq, gc, mbs))
    for term in (*TERMS, "allocated"):
        row[f"{term}_traced_gib"] = round(t[term] / GIB, 4)
        row[f"{term}_est_gib"] = round(e[term] / GIB, 4)
        # activations and logits are the two parts of the step: their errors are shares
        # of the step (a part that is nearly empty would otherwise divide by ~0)
        base = t["step"] if term in ("activations", "logits") else t[term]
        row[f"{term}_err"] = round((e[term] - t[term]) / base, 4) if base > 0 else ""
    return row


def _save(cache: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=0, sort_keys=True))
    tmp.replace(CACHE)


def _write(rows: list[dict[str, Any]]) -> None:
    fields: list[str] = ["case", "layers", "error"]
    for term in (*TERMS, "allocated"):
        fields += [f"{term}_traced_gib", f"{term}_est_gib", f"{term}_err"]
    with TABLE.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _summary(rows: list[dict[str, Any]], worst: int, seconds: float) -> None:
    ok = [r for r in rows if "error" not in r]
    print(f"{len(rows)} cases, {len(rows) - len(ok)} not traced, {seconds:.0f} s; table: {TABLE.relative_to(ROOT)}")
    print(f"{'term':<12} {'median |err|':>12} {'p90 |err|':>10} {'min err':>8} {'max err':>8} {'under >5%':>9}")
    for term in (*TERMS, "allocated"):
        errs = [r[f"{term}_err"] for r in ok if r[f"{term}_err"] != ""]
        if not errs:
            continue
        abs_e = sorted(abs(e) for e in errs)
        p90 = abs_e[int(0.9 * (len(abs_e) - 1))]
        under = sum(1 for e in errs if e < -0.05)
        print(f"{term:<12} {statistics.median(abs_e):>12.1%} {p90:>10.1%} {min(errs):>8.1%} {max(errs):>8.1%} {under:>9}")
    by = sorted(ok, key=lambda r: r["allocated_err"] if r["allocated_err"] != "" else 0)
    print("\nfurthest under the trace (allocated = the step's tensor peak):")
    for r in by[:worst]:
        print(f"  {r['case']:<40} traced {r['allocated_traced_gib']:>8.2f}  est {r['allocated_est_gib']:>8.2f}  {r['allocated_err']:+.1%}")
    for r in rows:
        if "error" in r:
            print(f"  not traced: {r['case']}: {r['error']}")


if __name__ == "__main__":
    raise SystemExit(main())
