"""Partial fine-tuning ("freeze"): which parameters train when only the last blocks do.

Axolotl 0.19 applies `unfrozen_parameters` after loading (train.py, utils/freeze.py
freeze_layers_except): every parameter gets requires_grad False unless a pattern
matches its name. The loader's dtype rules are those of a full fine-tune (no adapter:
loaders/model.py upcasts embeddings and norms to fp32 with sdpa/eager and never casts
them back), so weights follow memory.weights' full-fine-tune path; gradients and
optimizer states exist for the unfrozen parameters only.

The embedding output does not require grad, so the frozen blocks run their forward
without an autograd graph and save nothing; the first unfrozen block is where saving
starts. Unfreezing lm_head or embed_tokens is the exception: Axolotl then calls
enable_input_require_grads, the embedding output requires grad, and every frozen block
records a graph (its input under checkpointing, its saved tensors without).
"""

from __future__ import annotations

from axo_helper.specs import ModelSpec, TrainSetup


def block_size(model: ModelSpec) -> int:
    """Parameters of one block, norms and biases included: what is not the embeddings,
    the output head or the final norm, split evenly over the blocks."""
    rest = model.total_params - model.embedding_params - model.hidden_size
    return max(0, rest) // max(1, model.num_layers)


def trainable_layers(setup: TrainSetup) -> int:
    """Blocks that train (all for a full fine-tune, none for LoRA/QLoRA)."""
    if setup.method == "full":
        return setup.model.num_layers
    if setup.method != "freeze":
        return 0
    return max(0, min(setup.trainable_layers, setup.model.num_layers))


def head_params(setup: TrainSetup) -> int:
    """The output head when it trains (tied: the same tensor as the input embedding)."""
    if setup.method != "freeze" or not setup.train_head:
        return 0
    return setup.model.vocab_size * setup.model.hidden_size


def freeze_trainable_params(setup: TrainSetup) -> int:
    """The unfrozen blocks, the final norm (always trained with them) and the head if set."""
    m = setup.model
    return trainable_layers(setup) * block_size(m) + m.hidden_size + head_params(setup)


def graph_through_frozen(setup: TrainSetup) -> bool:
    """True when the frozen blocks record an autograd graph (see the module docstring)."""
    return setup.method == "freeze" and setup.train_head and setup.frozen_layers > 0
