"""`axo-helper trace CONFIG`: the real training step of a config, on fake tensors.

Checks the memory model against the code it predicts, without a GPU: the config's
base model is built from its config.json on the meta device with the real
transformers class, wrapped as Axolotl 0.19 wraps it (PEFT LoRA, k-bit dtypes,
gradient checkpointing), its parameters swapped for fake tensors
(`torch._subclasses.fake_tensor.FakeTensorMode`: shapes and dtypes, no storage), and
one forward, loss, backward and optimizer step is run while every live storage is
counted. An 8B model traces in about half a minute on two CPU cores.

Package map:
  counter.py   StorageCounter: live storages op by op, by phase, module and tag
  build.py     the model as Axolotl builds it, materialised as fake tensors
  kernels.py   CPU stand-ins that save what the CUDA kernels save (flash, dropout)
  step.py      the HF Trainer step, phase by phase
  result.py    TraceResult: traced components beside memory.tensor_terms
  source.py    which config.json: local directory, preset, hub cache

Train extra only: this package imports torch, transformers and PEFT, and nothing on
the `plan` path imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from axo_helper.trace.result import COMPONENTS, TraceResult, trace_setup

__all__ = ["COMPONENTS", "ConfigTrace", "TraceResult", "trace_config", "trace_setup"]


@dataclass(frozen=True)
class ConfigTrace:
    config: str
    model: str  # what the architecture came from
    result: TraceResult

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "model": self.model, **self.result.as_dict()}


def trace_config(
    path: Path,
    *,
    model: str | None = None,
    layers: int | None = None,
    hold_outputs: bool = False,
) -> ConfigTrace:
    """Trace the step `path` (an Axolotl config) trains. `model` stands in for a
    base_model that does not resolve offline; `layers` shortens the model."""
    from axo_helper.config.read import setup_from_config
    from axo_helper.errors import ConfigError, TraceError
    from axo_helper.model.facts import from_config
    from axo_helper.trace.source import raw_config, with_layers
    from axo_helper.yamlload import safe_load

    cfg = safe_load(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{path} is not a YAML mapping", hint="pass an Axolotl config file")
    name = model or str(cfg.get("base_model") or "").strip()
    if not name:
        raise ConfigError(
            f"{path} has no base_model", hint="pass --model ID_OR_DIR for the architecture"
        )
    raw = raw_config(name)
    if layers is not None:
        raw = with_layers(raw, layers)
    spec = from_config(raw, name=name, source="local")
    setup = setup_from_config(cfg, spec, 1, config_dir=path.parent)
    offloaded = setup.activation_offloading
    if offloaded:
        # TRL's OffloadActivations moves CUDA tensors only: on fake CPU tensors it is a
        # no-op, so the step is traced, and compared, without it.
        setup = replace(setup, activation_offloading=False)
    try:
        result = trace_setup(raw, setup, hold_outputs=hold_outputs)
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
        # transformers/PEFT/torch refusing the model or an op on fake tensors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceError(
            f"the {spec.architecture or spec.model_type} step could not run on fake tensors: "
            f"{first[:300]}",
            hint="the estimate (axo-helper validate) still applies; fused MoE experts with "
            "QLoRA or lora_dropout are known not to trace on a CPU",
        ) from None
    if offloaded:
        note = (
            "activation_offloading is not traced (TRL's offloader moves CUDA tensors "
            "only): the saved block inputs are counted on the device, and compared with "
            "the estimate without offloading"
        )
        result = replace(result, notes=(*result.notes, note))
    return ConfigTrace(str(path), name, result)
