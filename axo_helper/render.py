"""Moved: rendering lives in axo_helper.config (build, templating, render).

Kept so existing imports (export.py, run.py) work until they import from the owning
module; new code imports from axo_helper.config.* directly.
"""

from __future__ import annotations

from axo_helper.config.build import (
    PLUGIN,
    PLUGIN_PREDICTED_KEY,
    PLUGIN_RUN_DIR_KEY,
    base_model_ref,
    build_config,
    decoder_layer_class,
    deepspeed_filename,
)
from axo_helper.config.render import (
    YAML_TEMPLATE,
    RenderedConfig,
    render_deepspeed,
    render_plan,
    write_config,
)
from axo_helper.config.templating import (
    comment_text,
    environment,
    modelfile_value,
    render_template,
    yaml_value,
)

__all__ = [
    "PLUGIN",
    "PLUGIN_PREDICTED_KEY",
    "PLUGIN_RUN_DIR_KEY",
    "YAML_TEMPLATE",
    "RenderedConfig",
    "base_model_ref",
    "build_config",
    "comment_text",
    "decoder_layer_class",
    "deepspeed_filename",
    "environment",
    "modelfile_value",
    "render_deepspeed",
    "render_plan",
    "render_template",
    "write_config",
    "yaml_value",
]
