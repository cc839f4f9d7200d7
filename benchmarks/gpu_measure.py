"""Measure peak training memory and throughput of the Axolotl stack, and compare with axo-helper.

    python benchmarks/gpu_measure.py --grid h100 --out benchmarks/results/gpu-measure-h100.csv
    python benchmarks/gpu_measure.py --grid cpu-smoke --device cpu      # CI-sized, tiny model
    python benchmarks/gpu_measure.py --grid h100 --list                  # case ids only

Each case (architecture x method x sequence length x micro batch x gradient checkpointing x
attention x optimizer) runs in its own child process (benchmarks/_measure_case.py): a
random-weight model built from the architecture's config.json directly on the device, set
up as Axolotl 0.19 sets it up, a few real optimizer steps. An OOM, a crash or a timeout is
a row of the CSV, never the end of the run. Rows are appended as cases finish, so a run
stopped by its time limit still leaves every finished case on disk.

The CSV holds the case, the measurements, the GPU / driver / library versions and
axo_helper.memory.estimate's prediction for the same setup; a summary (error per case,
median absolute error, worst under-prediction) is printed and written beside it.

This script imports only axo_helper.specs / model / memory (which need PyYAML alone) and
never torch: the parent stays light and the GPU is touched only by the children.
See benchmarks/README.md for the device command and the time budget of the `h100` grid.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as dt
import fnmatch
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHILD = HERE / "_measure_case.py"
# Run as a script from a bare checkout (the lent GPU machine has no axo-helper installed):
# the package is importable from the repository root.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------------- architectures
# Tiny architectures for CPU runs and tests: no files, no tokenizer, seconds per case.
INLINE_ARCHS: dict[str, dict[str, Any]] = {
    "tiny-llama": {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 512,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
    },
    # Tied embeddings and qkv biases: the Qwen2.5-0.5B layout at toy size.
    "tiny-qwen2": {
        "model_type": "qwen2",
        "architectures": ["Qwen2ForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 1024,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
    },
}


@dataclass(frozen=True)
class Arch:
    name: str
    hf_config: dict[str, Any]
    spec: Any  # axo_helper.specs.ModelSpec, or None when axo_helper could not describe it
    note: str = ""


def resolve_arch(name: str) -> Arch:
    """config.json fields (to build the model) and the ModelSpec (to predict) for `name`.

    `name` is a key of INLINE_ARCHS or anything axo_helper.model resolves to a preset
    (presets/models/*.yaml): presets only, never the hub, so the device needs no network.
    """
    if name in INLINE_ARCHS:
        config = INLINE_ARCHS[name]
        try:
            from axo_helper.model import from_config

            return Arch(name, config, from_config(config, name=name, source="local"))
        except Exception as exc:  # the prediction is optional; the measurement is not
            return Arch(name, config, None, f"no ModelSpec: {exc}")
    from axo_helper.model import find_preset, inspect

    hit = find_preset(name)
    if hit is None:
        raise LookupError(f"no preset in presets/models for {name}")
    preset = hit[0]
    return Arch(name, dict(preset.config), inspect(name, offline=True))


# --------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One measurement: what an Axolotl YAML would say for these keys."""

    model: str  # a preset's HF id or an INLINE_ARCHS key
    method: str  # full | lora | qlora
    sequence_len: int
    micro_batch_size: int
    gradient_checkpointing: bool = True
    attn_implementation: str = "sdpa"
    optimizer: str = "adamw_torch_fused"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    use_reentrant: bool = False
    precision: str = "bf16"
    fault: str = ""  # tests only: oom | error | crash | hang (see _measure_case.run)

    @property
    def id(self) -> str:
        short = self.model.rsplit("/", 1)[-1].lower()
        parts = [
            short,
            self.method,
            f"s{self.sequence_len}",
            f"b{self.micro_batch_size}",
            f"gc{int(self.gradient_checkpointing)}",
            self.attn_implementation,
            self.optimizer,
        ]
        if self.method != "full" and (self.lora_r, self.lora_alpha) != (16, 32):
            parts.append(f"r{self.lora_r}a{self.lora_alpha}")
        if self.use_reentrant:
            parts.append("reentrant")
        if self.precision != "bf16":
            parts.append(self.precision)
        if self.fault:
            parts.append(f"fault-{self.fault}")
        return "/".join(parts)


QWEN_05B = "Qwen/Qwen2.5-0.5B"
LLAMA_8B = "meta-llama/Llama-3.1-8B"
QWEN_7B = "Qwen/Qwen2.5-7B"


def _h100_grid() -> list[Case]:
    """>= 12 cases for one H100 in ~6-7 minutes of run time (README: the budget arithmetic).

    Ordered by value: if the time budget runs out, what is lost is the least informative.
    Two sequence lengths and two micro batches per method pin the per-token slope and the
    intercept (docs/memory-model.md).
    """
    c = Case
    return [
        # Llama-3.1-8B, 128k vocabulary: the reference 7-8B model.
        c(LLAMA_8B, "qlora", 2048, 1),
        c(LLAMA_8B, "lora", 2048, 1),
        c(LLAMA_8B, "qlora", 4096, 1),
        c(LLAMA_8B, "lora", 4096, 1),
        c(LLAMA_8B, "qlora", 2048, 2),
        c(LLAMA_8B, "lora", 2048, 2),
        c(LLAMA_8B, "qlora", 2048, 1, gradient_checkpointing=False),
        c(LLAMA_8B, "lora", 2048, 1, gradient_checkpointing=False),
        # Qwen2.5-0.5B: a small model dominated by its 152k-entry (tied) embedding.
        c(QWEN_05B, "full", 2048, 4),
        c(QWEN_05B, "lora", 2048, 4),
        c(QWEN_05B, "full", 2048, 4, gradient_checkpointing=False),
        c(QWEN_05B, "full", 2048, 4, optimizer="adamw_bnb_8bit"),
        # Qwen2.5-7B, 152k vocabulary: where the logits buffers dominate the slope.
        c(QWEN_7B, "qlora", 2048, 1),
        c(QWEN_7B, "qlora", 4096, 1),
        c(QWEN_7B, "lora", 2048, 1),
        # Optimizer and attention variants, cheapest last.
        c(LLAMA_8B, "qlora", 2048, 1, optimizer="paged_adamw_8bit"),
        c(QWEN_05B, "lora", 2048, 4, attn_implementation="eager"),
        c(QWEN_05B, "lora", 2048, 4, attn_implementation="flash_attention_2"),
        # At the edge of 80 GB by the memory model (bf16 AdamW states, fp32 embeddings):
        # an OOM here is a result too, and tells whether the estimate knew.
        c(LLAMA_8B, "full", 2048, 1),
    ]


def _cpu_grid() -> list[Case]:
    """Every code path at toy size: methods, GC on/off, attention, optimizers, tied weights."""
    c = Case
    out = [
        c("tiny-llama", m, 256, 2, gradient_checkpointing=gc)
        for m in ("full", "lora", "qlora")
        for gc in (True, False)
    ]
    out += [
        c("tiny-llama", "lora", 256, 2, attn_implementation="eager"),
        c("tiny-llama", "lora", 256, 2, attn_implementation="flash_attention_2"),
        c("tiny-llama", "full", 256, 2, optimizer="adamw_bnb_8bit"),
        c("tiny-llama", "qlora", 256, 2, optimizer="paged_adamw_8bit"),
        c("tiny-qwen2", "lora", 256, 2),
        c("tiny-qwen2", "full", 256, 2),
    ]
    return out


GRIDS: dict[str, Any] = {
    "h100": _h100_grid,
    "cpu": _cpu_grid,
    "cpu-smoke": lambda: [Case("tiny-llama", "lora", 128, 2), Case("tiny-llama", "full", 128, 2)],
}


def load_cases_file(path: Path) -> list[Case]:
    """A JSON list of objects with Case's fields (ad hoc grids, and the tests' fault cases)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of case objects")
    fields = {f.name for f in dataclasses.fields(Case)}
    cases = []
    for i, item in enumerate(raw):
        unknown = set(item) - fields
        if unknown:
            raise ValueError(f"{path}: case {i}: unknown keys {sorted(unknown)}")
        cases.append(Case(**item))
    return cases


def select(cases: Sequence[Case], patterns: Sequence[str]) -> list[Case]:
    """Cases whose id matches any glob (all when no pattern), in grid order."""
    if not patterns:
        return list(cases)
    return [c for c in cases if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]


def skip_reason(case: Case, device: str) -> str:
    """Why a case cannot run here, decided without importing torch ('' when it can)."""
    if case.attn_implementation == "flash_attention_2":
        if device != "cuda":
            return "skipped: flash_attention_2 needs CUDA"
        if importlib.util.find_spec("flash_attn") is None:
            return "skipped: the flash_attn package is not installed"
    needs_bnb = case.method == "qlora" or "8bit" in case.optimizer or "bnb" in case.optimizer
    if needs_bnb and importlib.util.find_spec("bitsandbytes") is None:
        return "skipped: bitsandbytes is not installed"
    return ""


# --------------------------------------------------------------------------- prediction
def predict(case: Case, spec: Any) -> dict[str, Any]:
    """axo_helper.memory.estimate for the case, as pred_* columns ('' when unavailable)."""
    if spec is None:
        return {"pred_note": "no ModelSpec for this architecture"}
    try:
        from axo_helper.specs import TrainSetup

        # Imported by name: the memory model is optional here (a broken or missing one
        # must not stop a measurement that costs device time).
        estimate = importlib.import_module("axo_helper.memory").estimate

        setup = TrainSetup(
            model=spec,
            method=case.method,  # type: ignore[arg-type]
            precision=case.precision,  # type: ignore[arg-type]
            lora_r=case.lora_r,
            lora_targets=("all-linear",),
            lora_dropout=case.lora_dropout,
            sequence_len=case.sequence_len,
            micro_batch_size=case.micro_batch_size,
            sample_packing=False,
            gradient_checkpointing=case.gradient_checkpointing,
            attn_implementation=case.attn_implementation,  # type: ignore[arg-type]
            optimizer=case.optimizer,
        )
        m = estimate(setup)
    except Exception as exc:  # a missing or failing model must not stop the measurement
        return {"pred_note": f"estimate failed: {type(exc).__name__}: {exc}"[:200]}
    return {
        "pred_total_gib": round(m.total_gib, 3),
        "pred_weights_gib": round(m.weights_gib, 3),
        "pred_trainable_state_gib": round(m.trainable_state_gib, 3),
        "pred_activations_gib": round(m.activations_gib, 3),
        "pred_logits_gib": round(m.logits_gib, 3),
        "pred_overhead_gib": round(m.overhead_gib, 3),
        "pred_trainable_params": m.trainable_params,
        "pred_note": "",
    }


# --------------------------------------------------------------------------- CSV
CASE_COLUMNS = [
    "case_id",
    "model",
    "method",
    "sequence_len",
    "micro_batch_size",
    "gradient_checkpointing",
    "attn_implementation",
    "optimizer",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "use_reentrant",
    "precision",
    "warmup_steps",
    "measured_steps",
    "device",
]
ARCH_COLUMNS = ["model_type", "params_b", "vocab_size", "hidden_size", "num_layers"]
RESULT_COLUMNS = [
    "status",
    "reason",
    "failed_in",
    # What the prediction is compared with: NVML process memory on CUDA (context included),
    # the host RSS growth on CPU; measured_what names it.
    "measured_gib",
    "measured_what",
    "peak_reserved_gib",
    "peak_allocated_gib",
    "nvml_process_gib",
    "nvml_used_delta_gib",
    "context_gib",
    "step1_peak_gib",
    "setup_peak_reserved_gib",
    "setup_peak_allocated_gib",
    "after_setup_allocated_gib",
    "rss_before_model_gib",
    "rss_peak_setup_gib",
    "rss_peak_train_gib",
    "trainable_params",
    "steps_done",
    "step_time_s",
    "step_time_min_s",
    "step_time_warmup_s",
    "tokens_per_s",
    "loss_first",
    "loss_last",
    "wall_s",
]
PRED_COLUMNS = [
    "pred_total_gib",
    "pred_weights_gib",
    "pred_trainable_state_gib",
    "pred_activations_gib",
    "pred_logits_gib",
    "pred_overhead_gib",
    "pred_trainable_params",
    "error_gib",
    "error_pct",
    "pred_note",
]
ENV_COLUMNS = [
    "gpu_name",
    "gpu_total_gib",
    "driver",
    "cuda",
    "torch_version",
    "transformers_version",
    "peft_version",
    "bitsandbytes_version",
    "accelerate_version",
    "axolotl_version",
    "python",
    "alloc_conf",
    "stack",
    "date",
]
COLUMNS = CASE_COLUMNS + ARCH_COLUMNS + RESULT_COLUMNS + PRED_COLUMNS + ENV_COLUMNS


def _measured(result: Mapping[str, Any], device: str) -> tuple[float | None, str]:
    """The figure comparable with a prediction of the process's total memory."""
    if device == "cuda":
        for key, what in (
            ("nvml_process_gib", "nvml_process"),
            ("nvml_used_delta_gib", "nvml_used_delta"),
            ("peak_reserved_gib", "torch_reserved"),
        ):
            if result.get(key) is not None:
                return float(result[key]), what
        return None, ""
    peak, base = result.get("rss_peak_train_gib"), result.get("rss_before_model_gib")
    if peak is None or base is None:
        return None, ""
    return round(float(peak) - float(base), 4), "cpu_rss_delta"


def make_row(
    case: Case,
    arch: Arch | None,
    device: str,
    steps: tuple[int, int],
    result: Mapping[str, Any],
    prediction: Mapping[str, Any],
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(
        case_id=case.id,
        model=case.model,
        method=case.method,
        sequence_len=case.sequence_len,
        micro_batch_size=case.micro_batch_size,
        gradient_checkpointing=case.gradient_checkpointing,
        attn_implementation=case.attn_implementation,
        optimizer=case.optimizer,
        lora_r=case.lora_r if case.method != "full" else "",
        lora_alpha=case.lora_alpha if case.method != "full" else "",
        lora_dropout=case.lora_dropout if case.method != "full" else "",
        use_reentrant=case.use_reentrant if case.gradient_checkpointing else "",
        precision=case.precision,
        warmup_steps=steps[0],
        measured_steps=steps[1],
        device=device,
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    if arch is not None:
        cfg, spec = arch.hf_config, arch.spec
        row.update(
            model_type=cfg.get("model_type", ""),
            vocab_size=cfg.get("vocab_size", ""),
            hidden_size=cfg.get("hidden_size", ""),
            num_layers=cfg.get("num_hidden_layers", ""),
            params_b=round(spec.total_params / 1e9, 4) if spec is not None else "",
        )
    for key, value in result.items():
        if key in row and value is not None:
            row[key] = value
    measured, what = _measured(result, device)
    if result.get("status") in ("ok", "oom") and measured is not None:
        row.update(measured_gib=measured, measured_what=what)
    nvml, reserved = result.get("nvml_process_gib"), result.get("peak_reserved_gib")
    if nvml is not None and reserved is not None:
        row["context_gib"] = round(float(nvml) - float(reserved), 4)
    _apply_prediction(row, prediction)
    return row


def _apply_prediction(row: dict[str, Any], prediction: Mapping[str, Any]) -> None:
    """Set the pred_* columns and the error of the prediction against measured_gib."""
    for key in PRED_COLUMNS:
        row[key] = ""
    row.update(prediction)
    pred, measured = _num(prediction.get("pred_total_gib")), _num(row.get("measured_gib"))
    if row.get("status") == "ok" and measured and pred is not None:
        row["error_gib"] = round(pred - measured, 3)
        row["error_pct"] = round(100.0 * (pred - measured) / measured, 1)


class CsvSink:
    """Appends one row per finished case, flushed, so a killed run keeps what it measured."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS).writeheader()

    def write(self, row: Mapping[str, Any]) -> None:
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS).writerow(row)


# --------------------------------------------------------------------------- summary
def _num(value: Any) -> float | None:
    """A number from a row value (rows read back from a CSV hold strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def summarize(rows: Sequence[Mapping[str, Any]]) -> str:
    """Error per case, median absolute error, worst under- and over-prediction."""
    lines = [f"{'case':<62} {'status':<8} {'measured':>9} {'pred':>7} {'err%':>7} {'tok/s':>9}"]
    errors: list[tuple[float, str]] = []
    for r in rows:
        err = _num(r.get("error_pct"))
        if err is not None:
            errors.append((err, str(r["case_id"])))
        lines.append(
            f"{r['case_id']:<62} {r['status']:<8} {_fmt(r.get('measured_gib')):>9} "
            f"{_fmt(r.get('pred_total_gib')):>7} {_fmt(err, '{:+.1f}'):>7} "
            f"{_fmt(r.get('tokens_per_s'), '{:.0f}'):>9}"
        )
    what = sorted({str(r["measured_what"]) for r in rows if r.get("measured_what")})
    lines.append(f"measured = {', '.join(what) or '-'} (GiB); pred = axo_helper.memory total")
    if errors:
        abs_errs = [abs(e) for e, _ in errors]
        worst_under = min(errors)
        worst_over = max(errors)
        lines.append(
            f"{len(errors)} cases compared: median |error| {statistics.median(abs_errs):.1f}%, "
            f"mean error {statistics.fmean(e for e, _ in errors):+.1f}%"
        )
        if worst_under[0] < 0:
            lines.append(f"worst under-prediction: {worst_under[0]:+.1f}% ({worst_under[1]})")
        else:
            lines.append("no under-prediction")
        lines.append(f"worst over-prediction: {worst_over[0]:+.1f}% ({worst_over[1]})")
    else:
        lines.append("no case with both a measurement and a prediction")
    for r in rows:
        # An OOM is an under-prediction when the estimate said the case fits the device.
        pred, total = _num(r.get("pred_total_gib")), _num(r.get("gpu_total_gib"))
        if r.get("status") == "oom" and pred is not None and total is not None:
            verdict = "UNDER-PREDICTED" if pred < total else "consistent"
            lines.append(f"oom {r['case_id']}: predicted {pred} GiB of {total} GiB ({verdict})")
    if any(r.get("device") == "cpu" for r in rows):
        lines.append(
            "CPU run: measured is host RSS growth of a tiny model, predictions are GPU memory "
            "with CUDA overheads; the errors only show the harness works."
        )
    return "\n".join(lines)


def _fmt(value: Any, spec: str = "{:.2f}") -> str:
    number = _num(value)
    return spec.format(number) if number is not None else "-"


# --------------------------------------------------------------------------- running
def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The lent machine reaches no network: never wait on the hub.
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # What Axolotl's CLI sets (axolotl.utils.set_pytorch_cuda_alloc_conf, torch >= 2.9).
    if "PYTORCH_ALLOC_CONF" not in env and "PYTORCH_CUDA_ALLOC_CONF" not in env:
        env["PYTORCH_ALLOC_CONF"] = "expandable_segments:True"
    return env


def run_child(
    payload: Mapping[str, Any], timeout_s: float, log: Any, workdir: Path
) -> dict[str, Any]:
    """Run one case in a fresh interpreter; always returns a result dict with a status."""
    case_file, result_file = workdir / "case.json", workdir / "result.json"
    case_file.write_text(json.dumps(payload), encoding="utf-8")
    result_file.unlink(missing_ok=True)
    log.write(f"\n===== {payload['id']} =====\n")
    log.flush()
    start = time.monotonic()
    # Own session: on timeout the whole group this run started is killed, nothing else.
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(case_file), str(result_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_env(),
        start_new_session=True,
    )
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    wall = round(time.monotonic() - start, 2)
    result: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        result = json.loads(result_file.read_text(encoding="utf-8"))
    phase = result.get("phase", "start")
    if timed_out:
        result.update(
            status="timeout",
            failed_in=phase,
            reason=f"no result within {timeout_s:.0f} s (last phase: {phase})",
        )
    elif not result or (result.get("status") == "error" and not result.get("reason")):
        # The child died without reporting (os._exit, a signal, a segfault in a kernel).
        code = proc.returncode
        why = f"killed by signal {-code}" if code < 0 else f"exited {code}"
        if code == -signal.SIGKILL:
            why += " (the host's OOM killer?)"
        result.update(
            status="error", failed_in=phase, reason=f"child {why} in phase {phase}: {_tail(log)}"
        )
    result["wall_s"] = wall
    return result


def _tail(log: Any, n: int = 3) -> str:
    """The last lines the child printed (the log is a real file)."""
    try:
        log.flush()
        with open(log.name, encoding="utf-8", errors="replace") as fh:
            lines = [ln.strip() for ln in fh.readlines()[-n:]]
        return " | ".join(ln for ln in lines if ln)[-240:]
    except (OSError, AttributeError):
        return ""


def environment_line() -> str:
    """What the children will import, read without importing it (a missing piece shows
    before any device time is spent on cases that need it)."""
    import importlib.metadata as md

    parts = [f"python {sys.version.split()[0]}"]
    for pkg in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "flash_attn"):
        try:
            parts.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            parts.append(f"{pkg} absent")
    memory = importlib.util.find_spec("axo_helper.memory") is not None
    parts.append("axo_helper.memory " + ("present" if memory else "absent (no predictions)"))
    return ", ".join(parts)


def detect_device() -> str:
    """cuda when NVML sees a GPU, else cpu (no torch import in the parent)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return "cuda" if pynvml.nvmlDeviceGetCount() > 0 else "cpu"
    except Exception:
        return "cpu"


def _gpu_slug(device: str) -> str:
    if device != "cuda":
        return "cpu"
    try:
        import pynvml

        pynvml.nvmlInit()
        name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        name = name.decode() if isinstance(name, bytes) else name
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"
    except Exception:
        return "gpu"


def measure(
    cases: Sequence[Case],
    *,
    device: str,
    out: Path,
    timeout_s: float,
    budget_s: float,
    steps: tuple[int, int] = (1, 3),
    echo: Any = print,
) -> list[dict[str, Any]]:
    """Run every case (in order), append each row to `out`; returns the rows."""
    sink = CsvSink(out)
    log_path = out.with_suffix(".log")
    rows: list[dict[str, Any]] = []
    archs: dict[str, Arch | Exception] = {}
    walls: list[float] = []
    start = time.monotonic()
    with (
        log_path.open("w", encoding="utf-8") as log,
        tempfile.TemporaryDirectory(prefix="gpu-measure-") as tmp,
    ):
        for i, case in enumerate(cases, 1):
            label = f"[{i}/{len(cases)}] {case.id}"
            if case.model not in archs:
                try:
                    archs[case.model] = resolve_arch(case.model)
                except Exception as exc:
                    archs[case.model] = exc
            found = archs[case.model]
            arch = found if isinstance(found, Arch) else None
            prediction = predict(case, arch.spec) if arch is not None else {}
            if arch is not None and arch.note:
                prediction["pred_note"] = arch.note
            reason = skip_reason(case, device)
            if isinstance(found, Exception):
                reason = f"skipped: {found}"
            # Leave room for one more typical case, so the run ends inside its time limit.
            left = budget_s - (time.monotonic() - start) if budget_s > 0 else float("inf")
            typical = 1.3 * statistics.median(walls) if walls else 30.0
            if not reason and left < min(typical, timeout_s):
                reason = f"skipped: time budget ({budget_s:.0f} s) spent"
            if reason:
                result: dict[str, Any] = {"status": "skipped", "reason": reason}
            else:
                assert arch is not None
                payload = {
                    **dataclasses.asdict(case),
                    "id": case.id,
                    "device": device,
                    "hf_config": arch.hf_config,
                    "warmup_steps": steps[0],
                    "measured_steps": steps[1],
                }
                result = run_child(payload, min(timeout_s, left), log, Path(tmp))
                walls.append(float(result.get("wall_s", 0.0)))
            row = make_row(case, arch, device, steps, result, prediction)
            sink.write(row)
            rows.append(row)
            echo(_progress(label, row))
    return rows


def _progress(label: str, row: Mapping[str, Any]) -> str:
    if row["status"] != "ok":
        return f"{label}: {row['status']} {row['reason']}".rstrip()
    pred = row.get("pred_total_gib")
    err = row.get("error_pct")
    vs = f" (pred {pred} GiB, {err:+.1f}%)" if isinstance(err, (int, float)) else ""
    return (
        f"{label}: {row['measured_gib']} GiB {row['measured_what']}{vs}, "
        f"{row['tokens_per_s']} tok/s, {row['wall_s']} s"
    )


# --------------------------------------------------------------------------- CLI
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        help="a named grid (default: cpu-smoke on CPU, h100 on CUDA)",
    )
    src.add_argument("--cases-file", type=Path, help="a JSON list of Case objects")
    p.add_argument(
        "--cases",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only the case ids matching this glob (repeatable)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--out",
        type=Path,
        help="CSV path (default: benchmarks/results/"
        "gpu-measure-<gpu>-<date>.csv); the summary and the children's log go beside it",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        help="write gpu-measure-<gpu>-<date>.csv (+ summary, log) into this folder",
    )
    p.add_argument("--timeout-s", type=float, default=240.0, help="per case (default 240)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=0.0,
        help="stop starting cases when this many seconds are spent (0: no limit)",
    )
    p.add_argument("--warmup-steps", type=int, default=1)
    p.add_argument("--steps", type=int, default=3, help="measured optimizer steps after warmup")
    p.add_argument("--list", action="store_true", help="print the selected case ids and exit")
    p.add_argument(
        "--repredict",
        type=Path,
        metavar="CSV",
        help="measure nothing: recompute the predictions of a measured CSV with the "
        "current memory model and write them to --out",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.repredict:
        out = args.out or args.repredict.with_name(args.repredict.stem + "-repredicted.csv")
        summary = summarize(repredict(args.repredict, out))
        out.with_suffix(".summary.txt").write_text(summary + "\n", encoding="utf-8")
        print(summary)
        return 0
    device = detect_device() if args.device == "auto" else args.device
    if args.cases_file:
        cases = load_cases_file(args.cases_file)
    else:
        cases = GRIDS[args.grid or ("h100" if device == "cuda" else "cpu-smoke")]()
    cases = select(cases, args.cases)
    if not cases:
        print("no case matches", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(c.id for c in cases))
        return 0
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = args.out_dir or HERE / "results"
    out = args.out or folder / f"gpu-measure-{_gpu_slug(device)}-{stamp}.csv"
    print(f"{len(cases)} cases on {device} -> {out}", flush=True)
    print(environment_line(), flush=True)
    rows = measure(
        cases,
        device=device,
        out=out,
        timeout_s=args.timeout_s,
        budget_s=args.budget_s,
        steps=(args.warmup_steps, args.steps),
        echo=lambda s: print(s, flush=True),
    )
    summary = summarize(rows)
    out.with_suffix(".summary.txt").write_text(summary + "\n", encoding="utf-8")
    print(summary)
    return 0


def case_from_row(row: Mapping[str, str]) -> Case:
    """The Case a CSV row measured (the inverse of make_row's case columns)."""
    d = Case("x", "lora", 1, 1)  # defaults for the columns full fine-tunes leave empty
    return Case(
        model=row["model"],
        method=row["method"],
        sequence_len=int(row["sequence_len"]),
        micro_batch_size=int(row["micro_batch_size"]),
        gradient_checkpointing=row["gradient_checkpointing"] == "True",
        attn_implementation=row["attn_implementation"],
        optimizer=row["optimizer"],
        lora_r=int(row.get("lora_r") or d.lora_r),
        lora_alpha=int(row.get("lora_alpha") or d.lora_alpha),
        lora_dropout=float(row.get("lora_dropout") or d.lora_dropout),
        use_reentrant=row.get("use_reentrant") == "True",
        precision=row.get("precision") or d.precision,
    )


def repredict(src: Path, out: Path) -> list[dict[str, Any]]:
    """Recompute the predictions of a measured CSV with today's memory model.

    The measurements stay as they were: this gives the before/after error of a change to
    axo_helper.memory without a GPU.
    """
    with src.open(newline="", encoding="utf-8") as fh:
        rows: list[dict[str, Any]] = [dict(r) for r in csv.DictReader(fh)]
    archs: dict[str, Arch | None] = {}
    sink = CsvSink(out)
    for row in rows:
        case = case_from_row(row)
        if case.model not in archs:
            try:
                archs[case.model] = resolve_arch(case.model)
            except Exception:
                archs[case.model] = None
        arch = archs[case.model]
        prediction = predict(case, arch.spec if arch else None)
        _apply_prediction(row, prediction)
        sink.write({k: row.get(k, "") for k in COLUMNS})
    return rows


if __name__ == "__main__":
    sys.exit(main())
