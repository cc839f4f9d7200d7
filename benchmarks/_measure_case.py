"""Child process of gpu_measure.py: measure ONE training case and write the result as JSON.

    python benchmarks/_measure_case.py CASE.json RESULT.json

Runs in its own process so that an out-of-memory error, a crash or a hang spoils only this
case; the parent reads RESULT.json (rewritten at every phase, so a killed child still says
how far it got). It imports only torch / transformers / peft / accelerate (bitsandbytes for
QLoRA and the 8-bit optimizers) and never axo_helper, so it runs wherever those do.

What it does, and why that is the Axolotl stack
------------------------------------------------
Axolotl is not installed on the lent GPU machine (and pulls in datasets, trl and dozens of
other packages), so this drives the libraries Axolotl drives, in the order Axolotl 0.19
drives them (axolotl/loaders/model.py ``ModelLoader.load`` and axolotl/loaders/adapter.py):

1. The model is built from its config.json with random weights directly on the device, in
   bf16: a meta-device skeleton (``accelerate.init_empty_weights``, buffers real), then every
   parameter is materialised on the device. For QLoRA the skeleton's Linear layers are first
   swapped by transformers' own bitsandbytes quantizer (``Bnb4BitHfQuantizer.preprocess_model``
   with Axolotl's BitsAndBytesConfig: nf4, double quant, bf16 compute and storage) and each
   weight is quantized tensor by tensor exactly as transformers' ``Bnb4bitQuantize`` does
   while loading a checkpoint, so no bf16 copy of the whole model ever exists. Memory does
   not depend on weight values; the values are small normals so the quantizer and the loss
   stay finite.
2. ``use_cache`` off; norms, ``embed_tokens`` and ``lm_head`` cast to fp32; for (Q)LoRA
   gradient checkpointing enabled on the model; ``prepare_model_for_kbit_training`` for
   QLoRA; norms and embeddings cast back to bf16 for adapters (and for attention
   implementations other than eager/sdpa); ``enable_input_require_grads``; a PEFT
   ``LoraConfig`` on every Linear but ``lm_head`` (``lora_target_linear``); then
   ``gc.collect()`` + ``empty_cache()`` as Axolotl does at the end of loading.
3. transformers ``Trainer`` with the TrainingArguments Axolotl sets for these keys (bf16,
   optim, gradient_checkpointing + kwargs, micro batch, no accumulation) runs warmup + measured
   optimizer steps on full-length random token sequences with labels (the HF causal-LM loss,
   logits upcast to fp32 included). ``PYTORCH_ALLOC_CONF=expandable_segments:True`` is set by
   the parent, as Axolotl's CLI does.

Peak statistics are reset after loading, so the training peak excludes this harness's own
way of building the model; the loading peak is recorded separately.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import platform
import random
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

GIB = 1024**3

# Axolotl's get_linear_embedding_layers(model_type): the input/output embedding names that
# its dtype casts and lora_target_linear treat specially.
_EMBEDDING_LAYERS = {
    "gpt_neox": ("embed_in", "embed_out"),
    "falcon": ("word_embeddings", "lm_head"),
    "nemotron_h": ("embeddings", "lm_head"),
    "bailing_hybrid": ("word_embeddings", "lm_head"),
}
_DEFAULT_EMBEDDING_LAYERS = ("embed_tokens", "lm_head")

STACK = (
    "transformers.Trainer + peft + bitsandbytes, configured and ordered as Axolotl 0.19's "
    "ModelLoader (benchmarks/_measure_case.py); Axolotl itself not run"
)


# --------------------------------------------------------------------------- result file
class Result:
    """The JSON the parent reads; rewritten atomically at each phase."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = {"status": "error", "phase": "start", "reason": ""}

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, default=str), encoding="utf-8")
        tmp.replace(self.path)

    def phase(self, name: str) -> None:
        self.update(phase=name, **{f"t_{name}": round(time.monotonic() - _T0, 2)})


_T0 = time.monotonic()


# --------------------------------------------------------------------------- host memory
def _rss_gib() -> float:
    """Current resident set size (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / GIB
    except (OSError, ValueError, IndexError):
        return 0.0


def _hwm_gib() -> float:
    """Peak RSS since the last reset (VmHWM); falls back to ru_maxrss (lifetime peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / GIB
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def _reset_hwm() -> bool:
    """Reset VmHWM so the training peak excludes model building (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- NVML
class Nvml:
    """The process's GPU memory as the driver sees it, CUDA context included.

    Opened before torch touches CUDA, so the device's used memory at that moment is the
    baseline for the fallback (used - baseline) when per-process figures are unavailable
    (containers often hide pids)."""

    def __init__(self) -> None:
        self.handle: Any = None
        self.baseline: int | None = None
        self.max_process: int | None = None
        self.max_delta: int | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
            index = int(visible) if visible.isdigit() else 0
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.baseline = int(pynvml.nvmlDeviceGetMemoryInfo(self.handle).used)
            self._nvml = pynvml
        except Exception:  # no NVML, no driver, no GPU: CPU runs
            self.handle = None

    def info(self) -> dict[str, Any]:
        if self.handle is None:
            return {}
        n = self._nvml
        name = n.nvmlDeviceGetName(self.handle)
        driver = n.nvmlSystemGetDriverVersion()
        return {
            "gpu_name": name.decode() if isinstance(name, bytes) else name,
            "driver": driver.decode() if isinstance(driver, bytes) else driver,
            "gpu_total_gib": round(int(n.nvmlDeviceGetMemoryInfo(self.handle).total) / GIB, 2),
        }

    def sample(self) -> None:
        if self.handle is None:
            return
        n = self._nvml
        try:
            used = int(n.nvmlDeviceGetMemoryInfo(self.handle).used)
            if self.baseline is not None:
                delta = used - self.baseline
                self.max_delta = delta if self.max_delta is None else max(self.max_delta, delta)
            mine = None
            for proc in n.nvmlDeviceGetComputeRunningProcesses(self.handle):
                if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                    mine = int(proc.usedGpuMemory)
            if mine is not None:
                self.max_process = mine if self.max_process is None else max(self.max_process, mine)
        except Exception:  # a failed sample must not fail the measurement
            pass


# --------------------------------------------------------------------------- model build
def _init_value(name: str, shape: tuple[int, ...], dtype: Any, device: Any, std: float) -> Any:
    """A finite random value: ones for norm weights, zeros for biases, N(0, std) otherwise."""
    import torch

    value = torch.empty(shape, dtype=dtype, device=device)
    if len(shape) == 1 and "norm" in name:
        value.fill_(1.0)
    elif len(shape) == 1:
        value.zero_()
    else:
        value.normal_(0.0, std)
    return value


def _bnb_config(dtype: Any) -> Any:
    """Axolotl 0.19's BitsAndBytesConfig for `adapter: qlora` + `load_in_4bit: true`."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        llm_int8_threshold=6.0,
        llm_int8_has_fp16_weight=False,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_quant_storage=dtype,
    )


def build_model(case: dict[str, Any], device: str, dtype: Any) -> Any:
    """The model on `device` with random weights, as from_pretrained would leave it."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    hf = dict(case["hf_config"])
    model_type = hf.pop("model_type")
    for key in ("architectures", "transformers_version", "torch_dtype", "dtype", "auto_map"):
        hf.pop(key, None)
    config = AutoConfig.for_model(model_type, **hf)
    config.use_cache = False  # axolotl.loaders.utils.load_model_config
    std = float(getattr(config, "initializer_range", 0.02) or 0.02)

    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(
            config, dtype=dtype, attn_implementation=case["attn_implementation"]
        )

    quantizer = None
    if case["method"] == "qlora":
        from transformers.quantizers.auto import AutoHfQuantizer

        bnb_config = _bnb_config(dtype)
        model.config.quantization_config = bnb_config
        quantizer = AutoHfQuantizer.from_config(bnb_config, pre_quantized=False)
        quantizer.preprocess_model(
            model=model,
            dtype=dtype,
            device_map={"": device},
            checkpoint_files=None,
            use_kernels=False,
        )

    # Materialise every parameter on the device; `done` keeps tied weights tied.
    done: dict[int, Any] = {}
    for mod_name, module in model.named_modules():
        for p_name, param in list(module._parameters.items()):
            if param is None:
                continue
            if id(param) in done:
                module._parameters[p_name] = done[id(param)]
                continue
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            new: Any
            if type(param).__name__ == "Params4bit":
                import bitsandbytes as bnb

                # transformers.integrations.bitsandbytes.Bnb4bitQuantize.convert, per tensor
                value = _init_value(full, tuple(param.shape), dtype, device, std)
                quantized: Any = bnb.nn.Params4bit(value, requires_grad=False, **param.__dict__)
                new = quantized.to(device)  # quantizes: Params4bit.to -> _quantize
                del value
            else:
                value = _init_value(full, tuple(param.shape), param.dtype, device, std)
                new = torch.nn.Parameter(value, requires_grad=param.requires_grad)
            module._parameters[p_name] = new
            done[id(param)] = new
        for b_name, buf in list(module._buffers.items()):
            if buf is not None:
                module._buffers[b_name] = buf.to(device)
    if config.tie_word_embeddings:
        model.tie_weights()
    if quantizer is not None:
        model.hf_quantizer = quantizer
        quantizer.postprocess_model(model)
    return model


# --------------------------------------------------------------------------- Axolotl setup
def _embedding_layers(model_type: str) -> tuple[str, str]:
    return _EMBEDDING_LAYERS.get(model_type, _DEFAULT_EMBEDDING_LAYERS)


def _convert_embedding_modules_dtype(model: Any, dtype: Any, before_kbit: bool) -> None:
    """ModelLoader._convert_embedding_modules_dtype (no fp32_norms, no lora_on_cpu)."""
    embedding_modules = _embedding_layers(model.config.model_type)
    for name, module in model.named_modules():
        if "norm" in name:
            module.to(dtype)
        if before_kbit and name.endswith(".gate"):
            module.to(dtype)
        if any(m in name for m in embedding_modules) and hasattr(module, "weight"):
            module.to(dtype=dtype)


def find_all_linear_names(model: Any) -> list[str]:
    """axolotl.loaders.adapter.find_all_linear_names: what `lora_target_linear: true` targets."""
    import torch

    classes: tuple[type, ...] = (torch.nn.Linear,)
    with contextlib.suppress(ImportError):
        import bitsandbytes as bnb

        classes = (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt, torch.nn.Linear)
    names: set[str] = set()
    for name, module in model.named_modules():
        cls_name = module.__class__.__name__
        if isinstance(module, classes) or (
            "Linear" in cls_name and cls_name != "LlamaLinearScalingRotaryEmbedding"
        ):
            parts = name.split(".")
            names.add(parts[0] if len(parts) == 1 else parts[-1])
    names.discard(_embedding_layers(model.config.model_type)[1])
    return sorted(names)


def axolotl_setup(model: Any, case: dict[str, Any], dtype: Any) -> Any:
    """ModelLoader._apply_post_model_load_setup + _load_adapters + _apply_post_lora_load_setup."""
    import torch

    method = case["method"]
    adapter = method in ("lora", "qlora")
    gc_on = bool(case["gradient_checkpointing"])
    gc_kwargs = {"use_reentrant": bool(case.get("use_reentrant", False))}

    # _adjust_model_config
    mpe = getattr(model.config, "max_position_embeddings", None)
    if mpe and case["sequence_len"] > mpe:
        model.config.max_position_embeddings = case["sequence_len"]

    # _configure_embedding_dtypes (not FSDP)
    _convert_embedding_modules_dtype(model, torch.float32, before_kbit=True)
    if adapter and gc_on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
    if method == "qlora":  # _prepare_model_for_quantization
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc_on)
    # Axolotl casts back for adapters and for attention implementations that need it
    # (ATTN_IMPLS_WITHOUT_DTYPE_CAST = {eager, sdpa}); full fine-tunes on sdpa/eager keep
    # fp32 norms and embeddings.
    if adapter or case["attn_implementation"] not in ("eager", "sdpa"):
        _convert_embedding_modules_dtype(model, dtype, before_kbit=False)

    # _load_adapters -> load_adapter -> load_lora
    if adapter:
        from peft import LoraConfig, get_peft_model

        model.enable_input_require_grads()
        lora_config = LoraConfig(
            r=case["lora_r"],
            lora_alpha=case["lora_alpha"],
            target_modules=find_all_linear_names(model),
            lora_dropout=case["lora_dropout"],
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora_config)

    # _apply_post_lora_load_setup
    for _ in range(3):
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return model


# --------------------------------------------------------------------------- training
class RandomTokens:
    """Full-length random sequences with labels: the worst case sample packing plans for."""

    def __init__(self, n: int, seq_len: int, vocab: int, seed: int = 0):
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, vocab, (n, seq_len), generator=gen)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        ids = self.ids[i]
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": ids.clone(),
        }


def train(model: Any, case: dict[str, Any], device: str, nvml: Nvml, res: Result) -> dict[str, Any]:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator

    cuda = device == "cuda"
    warmup, steps = int(case["warmup_steps"]), int(case["measured_steps"])
    total = warmup + steps
    mb, seq = int(case["micro_batch_size"]), int(case["sequence_len"])
    vocab = int(case["hf_config"]["vocab_size"])

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    step_times: list[float] = []
    losses: list[float] = []
    peaks: list[float] = []

    class Probe(TrainerCallback):
        t0 = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            sync()
            self.t0 = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            sync()
            step_times.append(time.perf_counter() - self.t0)
            nvml.sample()
            peaks.append(torch.cuda.max_memory_allocated() / GIB if cuda else _hwm_gib())
            res.update(steps_done=len(step_times))

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    with tempfile.TemporaryDirectory(prefix="axo-measure-") as out_dir:
        args = TrainingArguments(
            output_dir=out_dir,
            max_steps=total,
            per_device_train_batch_size=mb,
            gradient_accumulation_steps=1,
            learning_rate=2e-4 if case["method"] != "full" else 1e-5,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            optim=case["optimizer"],
            bf16=case.get("precision", "bf16") == "bf16",
            fp16=case.get("precision") == "fp16",
            gradient_checkpointing=bool(case["gradient_checkpointing"]),
            gradient_checkpointing_kwargs=(
                {"use_reentrant": bool(case.get("use_reentrant", False))}
                if case["gradient_checkpointing"]
                else None
            ),
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            dataloader_num_workers=0,
            use_cpu=not cuda,
            seed=42,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=RandomTokens(total * mb, seq, vocab),
            data_collator=default_data_collator,
            callbacks=[Probe()],
        )
        fault = case.get("fault")
        if fault == "oom":  # tests: the OOM path without needing a real OOM
            raise _oom_error(torch)("injected fault (the case's fault field)")
        trainer.train()

    measured = step_times[warmup:] or step_times
    mean_step = sum(measured) / len(measured) if measured else float("nan")
    return {
        "steps_done": len(step_times),
        "step_time_s": round(mean_step, 4),
        "step_time_min_s": round(min(measured), 4) if measured else None,
        "step_time_warmup_s": round(step_times[0], 4) if step_times else None,
        "tokens_per_s": round(mb * seq / mean_step, 1) if measured and mean_step > 0 else None,
        "loss_first": round(losses[0], 4) if losses else None,
        "loss_last": round(losses[-1], 4) if losses else None,
        "step1_peak_gib": round(peaks[0], 4) if peaks else None,
    }


# --------------------------------------------------------------------------- main
def _versions() -> dict[str, Any]:
    import importlib.metadata as md

    out: dict[str, Any] = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "axolotl"):
        try:
            out[f"{pkg}_version"] = md.version(pkg)
        except md.PackageNotFoundError:
            out[f"{pkg}_version"] = ""
    return out


def _oom_error(torch: Any) -> type[BaseException]:
    """torch.OutOfMemoryError (torch >= 2.5), else its CUDA-only spelling."""
    return getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def _is_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")  # not imported yet: cannot be torch's OOM
    if torch is not None and isinstance(exc, _oom_error(torch)):
        return True
    text = str(exc).lower()
    # CPU allocator, cuBLAS and bitsandbytes report running out of memory in plain RuntimeErrors.
    return any(
        s in text for s in ("out of memory", "can't allocate memory", "cublas_status_alloc_failed")
    )


def _describe(exc: BaseException) -> str:
    """'Type: first line of the message', short enough for a CSV cell."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def run(case: dict[str, Any], res: Result) -> None:
    fault = case.get("fault")
    if fault == "crash":  # tests: a child that dies without writing a result
        os._exit(7)
    if fault == "hang":  # tests: the per-case timeout
        time.sleep(3600)
    if fault == "error":
        raise RuntimeError("injected fault (the case's fault field)")

    nvml = Nvml()  # before torch initialises CUDA: the baseline must exclude our context
    import torch

    device = case["device"]
    cuda = device == "cuda"
    if cuda and not torch.cuda.is_available():
        res.update(status="skipped", reason="CUDA is not available")
        return
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        case.get("precision", "bf16")
    ]
    random.seed(0)
    torch.manual_seed(0)
    info: dict[str, Any] = {**_versions(), **nvml.info(), "stack": STACK}
    if cuda:
        info["cuda"] = torch.version.cuda
        info.setdefault("gpu_name", torch.cuda.get_device_name(0))
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats()
    else:
        info["gpu_name"] = f"cpu ({platform.machine()}, RSS not GPU memory)"
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    info["alloc_conf"] = os.environ.get("PYTORCH_ALLOC_CONF") or os.environ.get(
        "PYTORCH_CUDA_ALLOC_CONF", ""
    )
    # Import everything training touches before the RSS baseline: on CPU the measured
    # figure is the growth from here, which should be the model's, not the libraries'.
    import peft  # noqa: F401
    import transformers  # noqa: F401
    from transformers import Trainer  # noqa: F401

    if case["method"] == "qlora" or "8bit" in case["optimizer"]:
        import bitsandbytes  # noqa: F401
    gc.collect()
    info["rss_before_model_gib"] = round(_rss_gib(), 4)
    res.update(**info)

    res.phase("build")
    model = build_model(case, device, dtype)
    res.phase("setup")
    model = axolotl_setup(model, case, dtype)
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    setup: dict[str, Any] = {
        "trainable_params": trainable,
        "rss_peak_setup_gib": round(_hwm_gib(), 4),
    }
    if cuda:
        setup.update(
            setup_peak_allocated_gib=round(torch.cuda.max_memory_allocated() / GIB, 4),
            setup_peak_reserved_gib=round(torch.cuda.max_memory_reserved() / GIB, 4),
            after_setup_allocated_gib=round(torch.cuda.memory_allocated() / GIB, 4),
        )
        torch.cuda.reset_peak_memory_stats()
    else:
        setup["after_setup_rss_gib"] = round(_rss_gib(), 4)
    setup["rss_hwm_reset"] = _reset_hwm()
    res.update(**setup)

    res.phase("train")
    try:
        out = train(model, case, device, nvml, res)
    finally:
        # Peaks are recorded also on OOM: then they are a lower bound of what was needed.
        peaks: dict[str, Any] = {"rss_peak_train_gib": round(_hwm_gib(), 4)}
        if cuda:
            nvml.sample()
            peaks.update(
                peak_allocated_gib=round(torch.cuda.max_memory_allocated() / GIB, 4),
                peak_reserved_gib=round(torch.cuda.max_memory_reserved() / GIB, 4),
                nvml_process_gib=(
                    round(nvml.max_process / GIB, 4) if nvml.max_process is not None else None
                ),
                nvml_used_delta_gib=(
                    round(nvml.max_delta / GIB, 4) if nvml.max_delta is not None else None
                ),
            )
        res.update(**peaks)
    bad_loss = out["loss_last"] is not None and not math.isfinite(out["loss_last"])
    res.update(
        **out,
        status="ok",
        reason="loss is not finite (memory figures still valid)" if bad_loss else "",
    )


def main(argv: list[str]) -> int:
    case = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    res = Result(Path(argv[2]))
    res.update(status="error", phase="start", pid=os.getpid())
    try:
        run(case, res)
    except BaseException as exc:
        res.update(failed_in=res.data.get("phase"))
        oom = False
        with contextlib.suppress(Exception):
            oom = _is_oom(exc)
        res.update(status="oom" if oom else "error", reason=_describe(exc))
        if not oom:
            traceback.print_exc()
        res.update(wall_s=round(time.monotonic() - _T0, 2))
        return 0 if oom else 1
    res.phase("done")
    res.update(wall_s=round(time.monotonic() - _T0, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
