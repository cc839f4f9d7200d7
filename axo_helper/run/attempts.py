"""Training attempts: run `axolotl train`, and after a CUDA OOM retry with a smaller micro batch.

Each retry keeps micro batch x accumulation (the same effective batch) and resumes
from the newest checkpoint; each attempt is one entry of plan.json `attempts`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo_helper import launch as launch_mod
from axo_helper.config.read import batch_of
from axo_helper.errors import EXIT_FAILURE, EXIT_INTERRUPTED
from axo_helper.fit import smaller_batch
from axo_helper.launch import LaunchTarget
from axo_helper.run.configedit import set_top_level
from axo_helper.run.context import RunContext
from axo_helper.run.logscan import error_summary, line_is_oom, looks_like_oom
from axo_helper.run.request import Attempt, RunResult
from axo_helper.rundir import latest_checkpoint
from axo_helper.shell import command


@dataclass
class _Config:
    """The config as the next attempt runs it (text and parsed, kept in step)."""

    text: str
    values: dict[str, Any]
    path: Path

    def set(self, changes: dict[str, Any], note: str) -> None:
        self.text = set_top_level(self.text, changes, note)
        self.values.update(changes)
        self.path.write_text(self.text, encoding="utf-8")


def train(
    run: RunContext,
    target: LaunchTarget,
    cfg: dict[str, Any],
    text: str,
    result: RunResult,
    *,
    resume_from: Path | None,
) -> RunResult:
    """Train, retrying after CUDA OOM with a smaller micro batch (same effective batch)."""
    config = _Config(text, cfg, run.dir.config)
    output_dir = Path(str(cfg.get("output_dir") or run.dir.output))
    first = len(run.attempts) + 1
    last = first + run.req.max_attempts - 1
    for number in range(first, last + 1):
        if resume_from is not None:
            config.set(
                {"resume_from_checkpoint": str(resume_from.resolve())},
                f"set by axo-helper run (attempt {number})",
            )
        attempt, spec = _begin(run, target, config, number, resume_from)
        rc, lines, oom = _run_attempt(run, spec, attempt)
        if run.display is not None:
            result.progress = run.display.state
        if launch_mod.interrupted():
            return _interrupted(run, attempt, result)
        if rc == 0:
            return _finished(run, attempt, result)
        if not oom and not looks_like_oom(lines):
            return _failed(run, attempt, result, rc, lines)
        new, what = _after_oom(attempt, config.values)
        attempt.outcome = "oom"
        attempt.reason = "CUDA out of memory" + (f"; next: {what}" if what else "")
        if not new or number == last:
            return _out_of_memory(run, result, rc)
        config.set(new, f"lowered by axo-helper after CUDA OOM (attempt {number})")
        resume_from = latest_checkpoint(output_dir)
        run.save_record(status="running")
        run.warn(
            f"CUDA out of memory (attempt {number}); retrying with {what}"
            + (f", resuming from {resume_from.name}" if resume_from else "")
        )
    raise AssertionError("unreachable: the loop returns")  # pragma: no cover


def _begin(
    run: RunContext,
    target: LaunchTarget,
    config: _Config,
    number: int,
    resume_from: Path | None,
) -> tuple[Attempt, launch_mod.LaunchSpec]:
    """Record the attempt (batch, command, estimate) in plan.json before it starts."""
    cfg = config.values
    mb, ga = batch_of(cfg)
    spec = run.launch_specs(target, config.path.resolve())[0]
    attempt = Attempt(
        number=number,
        micro_batch_size=mb,
        gradient_accumulation_steps=ga,
        gradient_checkpointing=bool(cfg.get("gradient_checkpointing")),
        resumed_from=str(resume_from) if resume_from else None,
        command=launch_mod.format_command(spec),
        memory_total_gib=run.estimate_gib(cfg),
    )
    run.attempts.append(attempt)
    if attempt.memory_total_gib is not None:
        run.record["memory"] = {
            **(run.record.get("memory") or {}),
            "total_gib": round(attempt.memory_total_gib, 2),
        }
    run.save_record(status="running")
    return attempt, spec


def _run_attempt(
    run: RunContext, spec: launch_mod.LaunchSpec, attempt: Attempt
) -> tuple[int, list[str], bool]:
    """(exit code, the output's last lines, whether any line showed a CUDA OOM)."""
    tail: deque[str] = deque(maxlen=400)
    oom_seen = False

    def watch(line: str) -> None:
        nonlocal oom_seen
        # The whole output, not only the tail: the OOM can scroll out of it.
        if not oom_seen and line_is_oom(line):
            oom_seen = True

    number = attempt.number
    phase = "train" if number == 1 else f"training, attempt {number}"
    started = time.monotonic()
    rc = run.run_child(spec, phase, tail, watch)
    attempt.seconds = round(time.monotonic() - started, 1)
    attempt.exit_code = rc
    return rc, list(tail), oom_seen


def _interrupted(run: RunContext, attempt: Attempt, result: RunResult) -> RunResult:
    attempt.outcome = "interrupted"
    attempt.reason = "Ctrl-C: Axolotl saved the model to output_dir and stopped"
    run.save_record(status="interrupted")
    result.status, result.exit_code = "interrupted", EXIT_INTERRUPTED
    result.message = "interrupted; continue with: " + command(
        "axo-helper", "run", "--resume", run.run_dir
    )
    return result


def _finished(run: RunContext, attempt: Attempt, result: RunResult) -> RunResult:
    attempt.outcome = "finished"
    run.save_record(status="finished")
    result.status, result.exit_code = "finished", 0
    result.export = _export(run)
    return result


def _failed(
    run: RunContext, attempt: Attempt, result: RunResult, rc: int, lines: list[str]
) -> RunResult:
    attempt.outcome = "failed"
    attempt.reason = error_summary(lines) or f"exit code {rc}"
    run.save_record(status="failed")
    result.status, result.exit_code = "failed", rc if rc > 0 else EXIT_FAILURE
    result.message = f"Axolotl failed: {attempt.reason} (full output: {run.dir.train_log})"
    return result


def _out_of_memory(run: RunContext, result: RunResult, rc: int) -> RunResult:
    run.save_record(status="failed")
    result.status, result.exit_code = "failed", rc if rc > 0 else EXIT_FAILURE
    tried = ", ".join(f"{a.micro_batch_size}x{a.gradient_accumulation_steps}" for a in run.attempts)
    result.message = (
        f"CUDA out of memory in every attempt (micro batch x accumulation tried: {tried})"
    )
    return result


def _after_oom(attempt: Attempt, cfg: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The config change for the next attempt after an OOM, and how to say it ("" if none)."""
    mb, ga = attempt.micro_batch_size, attempt.gradient_accumulation_steps
    nxt = smaller_batch(mb, ga)
    if nxt is not None:
        new: dict[str, Any] = {"micro_batch_size": nxt[0]}
        if "gradient_accumulation_steps" in cfg or "batch_size" not in cfg:
            new["gradient_accumulation_steps"] = nxt[1]
        what = (
            f"micro_batch_size {mb} -> {nxt[0]}, gradient_accumulation_steps {ga} -> {nxt[1]}"
            f" (same {mb * ga} samples per GPU per step)"
        )
        return new, what
    if not cfg.get("gradient_checkpointing"):
        new = {
            "gradient_checkpointing": True,
            "gradient_checkpointing_kwargs": {"use_reentrant": False},
        }
        return new, "gradient_checkpointing on (micro_batch_size is already 1)"
    return {}, ""


def _export(run: RunContext) -> Any:
    """The export step (axo_helper.export, when installed); its failure is reported, not raised."""
    import importlib
    import importlib.util

    from axo_helper.errors import AxoHelperError

    if not run.req.export or importlib.util.find_spec("axo_helper.export") is None:
        return None
    export_mod = importlib.import_module("axo_helper.export")
    run.say("exporting adapter/ and merged/ ...")
    try:
        # The merge loads torch/transformers in this process: their noise goes to train.log.
        with launch_mod.captured_output(run.dir.train_log):
            # force: a resumed run re-exports the model it just trained.
            return export_mod.export_run(run.run_dir, force=True)
    except AxoHelperError as exc:
        run.warn(f"training finished but the export failed: {exc}")
        return {"error": str(exc)}
