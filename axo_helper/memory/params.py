"""Parameter counts the components share: LoRA adapters, modules_to_save copies, what
the optimizer trains, and per-block sizes (norms, linears, the largest tensor)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from axo_helper.memory.constants import FOUR_NORM_TYPES, PARALLEL_BLOCK_TYPES
from axo_helper.specs import FULL_WEIGHT_METHODS, LinearShape, ModelSpec, TrainSetup

# modules_to_save names: a full trainable copy of the input embedding or the output head.
_INPUT_EMBEDDING_NAMES = ("embed_tokens", "wte", "word_embeddings", "embed_in", "embeddings")
OUTPUT_HEAD_NAMES = ("lm_head", "embed_out", "output")


def _matches(shape_name: str, target: str) -> bool:
    """PEFT's rule: a target names a module when it equals or suffixes its dotted path."""
    t = target.strip()
    return shape_name == t or shape_name.endswith("." + t) or t.endswith("." + shape_name)


def targeted_linears(
    model: ModelSpec, targets: Sequence[str], parameters: Sequence[str] = ()
) -> tuple[LinearShape, ...]:
    """The block weights LoRA adapts. "all-linear" is PEFT's: every nn.Linear but lm_head
    (fused MoE expert tensors are not nn.Linear in transformers 5 and are skipped).
    `parameters` (lora_target_parameters) name bare weight tensors such as
    experts.gate_up_proj, which PEFT wraps in a ParamWrapper."""
    if any(t.strip().lower() in ("all-linear", "all_linear") for t in targets):
        modules = [ls for ls in model.linears if ls.nn_linear]
    else:
        modules = [ls for ls in model.linears if any(_matches(ls.name, t) for t in targets)]
    wrapped = [
        ls
        for ls in model.linears
        if not ls.nn_linear and ls not in modules and any(_matches(ls.name, p) for p in parameters)
    ]
    return tuple(modules + wrapped)


def unadapted_weights(setup: TrainSetup) -> tuple[str, ...]:
    """Block weights no LoRA adapter reaches (an MoE router, experts left out), by name;
    empty for a full fine-tune (or a partial one)."""
    if setup.method in FULL_WEIGHT_METHODS:
        return ()
    m = setup.model
    adapted = {
        ls.name for ls in targeted_linears(m, setup.lora_targets, setup.lora_target_parameters)
    }
    return tuple(dict.fromkeys(ls.name for ls in m.linears if ls.name not in adapted))


def expert_parameters(model: ModelSpec) -> tuple[str, ...]:
    """The fused expert tensors of an MoE block, as lora_target_parameters names them
    (the router is left alone: Axolotl's examples adapt experts only)."""
    return tuple(ls.name for ls in model.linears if not ls.nn_linear and "experts" in ls.name)


def lora_params(
    model: ModelSpec, targets: Sequence[str], r: int, parameters: Sequence[str] = ()
) -> int:
    """LoRA parameters: r * (d_in + d_out) per adapted matrix (A is r x d_in, B is d_out x r),
    times experts for MoE expert tensors (PEFT's ParamWrapper: A is (r * experts) x d_in,
    B is d_out x (r * experts)), times layers."""
    shapes = targeted_linears(model, targets, parameters)
    per_layer = sum((ls.d_in + ls.d_out) * ls.count for ls in shapes)
    return model.num_layers * r * per_layer


def setup_lora_params(setup: TrainSetup) -> int:
    """lora_params of a setup: its target modules and target parameters."""
    return lora_params(setup.model, setup.lora_targets, setup.lora_r, setup.lora_target_parameters)


def wrapped_weight_elements(setup: TrainSetup) -> int:
    """Elements per block of the weight tensors PEFT's ParamWrapper adapts: it builds
    W + B@A as a full tensor each forward (torch parametrize), so they cost memory."""
    if setup.method in FULL_WEIGHT_METHODS or not setup.lora_target_parameters:
        return 0
    shapes = targeted_linears(setup.model, (), setup.lora_target_parameters)
    return sum(ls.d_in * ls.d_out * ls.count for ls in shapes)


def modules_to_save_params(model: ModelSpec, names: Iterable[str]) -> tuple[int, tuple[str, ...]]:
    """Parameters of the full trainable copies PEFT makes for lora_modules_to_save, and
    the names it could not size."""
    total = 0
    unknown: list[str] = []
    matrix = model.vocab_size * model.hidden_size
    for name in names:
        leaf = name.strip().split(".")[-1]
        if leaf in _INPUT_EMBEDDING_NAMES or leaf in OUTPUT_HEAD_NAMES:
            total += matrix
        else:
            unknown.append(name)
    return total, tuple(unknown)


def trainable_params(setup: TrainSetup) -> int:
    """Parameters the optimizer updates: all of them for a full fine-tune; adapters and
    modules_to_save copies for LoRA/QLoRA."""
    if setup.method == "full":
        return setup.model.total_params
    if setup.method == "freeze":
        from axo_helper.memory.freeze import freeze_trainable_params

        return freeze_trainable_params(setup)
    saved, _ = modules_to_save_params(setup.model, setup.lora_modules_to_save)
    return setup_lora_params(setup) + saved


def norms_per_layer(model: ModelSpec) -> int:
    """Norm weight vectors per block: 1 for parallel blocks, 4 for Gemma 2/3, else 2."""
    if model.model_type in PARALLEL_BLOCK_TYPES:
        return 1
    if model.model_type in FOUR_NORM_TYPES:
        return 4
    return 2


def block_params(model: ModelSpec) -> int:
    """Parameters of one transformer block (for gathered-layer buffers)."""
    return sum(ls.d_in * ls.d_out * ls.count for ls in model.linears)


def largest_tensor(setup: TrainSetup) -> int:
    """Elements of the largest trainable tensor (a ZeRO-3 sub-group of size 0 holds one)."""
    m = setup.model
    head = m.vocab_size * m.hidden_size
    if setup.method == "full":
        return max(max((ls.d_in * ls.d_out * ls.count for ls in m.linears), default=0), head)
    if setup.method == "freeze":
        block = max((ls.d_in * ls.d_out * ls.count for ls in m.linears), default=0)
        return max(block, head if setup.train_head else 0)
    adapters = targeted_linears(m, setup.lora_targets, setup.lora_target_parameters)
    biggest = max((setup.lora_r * max(ls.d_in, ls.d_out) * ls.count for ls in adapters), default=0)
    saved, _ = modules_to_save_params(m, setup.lora_modules_to_save)
    return max(biggest, head if saved else 0)
