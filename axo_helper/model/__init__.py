"""Model inspection: architecture facts from a config.json, never weights.

`inspect(name)` resolves what the user passed to --model, in this order:

1. an existing local directory (a Hugging Face checkpoint folder with config.json);
2. a shipped preset (presets/models/*.yaml), matched by HF id, alias or a loose
   spelling ("Llama-3.1-8B", "llama3.1-8b"); "-Instruct"/"-it"/"-Chat" variants of a
   preset share its architecture. A repository of another org that only shares the
   name part (`acme/tiny-llama`, `mlx-community/Qwen2.5-7B`) is read from the hub
   first; the preset stands in, with a note, only when the hub has nothing for it;
3. the hub: only config.json, through huggingface_hub's cache (HF_HUB_OFFLINE honoured).

Whenever a preset is used, the ModelSpec's first note says which.

`from_config(config, ...)` is the pure part: it turns config.json fields into a
ModelSpec (linears per block with the module names PEFT/Axolotl use, parameter
counts, MoE active parameters).

Package map:
  config.py    config.json fields across families, causal-LM check, attention shape
  layouts.py   parameter counting per architecture family (module names, MoE experts)
  facts.py     from_config / from_dev_facts: config.json -> ModelSpec
  presets.py   presets/models/*.yaml and name matching
  local.py     a local checkpoint folder
  hub.py       the hub's config.json, cached

This module must stay importable without torch, transformers or axolotl: `plan`
runs on laptops, and a test asserts none of them is imported on that path.
"""

from __future__ import annotations

from pathlib import Path

from axo_helper.errors import HubUnavailableError, ModelPathError
from axo_helper.model.facts import Source, from_config, from_dev_facts
from axo_helper.model.hub import from_hub, is_offline
from axo_helper.model.layouts import KNOWN_MODEL_TYPES
from axo_helper.model.local import inspect_local, looks_like_path
from axo_helper.model.presets import Preset, find_preset, list_presets, preset_spec, same_org
from axo_helper.specs import ModelSpec

__all__ = [
    "KNOWN_MODEL_TYPES",
    "Preset",
    "Source",
    "find_preset",
    "from_config",
    "from_dev_facts",
    "inspect",
    "list_presets",
]


def inspect(name: str, *, offline: bool | None = None) -> ModelSpec:
    """Resolve --model: a local directory, a shipped preset, or the hub's config.json.

    `offline=None` follows HF_HUB_OFFLINE. Never loads weights.
    """
    name = name.strip()
    if not name:
        raise ModelPathError("--model is empty", hint="pass an HF id or a local directory")
    path = Path(name).expanduser()
    if path.is_dir():
        return inspect_local(path, name)
    if path.is_file() and path.name == "config.json":
        return inspect_local(path.parent, str(path.parent))
    if path.exists():
        raise ModelPathError(
            f"{name} is a file, not a model directory",
            hint="pass the folder that holds config.json",
        )
    if looks_like_path(name):
        raise ModelPathError(
            f"model directory {name} does not exist",
            hint="check the path, or pass an HF id such as meta-llama/Llama-3.1-8B",
        )
    hit = find_preset(name)
    if hit is not None and same_org(name, hit[0]):
        return preset_spec(name, *hit)
    if hit is None:
        return from_hub(name, is_offline(offline))
    # Another org's repository that only shares a preset's name: its own config.json
    # (cached or downloaded) wins; the preset stands in, and says so, only without one.
    try:
        return from_hub(name, is_offline(offline))
    except HubUnavailableError as exc:
        return preset_spec(name, *hit, by_name_only=exc.reason)
