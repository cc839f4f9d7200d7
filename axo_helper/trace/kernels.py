"""CPU stand-ins for the CUDA kernels a GPU run uses, chosen to save what those save.

- FlashAttention: registered with transformers as the attention function
  "axo_helper_fused_attention" (and flash's mask function: no materialised mask). It runs
  PyTorch's sdpa, causal, with grouped KV heads, which on a CPU picks the flash kernel
  for CPUs: it saves q, k, v, the output and the log-sum-exp, as flash-attn does.
- Dropout: CUDA's fused dropout saves a bool mask (1 byte per element); the CPU path
  saves a float "noise" tensor of the input's dtype. `cuda_like_dropout` runs
  `torch.native_dropout`, which saves the bool mask on every device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

FLASH_STANDIN = "axo_helper_fused_attention"  # "flash" in a name makes transformers import flash-attn


def _flash_standin(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **_kwargs: Any,
) -> tuple[torch.Tensor, None]:
    out = F.scaled_dot_product_attention(
        query, key, value, is_causal=True, scale=scaling, enable_gqa=key.shape[1] != query.shape[1]
    )
    return out.transpose(1, 2).contiguous(), None


def register_flash_standin() -> str:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

    AttentionInterface.register(FLASH_STANDIN, _flash_standin)
    AttentionMaskInterface.register(FLASH_STANDIN, flash_attention_mask)
    return FLASH_STANDIN


def _dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> torch.Tensor:
    if not training or p == 0.0:
        return input
    out, _mask = torch.native_dropout(input, p, training)
    return out


@contextlib.contextmanager
def cuda_like_dropout() -> Iterator[None]:
    original = F.dropout
    F.dropout = _dropout
    try:
        yield
    finally:
        F.dropout = original
