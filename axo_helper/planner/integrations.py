"""Optional integrations the planner may plan with (Liger's fused cross-entropy): when
they apply, and what `plan` says when one that would help is not installed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from axo_helper.errors import PlanError
from axo_helper.planner.policy import Policy
from axo_helper.specs import METHODS, DataSpec, Hardware, ModelSpec, Plan

# planner.decide.plan, passed in (decide imports this module)
Planner = Callable[..., Plan]


def fused_ce_allowed(hardware: Hardware, model: ModelSpec, policy: Policy) -> bool:
    gpu = hardware.gpu
    return gpu is not None and gpu.cuda and policy.fused_ce.supports(model.model_type)


def without_integration(
    plan: Planner,
    hardware: Hardware,
    model: ModelSpec,
    data: DataSpec | None,
    policy: Policy,
    kwargs: dict[str, Any],
) -> Plan:
    """The plan without fused cross-entropy (not installed), and a warning naming the
    better plan it would allow, with the install command."""
    off = replace(policy, fused_ce=replace(policy.fused_ce, enabled=False))
    installed = frozenset({policy.fused_ce.package})
    try:
        with_it: Plan | None = plan(hardware, model, data, policy, installed=installed, **kwargs)
    except PlanError:
        with_it = None
    try:
        without = plan(hardware, model, data, off, **kwargs)
    except PlanError as exc:
        if with_it is None:
            raise
        lighter = f"{policy.fused_ce.install} (fused cross-entropy) makes it fit: {_brief(with_it)}"
        raise PlanError(
            exc.message, hint=f"{exc.hint}; or {lighter}" if exc.hint else lighter
        ) from None
    if with_it is not None and _better(with_it, without, policy):
        note = (
            f"with {policy.fused_ce.install} (fused cross-entropy, never the full logits) "
            f"the plan would be {_brief(with_it)} instead of {_brief(without)}"
        )
        return replace(without, warnings=(*without.warnings, note))
    return without


def _brief(p: Plan) -> str:
    time = f", {p.seconds_per_epoch / 60:.1f} min per epoch" if p.seconds_per_epoch else ""
    mem = f"{p.memory.total_gib:.1f} GiB"
    return f"{p.method} at micro batch {p.setup.micro_batch_size} ({mem}{time})"


def _better(a: Plan, b: Plan, policy: Policy) -> bool:
    """a is a better plan than b: a method the policy prefers, or the same one faster."""
    if a.method != b.method:
        order = [*policy.preference, *(m for m in METHODS if m not in policy.preference)]
        return order.index(a.method) < order.index(b.method)
    if a.seconds_per_epoch and b.seconds_per_epoch:
        return a.seconds_per_epoch < (1 - policy.speed.tie_fraction) * b.seconds_per_epoch
    return a.setup.micro_batch_size > b.setup.micro_batch_size
