"""Counting the non-padding tokens a training run trains on (`TokenCounter`).

Needs no torch import of its own: it works on whatever tensors the model's forward
receives.
"""

from __future__ import annotations

from typing import Any


class TokenCounter:
    """Counts the non-padding input tokens the model is trained on.

    A forward pre-hook on the model sees every micro-batch's inputs; the Trainer's own
    counter (include_num_input_tokens_seen) sums attention_mask, which with Axolotl's
    sample packing holds sequence ids (1, 2, 3 ...) rather than 0/1, and overcounts.
    The count stays a device tensor until read, so counting adds no GPU sync.
    """

    def __init__(self, pad_token_id: int | None) -> None:
        self.pad_token_id = pad_token_id
        self._total: Any = None
        self._read = 0
        self._handle: Any = None

    def attach(self, model: Any) -> None:
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not module.training:
            return  # evaluation forwards are not training throughput
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        if mask is not None and hasattr(mask, "count_nonzero"):
            n = mask.count_nonzero()
        elif ids is not None and hasattr(ids, "numel"):
            n = (ids != self.pad_token_id).sum() if self.pad_token_id is not None else ids.numel()
        else:
            return
        self._total = n if self._total is None else self._total + n

    def take(self) -> int | None:
        """Tokens since the last call (None before any training forward)."""
        if self._total is None:
            return None
        total = int(self._total)  # the one sync point, once per optimizer step
        new, self._read = total - self._read, total
        return new
