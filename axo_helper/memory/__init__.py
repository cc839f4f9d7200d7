"""Training-memory model: the predicted peak GPU memory of one training process.

`estimate(setup) -> MemoryBreakdown` is pure arithmetic over the frozen dataclasses in
specs.py: no torch, no I/O. It answers "how much memory will this Axolotl config take
on each GPU", in GiB (2**30 bytes, what PyTorch and Axolotl print).

    peak = weights + trainable state + max(activation phase, optimizer-step phase)
           + overhead (CUDA context, allocator reserve, communication buffers)

The activation phase is the start of the backward pass: every saved activation is
alive and the loss buffers over the vocabulary peak. The optimizer-step phase is
when the activations are gone but the optimizer's temporaries exist. Gradients are
counted in both: under gradient accumulation they live across micro-batches.

Package map:
  constants.py    every constant, next to its source (paper, library source, measurement)
  stack.py        `Stack`: where training frameworks differ; `AXOLOTL`, the default
  optimizers.py   optimizer state per parameter for each Axolotl `optimizer:` value
  params.py       LoRA / modules_to_save / trainable parameter counts, block sizes
  sharding.py     precision and ZeRO/FSDP rules every component shares
  weights.py, state.py, activations.py (+ logits), overhead.py   the components
  estimate.py     `estimate(setup)`: the components combined into the peak

The derivations, the calibration against published measurements and its error figures
are in docs/memory-model.md; benchmarks/estimator_error.py prints them. The behaviour
modelled is Axolotl 0.19 on transformers 5, PEFT 0.20, bitsandbytes 0.50, DeepSpeed 0.18
and torch 2.x (the `AXOLOTL` stack).

`estimate` is looked up on this package by its callers (`memory.estimate(...)`), which
is what lets tests replace it with monkeypatch.setattr(planner.memory, "estimate", ...).
"""

from __future__ import annotations

from axo_helper.memory.constants import (
    CUDA_CONTEXT_GIB,
    FP32_BYTES,
    GPTQ_INT4_BYTES_PER_PARAM,
    HALF_BYTES,
    NF4_BYTES_PER_PARAM,
    NF4_DQ_BYTES_PER_PARAM,
)
from axo_helper.memory.estimate import estimate, reserved_gib
from axo_helper.memory.params import expert_parameters, lora_params, trainable_params
from axo_helper.memory.stack import AXOLOTL, Stack

__all__ = [
    "AXOLOTL",
    "CUDA_CONTEXT_GIB",
    "FP32_BYTES",
    "GPTQ_INT4_BYTES_PER_PARAM",
    "HALF_BYTES",
    "NF4_BYTES_PER_PARAM",
    "NF4_DQ_BYTES_PER_PARAM",
    "Stack",
    "estimate",
    "expert_parameters",
    "lora_params",
    "reserved_gib",
    "trainable_params",
]
