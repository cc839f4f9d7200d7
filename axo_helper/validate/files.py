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
