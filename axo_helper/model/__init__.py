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

`revision` (--revision) pins a hub revision: the hub's config.json is read at it, and
the spec carries it to the rendered config (`revision_of_model`) and plan.json. A preset
keeps its shipped architecture and says so in a note; a local directory has no revisions
(a usage error).

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

from dataclasses import replace
from pathlib import Path

from axo_helper.errors import HubUnavailableError, ModelPathError, UsageError
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


def _local_revision(name: str, revision: str | None) -> None:
    if revision is not None:
        raise UsageError(
            f"--revision {revision} names a hub revision, and {name} is a local directory",
            hint="a local checkout is one revision already: drop --revision, or pass the "
            "hub id to plan for that revision",
        )


def _pinned_preset(spec: ModelSpec, revision: str | None) -> ModelSpec:
    """A preset under a pinned revision: Axolotl loads the revision, the plan keeps the
    shipped architecture (no hub call, so gated repositories plan without a token)."""
    if revision is None:
        return spec
    note = (
        f"revision {revision}: planned with the preset's architecture (that revision's "
        "config.json is not read); Axolotl loads that revision (revision_of_model)"
    )
    return replace(spec, revision=revision, notes=(*spec.notes, note))


def inspect(name: str, *, offline: bool | None = None, revision: str | None = None) -> ModelSpec:
    """Resolve --model: a local directory, a shipped preset, or the hub's config.json.

    `offline=None` follows HF_HUB_OFFLINE; `revision`: a hub branch, tag or commit
    (None: main). Never loads weights.
    """
    name = name.strip()
    if not name:
        raise ModelPathError("--model is empty", hint="pass an HF id or a local directory")
    if revision is not None and not revision.strip():
        raise UsageError("--revision is empty", hint="pass a branch, a tag or a commit hash")
    revision = revision.strip() if revision is not None else None
    path = Path(name).expanduser()
    if path.is_dir():
        _local_revision(name, revision)
        return inspect_local(path, name)
    if path.is_file() and path.name == "config.json":
        _local_revision(name, revision)
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
        return _pinned_preset(preset_spec(name, *hit), revision)
    if hit is None:
        return from_hub(name, is_offline(offline), revision=revision)
    # Another org's repository that only shares a preset's name: its own config.json
    # (cached or downloaded) wins; the preset stands in, and says so, only without one.
    try:
        return from_hub(name, is_offline(offline), revision=revision)
    except HubUnavailableError as exc:
        return _pinned_preset(preset_spec(name, *hit, by_name_only=exc.reason), revision)
