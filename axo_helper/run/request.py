"""What `run` is asked for (RunRequest), what each training try did (Attempt), the result."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from axo_helper.launch import DEFAULT_MASTER_PORT
from axo_helper.progress import ProgressState
from axo_helper.rundir import OUTPUT

if TYPE_CHECKING:
    from axo_helper.core import PlanRequest
    from axo_helper.specs import Hardware

DEFAULT_MAX_ATTEMPTS = 3

Status = Literal[
    "dry-run", "prepared", "preprocessing", "running", "finished", "failed", "interrupted"
]


@dataclass(frozen=True)
class RunRequest:
    """Everything `axo-helper run` (and the demo) can ask for.

    `hardware`: `gpu` (or `plan.gpu`) already resolved by the caller, so the run
    does not detect the GPU again.
    """

    plan: PlanRequest | None = None  # plan a run (mutually exclusive with config, resume)
    config: Path | None = None  # --config FILE
    resume: Path | None = None  # --resume RUN_DIR
    output_dir: Path | None = None
    force: bool = False
    dry_run: bool = False
    max_steps: int | None = None
    fit: bool = False
    gpu: str = "auto"  # --config and --resume: the hardware to check the fit against
    hardware: Hardware | None = None
    nodes: int = 1
    node_rank: int | None = None
    master_addr: str | None = None
    master_port: int = DEFAULT_MASTER_PORT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    export: bool = True
    overrides: Mapping[str, Any] = field(default_factory=dict)  # extra top-level keys
    python: str = sys.executable
    quiet: bool = False


@dataclass
class Attempt:
    """One training process: its batch, its command and how it ended."""

    number: int
    micro_batch_size: int
    gradient_accumulation_steps: int
    gradient_checkpointing: bool
    resumed_from: str | None
    command: str
    exit_code: int | None = None
    outcome: str = "running"  # finished | oom | failed | interrupted
    reason: str | None = None
    seconds: float | None = None
    memory_total_gib: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["effective_batch_per_gpu"] = self.micro_batch_size * self.gradient_accumulation_steps
        # Readers of plan.json find the estimate as memory.total_gib (rundir.predicted_gib).
        total = d.pop("memory_total_gib")
        d["memory"] = {"total_gib": total} if total is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Attempt:
        """The inverse of as_dict, for the attempts of a resumed run's plan.json."""
        fields: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__}
        mem = d.get("memory")
        fields["memory_total_gib"] = mem.get("total_gib") if isinstance(mem, Mapping) else None
        return cls(**fields)


@dataclass
class RunResult:
    """What `run` did; `to_json` is `run --json`."""

    run_dir: Path
    config_path: Path
    status: Status
    exit_code: int
    commands: list[str]
    attempts: list[Attempt] = field(default_factory=list)
    progress: ProgressState | None = None
    export: Any = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "config": str(self.config_path),
            "status": self.status,
            "exit_code": self.exit_code,
            "commands": self.commands,
            "attempts": [a.as_dict() for a in self.attempts],
            "progress": self.progress.as_dict() if self.progress else None,
            "output_dir": str(self.run_dir / OUTPUT),
            "export": _jsonable(self.export),
            "message": self.message,
            "warnings": self.warnings,
        }


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    try:
        json.dumps(value)
        return value
    except TypeError:
        if hasattr(value, "__dict__"):
            return {k: _jsonable(v) for k, v in vars(value).items()}
        return str(value)
