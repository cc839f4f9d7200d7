"""What `run` puts into plan.json, besides status and attempts (see docs/run.md).

The file itself (its name, key order, reading it back) belongs to axo_helper/rundir.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo_helper import __version__
from axo_helper import versions as versions_mod
from axo_helper.launch import LaunchSpec, format_command
from axo_helper.rundir import now_iso

if TYPE_CHECKING:
    from axo_helper.specs import Hardware, Plan
    from axo_helper.validate import MemoryCheck


def plan_entries(plan: Plan) -> dict[str, Any]:
    """A planned run: the plan's --json object, its estimate and the inputs."""
    assert plan.data is not None  # run plans with data
    as_json = plan.to_json()
    return {
        "source": "plan",
        "plan": as_json,
        "memory": as_json["memory"],
        "inputs": {
            "model": plan.model.name,
            "data": str(Path(plan.data.path).resolve()),
            # The model card's row count (rundir.data_rows): the plan's object has none.
            "data_rows": plan.data.rows,
        },
    }


def config_entries(
    path: Path, cfg: Mapping[str, Any], memory: MemoryCheck | None, notes: list[str]
) -> dict[str, Any]:
    """A --config run: the user's file, its estimate and every change axo-helper made."""
    return {
        "source": "config",
        "config_source": str(path.resolve()),
        "plan": None,
        "memory": memory.as_dict() if memory else None,
        "changes": notes,
        "inputs": {
            "model": cfg.get("base_model"),
            "data": [d.get("path") for d in cfg.get("datasets") or [] if isinstance(d, Mapping)],
        },
    }


def launch_entries(
    run_dir: Path,
    config_path: Path,
    hardware: Hardware | None,
    preprocess: LaunchSpec,
    train: list[LaunchSpec],
    node_rank: int | None,
) -> dict[str, Any]:
    """Where the run is, what it runs on, with which versions and which commands."""
    return {
        "axo_helper_version": __version__,
        "created": now_iso(),
        "run_dir": str(run_dir.resolve()),
        "config": str(config_path),
        "hardware": hardware.describe() if hardware is not None else None,
        "versions": versions_mod.versions(),
        "commands": {
            "preprocess": format_command(preprocess),
            "train": [format_command(s) for s in train],
        },
        "node_rank": node_rank,
    }
