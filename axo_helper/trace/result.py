"""`trace_setup(raw, setup) -> TraceResult`: the traced step beside the estimate.

Components, in bytes, compared term by term with memory.tensor_terms:
  weights      parameters and buffers before the step (quantized ones at their real size)
  state        gradients (after backward) + optimizer states (after the step)
  logits       the step's tensors at its peak that belong to the head and the loss
  activations  the rest of the step's tensors at that peak
  step         logits + activations: the forward/backward peak above weights and grads
  allocated    the steady-state peak: a later step runs forward/backward with the
               optimizer states alive, so max(fwd/bwd peak + states, optimizer-step peak)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from axo_helper.specs import GIB, TrainSetup

COMPONENTS = ("weights", "state", "activations", "logits", "step", "allocated")
# The head's and the loss's tensors, and a tied head's gradient sum at the very end.
_LOSS_SCOPES = ("lm_head", "loss", "backward:loss", "backward:embeddings")
_STEP_PHASES = ("forward", "loss", "backward", "backward:blocks", "backward:embeddings")


@dataclass(frozen=True)
class TraceResult:
    traced: dict[str, float]  # component -> bytes
    estimated: dict[str, float]
    phase_peak: dict[str, float]  # phase -> live bytes at its peak (weights included)
    # phase -> (the step's own bytes at their peak in that phase, the loss/head part of it)
    phase_step: dict[str, tuple[float, float]]
    by_module: dict[str, float]  # the step's own bytes at the peak, by module scope
    peak_phase: str
    notes: tuple[str, ...] = ()
    analytic: tuple[str, ...] = ()  # parts counted by formula, not run
    seconds: float = 0.0
    layers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def error(self, component: str) -> float | None:
        """(estimate - trace) / trace; None when the trace has nothing there."""
        t = self.traced.get(component, 0.0)
        if t <= 0:
            return None
        return (self.estimated.get(component, 0.0) - t) / t

    def as_dict(self) -> dict[str, Any]:
        def gib(d: Mapping[str, float]) -> dict[str, float]:
            return {k: round(v / GIB, 4) for k, v in d.items()}

        return {
            "traced_gib": gib(self.traced),
            "estimated_gib": gib(self.estimated),
            "error": {
                c: (None if (e := self.error(c)) is None else round(e, 4)) for c in COMPONENTS
            },
            "phase_peak_gib": gib(self.phase_peak),
            "step_peak_gib": {k: round(v[0] / GIB, 4) for k, v in self.phase_step.items()},
            "peak_phase": self.peak_phase,
            "by_module_gib": gib(dict(sorted(self.by_module.items(), key=lambda kv: -kv[1]))),
            "layers": self.layers,
            "seconds": round(self.seconds, 1),
            "notes": list(self.notes),
            "analytic": list(self.analytic),
        }


def trace_setup(
    raw: Mapping[str, Any], setup: TrainSetup, *, hold_outputs: bool = False
) -> TraceResult:
    """Build the model of `setup` from config.json fields `raw` on fake tensors, run one
    training step, and compare what was live with the estimate's tensor terms."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from axo_helper.trace.build import build
    from axo_helper.trace.counter import StorageCounter
    from axo_helper.trace.step import optimizer_runs, run_step

    start = time.perf_counter()
    fake_mode = FakeTensorMode(allow_non_fake_inputs=False)
    built = build(raw, setup, fake_mode)
    counter = StorageCounter()
    run_step(built, setup, counter, fake_mode, hold_outputs=hold_outputs)
    notes = list(built.notes)
    analytic = [n for n in notes if "analytic" in n]
    traced = _traced(counter)
    if not optimizer_runs(setup.optimizer):
        traced["state"] += _analytic_states(setup)
        analytic.append(
            f"optimizer {setup.optimizer}: states counted by formula (bitsandbytes/paged "
            "optimizers do not run on fake tensors)"
        )
        traced["allocated"] += _analytic_states(setup)
    return TraceResult(
        traced={c: traced[c] for c in COMPONENTS},
        estimated=estimated(setup),
        phase_peak={k: float(v) for k, v in counter.phase_peak.items() if k != "setup"},
        phase_step={
            p: (float(counter.step_peak[p]), _loss_part(counter, p))
            for p in _STEP_PHASES
            if p in counter.step_peak
        },
        by_module={
            k: float(v)
            for k, v in counter.snapshot(step_phase(counter), step=True).by_scope.items()
        },
        peak_phase=step_phase(counter),
        notes=tuple(notes),
        analytic=tuple(analytic),
        seconds=time.perf_counter() - start,
        layers=int(raw.get("num_hidden_layers") or 0),
    )


def step_phase(counter: Any) -> str:
    """The phase in which the step's own bytes peaked."""
    return max(_STEP_PHASES, key=lambda p: counter.step_peak.get(p, 0))


def _loss_part(counter: Any, phase: str) -> float:
    at_peak = counter.snapshot(phase, step=True)
    return float(sum(v for k, v in at_peak.by_scope.items() if k in _LOSS_SCOPES))


def _traced(counter: Any) -> dict[str, float]:
    phase = step_phase(counter)
    weights = float(counter.marks.get("weight", 0) + counter.marks.get("trainable_weight", 0))
    logits = _loss_part(counter, phase)
    step = float(counter.step_peak.get(phase, 0))
    grads = float(counter.marks.get("gradient", 0))
    states = float(counter.marks.get("optimizer", 0))
    # Steady state under gradient accumulation: weights, gradients and optimizer states
    # are all alive while a later micro-step runs forward and backward.
    resident = weights + grads + states
    return {
        "weights": weights,
        "state": grads + states,
        "logits": logits,
        "activations": step - logits,
        "step": step,
        "allocated": max(resident + step, float(counter.phase_peak.get("optimizer", 0))),
    }


def _analytic_states(setup: TrainSetup) -> float:
    from axo_helper.memory.optimizers import optimizer_spec
    from axo_helper.memory.params import trainable_params

    spec, _ = optimizer_spec(setup.optimizer)
    per = spec.states * (spec.state_bytes if spec.state_bytes is not None else 4)
    return float(trainable_params(setup) * per)


def estimated(setup: TrainSetup) -> dict[str, float]:
    """The estimate's tensor terms of `setup` under the trace's component names."""
    from axo_helper.memory.estimate import tensor_terms

    t = tensor_terms(setup)
    return {
        "weights": t.weights,
        "state": t.state,
        "activations": t.activations,
        "logits": t.logits,
        "step": t.step,
        "allocated": t.allocated,
    }
