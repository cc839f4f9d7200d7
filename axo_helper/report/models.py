"""Which two models the report compares, where they run, and loading them.

The fine-tuned model is the exported one: merged/ (full weights), else the base with
adapter/, else with Axolotl's own output (adapter or full weights). The base is the
config's base_model. Both are scored with the fine-tune's tokenizer, the one the
held-out rows were tokenized with. torch and transformers are imported inside the
functions that load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo_helper.errors import AxoHelperError
from axo_helper.report.missing import Missing
from axo_helper.rundir import RunDir

# On CPU, scoring the held-out rows with both models costs about
# 2 x params x tokens x 2 FLOPs; at a 2-core machine's ~30 GFLOP/s a 0.5B model on 64
# rows of ~300 tokens takes ~10 minutes. Larger models are refused on CPU: a GPU
# machine does the same in seconds.
CPU_MAX_PARAMS = 600_000_000
CPU_MAX_ROWS = 64  # held-out rows scored on CPU unless --max-rows says otherwise


@dataclass(frozen=True)
class Models:
    base: str  # base_model as the config names it (a local folder or a hub id)
    tuned: Path  # merged/, adapter/ or Axolotl's output_dir
    tuned_kind: str  # "merged", "adapter" or "output"
    adapter: bool  # tuned holds an adapter to put on the base
    params: int | None  # the base's parameters (model.inspect, no weights read)
    remote_code: bool
    revision: str | None

    def describe_tuned(self) -> str:
        return f"{self.tuned} ({'base + ' if self.adapter else ''}{self.tuned_kind})"


def _has_adapter(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file() and any(folder.glob("adapter_model.*"))


def _has_weights(folder: Path) -> bool:
    """Full model weights: config.json and safetensors other than an adapter's."""
    return (folder / "config.json").is_file() and any(
        not p.name.startswith("adapter_model") for p in folder.glob("*.safetensors")
    )


def find_models(run: RunDir, cfg: Mapping[str, Any]) -> Models:
    """The base and the fine-tuned model of a run, or Missing when nothing was trained."""
    from axo_helper.export.source import resolve_output_dir

    candidates: list[tuple[Path, str]] = [(run.merged, "merged"), (run.adapter, "adapter")]
    with contextlib.suppress(AxoHelperError):  # no output at all: the refusal below says so
        candidates.append((resolve_output_dir(run.path, cfg), "output"))
    for folder, kind in candidates:
        adapter = _has_adapter(folder)
        if adapter or _has_weights(folder):
            base = str(cfg.get("base_model"))
            return Models(
                base=base,
                tuned=folder,
                tuned_kind=kind,
                adapter=adapter,
                params=_params(base),
                remote_code=bool(cfg.get("trust_remote_code")),
                revision=cfg.get("revision_of_model"),
            )
    raise Missing(
        "no fine-tuned model to evaluate: merged/, adapter/ and Axolotl's output hold no "
        "weights (did training finish? `axo-helper export RUN_DIR` exports them)"
    )


def _params(base: str) -> int | None:
    from axo_helper import model as model_mod

    try:
        return model_mod.inspect(base).total_params
    except Exception:  # an unknown architecture: sized once loaded instead
        return None


def refuse_on_cpu(models: Models, cuda: bool) -> None:
    """Missing for a model too large to score on CPU in reasonable time."""
    if cuda or models.params is None or models.params <= CPU_MAX_PARAMS:
        return
    raise Missing(
        f"refused on CPU: {models.params / 1e9:.1f}B parameters is over the "
        f"{CPU_MAX_PARAMS / 1e9:.1f}B limit for CPU (scoring both models would take hours); "
        "run `axo-helper report` on a machine with a GPU, or pass --no-eval"
    )


def device_and_dtype() -> tuple[bool, Any]:
    """(CUDA available, the dtype to load in): bf16 or fp16 on a GPU, fp32 on CPU."""
    import torch

    if torch.cuda.is_available():
        return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return False, torch.float32


def load_tokenizer(models: Models) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(models.tuned), trust_remote_code=models.remote_code)


def load_model(
    models: Models, which: str, *, cuda: bool, dtype: Any, vocab: int
) -> tuple[Any, list[str]]:
    """The "base" or "tuned" model in eval mode, and notes on how it was loaded."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": models.remote_code}
    if cuda:
        kwargs["device_map"] = "auto"  # every GPU, and the CPU for what does not fit
    notes: list[str] = []
    lm: Any
    if which == "tuned" and not models.adapter:
        lm = AutoModelForCausalLM.from_pretrained(str(models.tuned), **kwargs)
    else:
        lm = AutoModelForCausalLM.from_pretrained(models.base, revision=models.revision, **kwargs)
        rows = int(lm.get_input_embeddings().weight.shape[0])
        if rows < vocab:
            # The fine-tune added tokens (a chat template's): the base gets rows for them
            # as Axolotl gave them before training, so the ids line up.
            lm.resize_token_embeddings(vocab)
            if which == "base":
                notes.append(
                    f"the base has no embedding for {vocab - rows} token(s) the fine-tune "
                    "added; they were given fresh rows, as before training"
                )
        if which == "tuned":
            from peft import PeftModel

            lm = PeftModel.from_pretrained(lm, str(models.tuned))
    lm.eval()
    return lm, notes
