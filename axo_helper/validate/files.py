"""Files a config points to that must exist before training: the DeepSpeed JSON."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from axo_helper.config.read import distributed_of
from axo_helper.errors import ConfigError
from axo_helper.validate.lines import LineMap
from axo_helper.validate.report import Issue


def file_errors(
    data: Mapping[str, Any], lines: LineMap, config_dir: str | Path | None
) -> list[Issue]:
    """Files the config points to that must exist before training: the DeepSpeed JSON."""
    if not isinstance(data.get("deepspeed"), str) or not data["deepspeed"]:
        return []
    try:
        distributed_of(data, 1, Path(config_dir) if config_dir else None)
    except ConfigError as exc:
        return [Issue("deepspeed", lines.line(("deepspeed",)), exc.message, "file")]
    return []
