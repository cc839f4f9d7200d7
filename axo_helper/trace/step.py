"""One training step of a built model on fake tensors, counted phase by phase.

The step is the one HF Trainer runs for Axolotl: forward with labels (the model's own
loss function), backward, gradient clipping, the optimizer step, zero_grad(set_to_none).
The outputs are dropped before backward, as Trainer.training_step drops them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from axo_helper.specs import TrainSetup
from axo_helper.trace.build import Built
from axo_helper.trace.counter import StorageCounter
from axo_helper.trace.kernels import cuda_like_dropout

# Optimizers that run on fake tensors, by Axolotl `optimizer:` value; the others
# (bitsandbytes 8-bit and paged states) are counted analytically by the caller.
_TORCH_OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adamw_torch_fused": {"fused": True},
    "adamw_torch": {"foreach": True},
    "adamw_hf": {"foreach": True},
}


def optimizer_runs(name: str) -> bool:
    return name in _TORCH_OPTIMIZERS


def _switch(counter: StorageCounter, phase: str) -> None:
    counter.phase = counter.scope = phase


def _scopes(model: nn.Module, counter: StorageCounter) -> None:
    """Name allocations after the module running: each decoder block, the embeddings,
    the head (and the loss after it)."""
    stack: list[str] = []

    def enter(name: str) -> Any:
        def pre(_m: nn.Module, _a: Any) -> None:
            stack.append(counter.scope)
            counter.scope = name

        return pre

    def leave(_m: nn.Module, _a: Any, _o: Any) -> None:
        counter.scope = stack.pop() if stack else "model"

    def head_start(_m: nn.Module, args: Any) -> None:
        enter("lm_head")(_m, args)
        hidden = args[0] if args else None
        if isinstance(hidden, torch.Tensor) and hidden.requires_grad:
            # Fires once backward is through the loss and the head: the blocks' turn.
            hidden.register_hook(lambda _g: _switch(counter, "backward:blocks"))

    def embedded(_m: nn.Module, _a: Any, out: Any) -> None:
        leave(_m, _a, out)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            # Fires when the blocks are done: the embedding's own backward is last.
            out.register_hook(lambda _g: _switch(counter, "backward:embeddings"))

    def head_done(_m: nn.Module, _a: Any, _o: Any) -> None:
        leave(_m, _a, _o)
        if counter.phase == "forward":
            counter.phase = "loss"
            counter.scope = "loss"

    for name, module in model.named_modules():
        leaf = name.split(".")[-1]
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        if leaf.isdigit() and parent.endswith("layers"):
            module.register_forward_pre_hook(enter(f"layers.{leaf}"))
            module.register_forward_hook(leave)
        elif leaf in ("embed_tokens", "wte", "embed_in", "word_embeddings"):
            module.register_forward_pre_hook(enter("embeddings"))
            module.register_forward_hook(embedded)
        elif leaf in ("lm_head", "embed_out") and "lora_" not in name:
            module.register_forward_pre_hook(head_start)
            module.register_forward_hook(head_done)


def _autocast(setup: TrainSetup) -> Any:
    """accelerate's mixed precision (HF Trainer with bf16/fp16: true) runs the forward
    under torch.autocast; the CPU autocast stands in for CUDA's (same op lists for the
    matmuls that matter here)."""
    import contextlib

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(setup.precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=dtype)


def run_step(
    built: Built,
    setup: TrainSetup,
    counter: StorageCounter,
    fake_mode: Any,
    *,
    hold_outputs: bool = False,
) -> None:
    """Forward, loss, backward, clip and optimizer step, with `counter` watching.

    hold_outputs: keep the model's outputs (the 16-bit logits) alive through backward,
    as a hand-written loop `out = model(...); out.loss.backward()` does; HF Trainer
    returns only the loss from compute_loss, so the logits are freed before backward.
    """
    model = built.model
    for p in model.parameters():
        tag = "trainable_weight" if p.requires_grad else "weight"
        counter.adopt(p, tag, scope="weights")
        if id(p) in built.analytic_weight_bytes:
            counter.resize(p, built.analytic_weight_bytes[id(p)])
    for buf in model.buffers():
        counter.adopt(buf, "weight", scope="weights")
    counter.mark("weight")
    counter.mark("trainable_weight")
    _scopes(model, counter)
    for p in built.trainable:
        # Tag each gradient as it lands, so the step's own bytes exclude it (under
        # gradient accumulation the gradients live across micro-steps).
        p.register_post_accumulate_grad_hook(lambda q: counter.tag(q.grad, "gradient"))
    model.train()
    b, s = setup.micro_batch_size, setup.sequence_len
    with fake_mode, counter, cuda_like_dropout():
        ids = torch.zeros((b, s), dtype=torch.long)
        labels = torch.zeros((b, s), dtype=torch.long)
        counter.phase, counter.scope = "forward", "model"
        with _autocast(setup):
            out = model(input_ids=ids, labels=labels)
        loss = out.loss
        if not hold_outputs:
            del out
        counter.phase, counter.scope = "backward", "backward:loss"
        loss.backward()
        del loss
        counter.mark("gradient")
        counter.phase, counter.scope = "optimizer", "optimizer"
        torch.nn.utils.clip_grad_norm_(built.trainable, 1.0)
        opt_kwargs = _TORCH_OPTIMIZERS.get(setup.optimizer)
        if opt_kwargs is not None:
            opt = torch.optim.AdamW(built.trainable, lr=1e-4, **opt_kwargs)
            opt.step()
            for state in opt.state.values():
                for v in state.values():
                    if isinstance(v, torch.Tensor):
                        counter.tag(v, "optimizer")
            counter.mark("optimizer")
            opt.zero_grad(set_to_none=True)
