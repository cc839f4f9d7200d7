"""Step 4: the memory estimate of a config on a GPU, and the smallest edit that fits.

The architecture is the config's `base_model` when it resolves (a preset, a local
directory, the hub's cached config.json); `validate --model` stands in for a
base_model that does not (an id neither shipped nor cached, a path on another
machine), and the report's note says which one was used and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from axo_helper.errors import ConfigError, ModelError
from axo_helper.fit import largest_fit
from axo_helper.specs import Hardware, ModelSpec, TrainSetup
from axo_helper.validate.report import MemoryCheck


def budget_gib(hardware: Hardware) -> float:
    """Per-GPU memory the planner would plan against: memory minus the policy's headroom."""
    from axo_helper.planner import load_policy

    return max(0.0, load_policy().budget(hardware.budget_gib))


_SOURCES = {
    "preset": "a shipped preset",
    "local": "a local directory",
    "hub": "the hub's config.json",
}


def _unresolved(base: str, exc: ModelError) -> str:
    """Why base_model did not resolve, without the model.inspect message's preamble."""
    return exc.message.removeprefix(f"unknown model '{base}': ")


def choose_model(data: Mapping[str, Any], given: ModelSpec | None) -> tuple[ModelSpec, str]:
    """(architecture, note): the config's base_model, else `given` (validate --model).

    Raises ModelError/ConfigError (the memory step becomes a note) when neither
    resolves; its hint names --model and the nearest presets.
    """
    from axo_helper import model as model_mod
    from axo_helper.model.presets import closest_presets

    base = data.get("base_model")
    base = base.strip() if isinstance(base, str) else ""
    if not base:
        if given is not None:
            return given, f"memory: architecture from --model {given.name} (no base_model)"
        raise ConfigError(
            "base_model is missing",
            hint="pass --model ID_OR_DIR to choose the architecture for the estimate",
        )
    # Axolotl loads base_model at revision_of_model (a local directory has none)
    rev = data.get("revision_of_model")
    rev = rev.strip() if isinstance(rev, str) and rev.strip() else None
    if rev is not None and Path(base).expanduser().exists():
        rev = None
    try:
        spec = model_mod.inspect(base, revision=rev)
    except ModelError as exc:
        if given is None:
            raise ModelError(
                f"base_model {base}: {_unresolved(base, exc)}",
                hint="pass --model ID_OR_DIR with the same architecture, e.g. "
                + ", ".join(closest_presets(base, 3)),
            ) from None
        return given, (
            f"memory: architecture from --model {given.name} "
            f"(base_model {base}: {_unresolved(base, exc)})"
        )
    unused = f"; --model {given.name} not needed" if given is not None else ""
    return spec, f"memory: architecture from base_model {base} ({_SOURCES[spec.source]}{unused})"


def memory_check(
    data: Mapping[str, Any],
    hardware: Hardware,
    *,
    model: ModelSpec | None = None,
    config_dir: str | Path | None = None,
) -> MemoryCheck:
    """The estimate of `data` on `hardware`, and the smallest change that fits if it does not.

    `model`: the architecture to use (None: the config's base_model, see choose_model).
    """

    from axo_helper import memory
    from axo_helper.config.read import setup_from_config

    if model is None:
        model, _ = choose_model(data, None)
    setup = setup_from_config(data, model, hardware.world_size, config_dir=config_dir)
    budget = budget_gib(hardware)
    est = memory.estimate(setup)
    fits = est.total_gib <= budget
    suggestion: str | None = None
    if not fits:
        suggestion = _suggest(setup, budget)
    return MemoryCheck(hardware.describe(), est, budget, fits, suggestion, setup)


def _suggest(setup: TrainSetup, budget: float) -> str:
    """The smallest edit that fits, in the order an operator would try them.

    Each "would fit" is fit.largest_fit, the rule the planner and `run --fit` use, so
    validate never names a micro batch the planner would reject (or the reverse).
    """
    smaller = largest_fit(
        lambda mb: replace(setup, micro_batch_size=mb), budget, range(1, setup.micro_batch_size)
    )
    if smaller.micro_batch:
        return (
            f"micro_batch_size {smaller.micro_batch} would fit "
            "(raise gradient_accumulation_steps to keep the batch)"
        )
    if not setup.gradient_checkpointing:
        checkpointed = largest_fit(
            lambda mb: replace(setup, micro_batch_size=mb, gradient_checkpointing=True),
            budget,
            range(1, setup.micro_batch_size + 1),
        )
        if checkpointed.micro_batch:
            return (
                f"gradient_checkpointing: true with micro_batch_size {checkpointed.micro_batch} "
                "would fit"
            )
    one = replace(setup, micro_batch_size=1, gradient_checkpointing=True)
    for seq in (setup.sequence_len // 2, setup.sequence_len // 4):
        if seq >= 256 and _fits_at_one(replace(one, sequence_len=seq), budget):
            return f"micro_batch_size 1, gradient checkpointing and sequence_len {seq} would fit"
    if setup.method in ("full", "freeze"):
        return "no simple edit fits; try adapter: lora (or qlora), or more GPUs"
    if setup.method == "lora":
        return "no simple edit fits; try adapter: qlora with load_in_4bit: true, or a larger GPU"
    return "no simple edit fits; a larger GPU or several GPUs are needed"


def _fits_at_one(setup: TrainSetup, budget: float) -> bool:
    """Micro batch 1 of `setup` fits, by fit.largest_fit's rule."""
    return (
        largest_fit(lambda mb: replace(setup, micro_batch_size=mb), budget, (1,)).micro_batch == 1
    )
