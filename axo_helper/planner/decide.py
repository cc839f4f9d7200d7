"""plan(): hardware + model + data + policy -> the Plan that fits, with every reason.

The steps, each in its own module: device (budget, precision, attention), search
(sequence length x method x ladder variant), explain (reasons, rejected, warnings),
timing (time model), settings (the other config values). Pure: no I/O, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from axo_helper.chat import decide as decide_chat
from axo_helper.errors import PlanError
from axo_helper.planner import explain, freeze
from axo_helper.planner.choose import choose_for_method, lightest
from axo_helper.planner.device import device_facts
from axo_helper.planner.integrations import fused_ce_allowed, without_integration
from axo_helper.planner.lengths import row_fate, shortest_allowed
from axo_helper.planner.nothing_fits import nothing_fits
from axo_helper.planner.overrides import check_overrides
from axo_helper.planner.packing import Packing
from axo_helper.planner.packing import choose as choose_packing
from axo_helper.planner.plan_warnings import plan_warnings
from axo_helper.planner.policy import Policy
from axo_helper.planner.search import (
    Choice,
    Search,
    VariantFit,
    candidate_methods,
    choose_seq_len,
    gib,
    shrinking,
)
from axo_helper.planner.settings import decide_settings
from axo_helper.planner.timing import timing
from axo_helper.specs import (
    DataSpec,
    Distributed,
    Hardware,
    Method,
    ModelSpec,
    Plan,
    Rejected,
)

if TYPE_CHECKING:
    from axo_helper.calibration import Calibration


@dataclass(frozen=True)
class _Lengths:
    base: int  # the length the data (or --seq-len, or the policy) asks for
    why: str
    explicit: bool
    tried: list[int]  # base, then shorter ones when the policy may shrink to fit
    floor: int  # the shortest length that keeps policy.min_rows_kept of the rows
    keep: float  # policy.min_rows_kept


def plan(
    hardware: Hardware,
    model: ModelSpec,
    data: DataSpec | None,
    policy: Policy,
    *,
    method: Method | None = None,
    seq_len: int | None = None,
    micro_batch: int | None = None,
    epochs: int | None = None,
    distributed: str | None = None,
    calibration: Calibration | None = None,
    cpu_memory_gib: float | None = None,
    freeze_layers: float | None = None,
    installed: frozenset[str] = frozenset(),
    host_memory_gib: float | None = None,
) -> Plan:
    """Decide a training setup that fits `hardware` (see the package docstring).

    `calibration`: measured corrections read beforehand (calibration.Calibration).
    `cpu_memory_gib`: on CPU hardware, the host memory to plan against (the caller
    reads it; this function does no I/O). Raises PlanError when nothing fits and
    UsageError for contradictory overrides. `freeze_layers`: blocks (or a fraction of
    them) a partial fine-tune trains; it implies method "freeze". `installed`: the
    import names of optional integrations the caller found (policy
    `fused_cross_entropy.package`); an integration that is not installed is not
    planned with, and a warning names the plan it would allow. `host_memory_gib`: the
    node's host memory for CPU offload when the caller read it (None: the policy's).
    """
    method = freeze.check_override(method, freeze_layers)
    check_overrides(hardware, model, policy, method, seq_len, micro_batch, epochs, distributed)
    fused = fused_ce_allowed(hardware, model, policy)
    if fused and policy.fused_ce.package not in installed:
        kwargs: dict[str, Any] = dict(
            method=method,
            seq_len=seq_len,
            micro_batch=micro_batch,
            epochs=epochs,
            distributed=distributed,
            calibration=calibration,
            cpu_memory_gib=cpu_memory_gib,
            freeze_layers=freeze_layers,
            host_memory_gib=host_memory_gib,
        )
        return without_integration(plan, hardware, model, data, policy, kwargs)
    device = device_facts(hardware, policy, cpu_memory_gib)
    chat = decide_chat(model, data) if data is not None and data.type == "chat_template" else None
    search = Search(
        hardware,
        model,
        policy,
        budget=device.budget,
        precision=device.precision,
        attn=device.attn,
        distributed=cast(Distributed | None, distributed),
        calibration=calibration,
        chat=chat,
        data=data,
        fused_ce=fused,
        host_memory_gib=host_memory_gib,
    )
    search.freeze_layers = freeze_layers
    lengths = _lengths(model, data, policy, seq_len)
    methods = candidate_methods(hardware, policy, method)
    warnings = [*hardware.warnings, *device.warnings]
    try:
        choice, rejected = _search(search, data, lengths, methods, method, micro_batch)
    except PlanError:
        if not model.is_moe or method == "full":
            raise
        # The experts' adapters are what does not fit: plan attention-only LoRA and say so
        # (plan, YAML comment on the targets) rather than refuse a job that can train.
        search.adapt_experts = False
        choice, rejected = _search(search, data, lengths, methods, method, micro_batch)
        warnings.append(
            "the MoE experts are not adapted: with their adapters nothing fits here, so LoRA "
            "trains the attention layers only (a larger GPU or more GPUs adapt them too)"
        )
    return _assemble(
        search,
        data,
        device.reasons,
        warnings,
        lengths,
        choice,
        rejected,
        method is None,
        micro_batch,
        epochs,
    )


def _lengths(
    model: ModelSpec, data: DataSpec | None, policy: Policy, seq_len: int | None
) -> _Lengths:
    """The lengths to try: the data's, then shorter ones down to the policy's floor."""
    base, why, explicit = choose_seq_len(model, data, policy, seq_len)
    floor = min(shortest_allowed(data, policy), model.max_position_embeddings)
    if not explicit and floor > base:
        base = floor
        why += f"; raised to {floor:,} to keep {policy.min_rows_kept:.0%} of the rows"
    tried = [base]
    if not explicit and policy.seq_len_shrink_to_fit:
        tried = list(shrinking(base, policy, floor))
    return _Lengths(base, why, explicit, tried, floor, policy.min_rows_kept)


def _search(
    search: Search,
    data: DataSpec | None,
    lengths: _Lengths,
    methods: list[Method],
    forced: Method | None,
    micro_batch: int | None,
) -> tuple[Choice, list[Rejected]]:
    """At each length, the methods in order; the first that fits wins."""
    rejected: list[Rejected] = []
    seqs = lengths.tried
    for seq in seqs:
        pk = _packing(search, data, seq, lengths.explicit)
        choice, tried = _first_method(
            search, methods, pk.seq_len, pk.on, forced is None, micro_batch
        )
        if choice is not None:
            rejected.extend(explain.rejected_methods(search, tried, choice, methods, search.budget))
            return choice, rejected
        # Nothing at this length: say so once, with the lightest method's need.
        fits_here = [f for _, f, why in tried if f is not None and why == "nofit"]
        if fits_here and seq != seqs[-1]:
            need = min(fits_here, key=lambda f: f.at_one.total_gib)
            rejected.append(
                Rejected(
                    f"sequence_len {seq}",
                    round(need.at_one.total_gib, 2),
                    f"nothing fits: the lightest setup needs {gib(need.at_one.total_gib)} "
                    f"> {gib(search.budget)} budget",
                )
            )
    raise nothing_fits(search, seqs, methods, micro_batch, lengths.explicit, forced, data=data)


def _first_method(
    search: Search,
    methods: list[Method],
    seq: int,
    packing: bool,
    auto: bool,
    micro_batch: int | None,
) -> tuple[Choice | None, list[explain.Tried]]:
    policy, model = search.policy, search.model
    tried: list[tuple[Method, VariantFit | None, str]] = []
    for m in methods:
        if auto and m == "full" and model.total_params > policy.full_max_params_b * 1e9:
            tried.append((m, None, "size"))
            continue
        if auto and m == "freeze" and freeze.too_large(policy, model):
            tried.append((m, None, "size"))
            continue
        c = choose_for_method(search, m, seq, packing, micro_batch)
        if c is None:
            tried.append((m, lightest(search, m, seq, packing), "nofit"))
            continue
        if (
            auto
            and m == "full"
            and policy.full_needs_default_optimizer
            and (c.fit.variant.optimizer != "default" or c.fit.variant.offload)
        ):
            tried.append((m, c.fit, "squeezed"))
            continue
        return c, tried
    return None, tried


def _assemble(
    search: Search,
    data: DataSpec | None,
    reasons: dict[str, str],
    warnings: list[str],
    lengths: _Lengths,
    choice: Choice,
    rejected: list[Rejected],
    auto_method: bool,
    micro_batch: int | None,
    epochs: int | None,
) -> Plan:
    """The Plan of the chosen setup, with its reasons, time and warnings."""
    policy, model, hardware = search.policy, search.model, search.hardware
    fit = choice.fit
    assert fit.memory is not None
    setup = search.setup(
        choice.method, choice.seq_len, choice.packing, fit.variant, choice.micro_batch
    )
    mem = fit.memory
    calibrated_from = search.calibration.runs_for(setup) if search.calibration else 0
    rejected = [*rejected, *explain.rejected_variants(search, choice)]
    ga = setup.gradient_accumulation_steps or 1
    reasons = {
        **reasons,
        **_choice_reasons(search, data, lengths, choice, rejected, auto_method, micro_batch, ga),
    }
    if setup.method == "freeze":
        reasons["method"] += f"; {freeze.describe(setup)}"
    lora = policy.lora.get(choice.method)
    lr = policy.learning_rate(choice.method, model.total_params)
    reasons["learning_rate"] = (
        f"{lr:g}: the policy's rate for {choice.method} at {model.total_params / 1e9:.1f}B parameters"
    )
    num_epochs, reasons["num_epochs"] = _epochs(data, policy, epochs)
    fate = row_fate(data, setup.sequence_len) if data is not None and data.rows > 0 else None
    time = timing(hardware, policy, setup, fate, ga, search.calibration)
    warnings = [
        *warnings,
        *plan_warnings(data, model, setup, mem, search.budget, fate),
    ]
    return Plan(
        hardware=hardware,
        model=model,
        data=data,
        setup=setup,
        memory=mem,
        budget_gib=search.budget,
        gradient_accumulation_steps=ga,
        lora_alpha=lora.alpha if lora else None,
        learning_rate=lr,
        num_epochs=num_epochs,
        lr_scheduler=policy.lr_scheduler,
        warmup_ratio=policy.warmup_ratio,
        rejected=tuple(rejected),
        warnings=tuple(dict.fromkeys(warnings)),
        reasons=reasons,
        steps_per_epoch=time.steps_per_epoch,
        seconds_per_epoch=time.seconds_per_epoch,
        tokens_per_epoch=time.tokens_per_epoch,
        assumed_mfu=time.mfu,
        calibrated_from=calibrated_from,
        seconds_per_step=time.seconds_per_step,
        tokens_per_second=time.tokens_per_second,
        settings=decide_settings(hardware, setup, data, reasons["gradient_checkpointing"], fate),
        row_fate=fate,
        chat=search.chat,
    )


def _choice_reasons(
    search: Search,
    data: DataSpec | None,
    lengths: _Lengths,
    choice: Choice,
    rejected: list[Rejected],
    auto_method: bool,
    micro_batch: int | None,
    ga: int,
) -> dict[str, str]:
    """Reasons for the searched values, in the order render and `plan` show them."""
    policy, world, mb = search.policy, search.world, choice.micro_batch
    assert choice.fit.memory is not None
    reasons = {
        "method": explain.method_reason(choice, rejected, auto_method, search.budget),
        "sequence_len": _seq_reason(data, lengths, choice.seq_len),
        "sample_packing": _packing(search, data, choice.seq_len, True).reason,
        "micro_batch_size": explain.micro_reason(
            choice, choice.fit.memory, search.budget, micro_batch, policy.micro_batch_candidates
        ),
        "gradient_accumulation_steps": search.step_tokens.reason(
            choice.seq_len, choice.packing, mb, ga, world
        ),
        "gradient_checkpointing": explain.gc_reason(search, choice),
        "optimizer": explain.optimizer_reason(search, choice),
        "distributed": explain.distributed_reason(search, choice),
    }
    if search.fused_ce:
        reasons["fused_cross_entropy"] = explain.fused_ce_reason(search, choice)
    if choice.fit.variant.selective:
        reasons["selective_checkpointing"] = explain.selective_reason(search, choice)
    if choice.fit.variant.activation_offloading:
        reasons["activation_offloading"] = explain.activation_offloading_reason(search, choice)
    lora = policy.lora.get(choice.method)
    if lora is not None:
        reasons["lora_r"] = (
            f"r={lora.r} on {', '.join(lora.targets)}: with every linear layer adapted, rank "
            "matters little (QLoRA paper, Sec. 4)"
        )
        reasons["lora_alpha"] = (
            f"alpha = {lora.alpha} ({lora.alpha / lora.r:g} x r): the usual scaling"
        )
        experts = search.lora_targets(choice.method)[1]
        if experts:
            reasons["lora_r"] += "; the MoE experts' fused tensors too (lora_target_parameters)"
            reasons["lora_dropout"] = (
                "0: PEFT's ParamWrapper (lora_target_parameters, the MoE experts) refuses dropout"
            )
        else:
            reasons["lora_dropout"] = f"{lora.dropout} (policy; QLoRA's value)"
    return reasons


def _packing(search: Search, data: DataSpec | None, seq: int, explicit: bool) -> Packing:
    return choose_packing(
        data,
        seq,
        search.policy,
        cpu=search.hardware.is_cpu,
        limit=search.model.max_position_embeddings,
        explicit=explicit,
    )


def _seq_reason(data: DataSpec | None, lengths: _Lengths, seq: int) -> str:
    why = lengths.why
    if seq > lengths.base:
        return why + f"; raised to {seq:,} to pack short samples (sample_packing)"
    if seq != lengths.base:
        why += f"; shortened from {lengths.base:,} to fit"
        if seq == lengths.floor and data is not None and data.type != "completion":
            why += f" (no shorter: it keeps {lengths.keep:.0%} of the rows)"
    return why


def _epochs(data: DataSpec | None, policy: Policy, epochs: int | None) -> tuple[int, str]:
    if epochs is not None:
        return epochs, "set by --epochs"
    if data is not None and data.tokens.total >= policy.large_data_tokens:
        return (
            policy.epochs_large_data,
            f"{data.tokens.total:,} tokens: one pass is enough on large data",
        )
    return policy.epochs_default, "the policy default for small and medium data"
