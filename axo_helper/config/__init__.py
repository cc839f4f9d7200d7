"""Axolotl configs: read any one, build one from a Plan, render and write it.

    read.py        any Axolotl YAML -> TrainSetup; the one reader of its keys
                   (precision, attention incl. legacy flags, batch, method, sharding)
    build.py       Plan -> the config mapping and a reason per key, block by block; it
                   decides nothing: values and reasons are the Plan's (Plan.settings)
    reasons.py     the default comment beside each key
    templating.py  the one Jinja environment and its filters (yaml, comment, modelfile)
    render.py      render_plan (render, parse back, schema-check), write_config, DeepSpeed

No torch or Axolotl import anywhere here.
"""

from __future__ import annotations

from axo_helper.config.build import build_config, deepspeed_filename
from axo_helper.config.read import setup_from_config
from axo_helper.config.render import RenderedConfig, render_plan, write_config

__all__ = [
    "RenderedConfig",
    "build_config",
    "deepspeed_filename",
    "render_plan",
    "setup_from_config",
    "write_config",
]
