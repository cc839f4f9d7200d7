"""One `run` invocation's state: the request, the run directory, the record, the messages.

The hardware is resolved and the base model inspected once per command (by the
planner, by validation or on first need) and kept here; everything after reads them.
"""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo_helper import launch as launch_mod
from axo_helper.errors import OutputExistsError
from axo_helper.launch import LaunchSpec, LaunchTarget
from axo_helper.progress import ProgressDisplay
from axo_helper.run.request import Attempt, RunRequest
from axo_helper.rundir import RunDir, now_iso
from axo_helper.shell import command

if TYPE_CHECKING:
    from axo_helper.specs import Hardware, ModelSpec

_PHASES = {
    "preprocess": "preprocessing the dataset (axolotl preprocess) ...",
    "train": "training (axolotl train) ...",
}


class RunContext:
    """The state every step of one run reads and adds to; owns plan.json's contents."""

    def __init__(self, req: RunRequest, display: ProgressDisplay | None):
        self.req = req
        self.display = display
        self.dir = RunDir(Path())
        self.record: dict[str, Any] = {}
        self.attempts: list[Attempt] = []
        self.warnings: list[str] = []
        self.hardware: Hardware | None = req.hardware
        self.model_spec: ModelSpec | None = None
        self._model_looked_up = False

    @property
    def run_dir(self) -> Path:
        return self.dir.path

    # ------------------------------------------------------------------ messages
    def say(self, message: str) -> None:
        if not self.req.quiet:
            from axo_helper.output import info

            info(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if not self.req.quiet:
            from axo_helper.output import warn

            warn(message)

    # ------------------------------------------------------------------ plan.json
    def save_record(self, **updates: Any) -> None:
        self.record.update(updates)
        self.record["attempts"] = [a.as_dict() for a in self.attempts]
        self.record["updated"] = now_iso()
        self.dir.write_plan_record(self.record)

    # ------------------------------------------------------------------ run directory
    def claim_run_dir(self, run_dir: Path) -> None:
        """Refuse an existing run directory unless --force (or a dry run's leftovers)."""
        self.dir = RunDir(run_dir)
        if not run_dir.exists():
            return
        if not run_dir.is_dir():
            raise OutputExistsError(f"{run_dir} exists and is not a directory")
        if not any(run_dir.iterdir()) or self.dir.holds_only_a_dry_run():
            return
        if not self.req.force:
            raise OutputExistsError(
                f"{run_dir} already holds a run",
                hint=f"continue it with {command('axo-helper', 'run', '--resume', run_dir)}, "
                "pick another --output-dir, "
                "or pass --force to replace it",
            )

    def reset_run_dir(self) -> None:
        """Called only after the new config rendered and validated: then --force may clear."""
        if self.run_dir.exists() and any(self.run_dir.iterdir()):
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ estimates
    def model_for(self, cfg: Mapping[str, Any]) -> ModelSpec | None:
        """The base model's spec, inspected at most once per run (None when it cannot be)."""
        if self.model_spec is None and not self._model_looked_up:
            self._model_looked_up = True
            base = cfg.get("base_model")
            if isinstance(base, str) and base:
                from axo_helper import model as model_mod

                try:
                    self.model_spec = model_mod.inspect(base)
                except Exception:  # only estimates need it; they are bookkeeping
                    self.model_spec = None
        return self.model_spec

    def estimate_gib(self, cfg: Mapping[str, Any]) -> float | None:
        """The predicted peak for cfg as it will run now (recorded with each attempt)."""
        if self.hardware is None or getattr(self.hardware, "is_cpu", True):
            return None
        model = self.model_for(cfg)
        if model is None:  # memory_check would only fail the same way
            return None
        try:
            from axo_helper.validate import memory_check

            return float(memory_check(cfg, self.hardware, model=model).breakdown.total_gib)
        except Exception:  # an estimate is bookkeeping here; never fail a run over it
            return None

    # ------------------------------------------------------------------ running
    def launch_specs(self, target: LaunchTarget, config_path: Path) -> list[LaunchSpec]:
        return launch_mod.build_launch(
            target,
            config_path,
            node_rank=self.req.node_rank,
            master_addr=self.req.master_addr,
            master_port=self.req.master_port,
            python=self.req.python,
        )

    def run_child(
        self,
        spec: LaunchSpec,
        phase: str,
        tail: deque[str],
        watch: Callable[[str], None] | None = None,
    ) -> int:
        """Run one Axolotl process into train.log, feeding its lines to tail/watch/display."""
        header = f"\n=== axo-helper {phase}: {launch_mod.format_command(spec)}\n"
        display = self.display

        def on_line(line: str) -> None:
            tail.append(line)
            if watch is not None:
                watch(line)
            if display is not None:
                display.on_line(line)

        if display is not None:
            display.watch_metrics(self.dir.metrics_stream)
            display.start(_PHASES.get(phase, f"{phase} ..."))
        try:
            return launch_mod.run_launch(spec, self.dir.train_log, on_line, header=header)
        finally:
            if display is not None:
                display.stop()
