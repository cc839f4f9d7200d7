"""Which config.json a trace builds: the base model's, from the same places `plan`
looks (a local directory, a shipped preset, the hub's cached config.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axo_helper.errors import ModelError


def raw_config(name: str) -> dict[str, Any]:
    """config.json fields of `name`; never downloads weights."""
    from axo_helper.model.local import read_config
    from axo_helper.model.presets import find_preset

    path = Path(name).expanduser()
    if path.is_dir():
        return read_config(path / "config.json", f"{name}/config.json")
    hit = find_preset(name)
    if hit is not None:
        return dict(hit[0].config)
    cached = _hub_cached(name)
    if cached is not None:
        return read_config(cached, f"the cached config.json of {name}")
    raise ModelError(
        f"no config.json for {name}: not a local directory, a shipped preset or in the hub cache",
        hint="pass --model with a local model directory (only config.json is read)",
    )


def _hub_cached(name: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a core dependency
        return None
    found = try_to_load_from_cache(name, "config.json")
    return Path(found) if isinstance(found, str) else None


def with_layers(raw: dict[str, Any], layers: int) -> dict[str, Any]:
    """The same architecture with `layers` blocks (text config of multimodal wrappers too)."""
    out = json.loads(json.dumps(raw))
    out["num_hidden_layers"] = layers
    for key in ("layer_types",):
        if isinstance(out.get(key), list):
            out[key] = out[key][:layers]
    return out
