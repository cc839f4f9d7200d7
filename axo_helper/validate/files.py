"""Files a config points to that must exist before training: the DeepSpeed JSON."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from axo_helper.config.read import deepspeed_candidates, distributed_of, known_deepspeed
from axo_helper.errors import ConfigError
from axo_helper.validate.lines import LineMap
from axo_helper.validate.report import Issue


def file_checks(
    data: Mapping[str, Any], lines: LineMap, config_dir: str | Path | None
) -> tuple[list[Issue], list[str]]:
    """(errors, notes) about the DeepSpeed JSON the config points to.

    One of Axolotl's own deepspeed_configs/ names without its file is a note, not an
    error: Axolotl's examples point there and `axolotl fetch deepspeed_configs` puts
    the files in place, so Axolotl accepts the config as written.
    """
    value = data.get("deepspeed")
    if not isinstance(value, str) or not value:
        return [], []
    where = Path(config_dir) if config_dir else None
    try:
        distributed_of(data, 1, where)
    except ConfigError as exc:
        return [Issue("deepspeed", lines.line(("deepspeed",)), exc.message, "file")], []
    known = known_deepspeed(value)
    if known is None or any(p.is_file() for p in deepspeed_candidates(value, where)):
        return [], []
    stage, offload = known
    return [], [
        f"deepspeed: {value} is not here; read as Axolotl's config of that name "
        f"(ZeRO-{stage}, {'CPU offload' if offload else 'no offload'}). "
        "`axolotl fetch deepspeed_configs` puts it in the directory you run axolotl from"
    ]


# Axolotl plugins whose Python package is a separate install: module prefix -> (import
# name, install command). Axolotl imports them when training starts, not when it checks.
PLUGIN_PACKAGES: dict[str, tuple[str, str]] = {
    "axolotl.integrations.liger": ("liger_kernel", "pip install liger-kernel"),
    "axolotl.integrations.cut_cross_entropy": (
        "cut_cross_entropy",
        'pip install "cut-cross-entropy[transformers] @ git+https://github.com/axolotl-ai-cloud/ml-cross-entropy.git"',
    ),
}


def missing_plugins(data: Mapping[str, Any]) -> list[str]:
    """The config's plugins whose package is not importable here, each with its install."""
    import importlib.util

    plugins = data.get("plugins") or ()
    if isinstance(plugins, str):
        plugins = (plugins,)
    out: list[str] = []
    for plugin in plugins:
        for prefix, (package, install) in PLUGIN_PACKAGES.items():
            if not isinstance(plugin, str) or not plugin.startswith(prefix):
                continue
            try:
                found = importlib.util.find_spec(package) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(f"plugins: {plugin} needs {package}, not installed here ({install})")
    return out
