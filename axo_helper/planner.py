"""The planner: hardware + model + data + policy -> a Plan that fits, and why.

Pure: no I/O besides `load_policy`, no torch. Every judgement call lives in
presets/policy.yaml; docs/plan.md explains the rules. In short:

1. precision and attention follow the GPU (bf16 + FlashAttention-2 from compute
   capability 8.0; fp16 + SDPA below; fp32 + SDPA on CPU);
2. sequence_len from the data's p99 (or the policy default), capped by the model;
   without --seq-len it is halved until something fits;
3. at each sequence length, methods in the policy's preference order; the first
   that fits wins (full only for small models);
4. for a method, the micro batch is the largest power of two that fits, up to the
   smallest one that keeps the GPU busy (tokens x hidden, policy) and up to the
   target effective batch per GPU; then the first variant of the policy's ladder
   (checkpointing, sharding, 8-bit/paged optimizers) that reaches it. Choosing the
   micro batch first keeps it monotone in memory: more memory never gives less;
5. everything that was tried and not chosen is recorded as Rejected, with its
   memory and the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from axo_helper import memory
from axo_helper.dataset import CHARS_PER_TOKEN
from axo_helper.errors import AxoHelperError, PlanError, UsageError
from axo_helper.specs import (
    DISTRIBUTED,
    METHODS,
    Attention,
    DataSpec,
    Distributed,
    Hardware,
    MemoryBreakdown,
    Method,
    ModelSpec,
    Plan,
    Precision,
    Rejected,
    TrainSetup,
)

# The calibration store's hook: (setup, raw estimate) -> corrected estimate. It may
# also carry `runs` (measurements behind the last correction) and
# `tokens_per_s(setup) -> float | None` (measured throughput of that setup).
Calibration = Callable[[TrainSetup, MemoryBreakdown], MemoryBreakdown]

OPTIMIZER_KEYS = ("default", "eight_bit", "paged")
SHARDED_CHOICES: tuple[Distributed, ...] = ("zero3", "fsdp")


# =========================================================================== policy
@dataclass(frozen=True)
class LoraPolicy:
    r: int
    alpha: int
    dropout: float
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    """One rung of the ladder: how much speed to give up for memory."""

    sharded: bool
    optimizer: str  # a key of Policy.optimizers: default | eight_bit | paged
    gradient_checkpointing: bool


@dataclass(frozen=True)
class Policy:
    """presets/policy.yaml as a value (see that file for the why of each number)."""

    headroom_fraction: float
    headroom_min_gib: float
    preference: tuple[Method, ...]
    full_max_params_b: float
    full_needs_default_optimizer: bool
    lora: Mapping[str, LoraPolicy]
    learning_rates: Mapping[str, tuple[tuple[float | None, float], ...]]
    lr_scheduler: str
    warmup_ratio: float
    epochs_default: int
    epochs_large_data: int
    large_data_tokens: int
    target_effective_batch: int
    micro_batch_candidates: tuple[int, ...]
    busy_tokens_x_hidden: int
    seq_len_default: int
    seq_len_multiple: int
    seq_len_min: int
    seq_len_shrink_to_fit: bool
    packing_max_p50_fraction: float
    packing_efficiency: float
    optimizers: Mapping[str, str]
    cpu_optimizer: str
    sharded: Distributed
    ladder: tuple[Variant, ...]
    mfu: Mapping[str, float]
    scaling: Mapping[str, float]
    multi_node_scaling: float
    cpu_memory_fraction: float
    cpu_assumed_memory_gib: float
    cpu_methods: tuple[Method, ...]
    cpu_sample_packing: bool

    def budget(self, memory_gib: float) -> float:
        """Memory per GPU the plan may use: memory - max(fraction x memory, min_gib)."""
        return memory_gib - max(self.headroom_fraction * memory_gib, self.headroom_min_gib)

    def raw_memory_for(self, budget_gib: float) -> float:
        """The inverse of budget(): the GPU memory whose budget is budget_gib."""
        return max(budget_gib / (1.0 - self.headroom_fraction), budget_gib + self.headroom_min_gib)

    def learning_rate(self, method: Method, params: int) -> float:
        billions = params / 1e9
        for limit, value in self.learning_rates[method]:
            if limit is None or billions <= limit:
                return value
        return self.learning_rates[method][-1][1]


class _PolicyReader:
    """Typed access to the parsed YAML; every problem names its key."""

    def __init__(self, raw: Any, where: str):
        if not isinstance(raw, dict):
            raise self._bad(where, "", "expected a mapping at the top level")
        self.raw = raw
        self.where = where

    @staticmethod
    def _bad(where: str, key: str, problem: str) -> AxoHelperError:
        at = f" {key}" if key else ""
        return AxoHelperError(
            f"policy {where}{at}: {problem}",
            hint="compare with the shipped presets/policy.yaml (docs/plan.md explains each key)",
        )

    def get(self, path: str) -> Any:
        node: Any = self.raw
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                raise self._bad(self.where, path, "is missing")
            node = node[part]
        return node

    def number(self, path: str, *, lo: float | None = None, hi: float | None = None) -> float:
        value = self.get(path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(self.where, path, f"expected a number, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self._bad(self.where, path, f"{value} is outside [{lo}, {hi}]")
        return float(value)

    def integer(self, path: str, *, lo: int = 1) -> int:
        value = self.get(path)
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise self._bad(self.where, path, f"expected a whole number >= {lo}, got {value!r}")
        return value

    def flag(self, path: str) -> bool:
        value = self.get(path)
        if not isinstance(value, bool):
            raise self._bad(self.where, path, f"expected true or false, got {value!r}")
        return value

    def text(self, path: str) -> str:
        value = self.get(path)
        if not isinstance(value, str) or not value:
            raise self._bad(self.where, path, f"expected a string, got {value!r}")
        return value

    def methods(self, path: str) -> tuple[Method, ...]:
        value = self.get(path)
        if not isinstance(value, list) or not value or any(m not in METHODS for m in value):
            raise self._bad(self.where, path, f"expected a list of {', '.join(METHODS)}")
        return tuple(cast(Method, m) for m in value)

    def bad(self, key: str, problem: str) -> AxoHelperError:
        return self._bad(self.where, key, problem)


def parse_policy(raw: Any, where: str = "presets/policy.yaml") -> Policy:
    """Build a Policy from parsed YAML; raises AxoHelperError naming a bad key."""
    r = _PolicyReader(raw, where)

    lora: dict[str, LoraPolicy] = {}
    for method in ("lora", "qlora"):
        key = f"lora.{method}"
        targets = r.get(f"{key}.targets")
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise r.bad(f"{key}.targets", "expected a list of module names or [all-linear]")
        lora[method] = LoraPolicy(
            r=r.integer(f"{key}.r"),
            alpha=r.integer(f"{key}.alpha"),
            dropout=r.number(f"{key}.dropout", lo=0.0, hi=0.9),
            targets=tuple(targets),
        )

    rates: dict[str, tuple[tuple[float | None, float], ...]] = {}
    for method in METHODS:
        rows = r.get(f"learning_rate.{method}")
        if not isinstance(rows, list) or not rows:
            raise r.bad(f"learning_rate.{method}", "expected a list of {max_params_b, value}")
        parsed: list[tuple[float | None, float]] = []
        for i, row in enumerate(rows):
            sub = _PolicyReader(row, where)
            value = sub.number("value", lo=0.0, hi=1.0)
            limit = sub.number("max_params_b", lo=0.0) if "max_params_b" in row else None
            if i == len(rows) - 1 and limit is not None:
                raise r.bad(f"learning_rate.{method}", "the last row must have no max_params_b")
            parsed.append((limit, value))
        rates[method] = tuple(parsed)

    candidates = r.get("batch.micro_batch_candidates")
    if (
        not isinstance(candidates, list)
        or not candidates
        or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in candidates)
        or candidates != sorted(set(candidates))
        or candidates[0] != 1
    ):
        raise r.bad(
            "batch.micro_batch_candidates", "expected ascending whole numbers starting at 1"
        )

    optimizers = {k: r.text(f"optimizer.{k}") for k in OPTIMIZER_KEYS}

    sharded = r.text("distributed.sharded")
    if sharded not in SHARDED_CHOICES:
        raise r.bad("distributed.sharded", f"expected one of {', '.join(SHARDED_CHOICES)}")

    ladder_raw = r.get("ladder")
    if not isinstance(ladder_raw, list) or not ladder_raw:
        raise r.bad("ladder", "expected a list of variants")
    ladder: list[Variant] = []
    for i, row in enumerate(ladder_raw):
        sub = _PolicyReader(row, f"{where} ladder[{i}]")
        opt = sub.text("optimizer")
        if opt not in OPTIMIZER_KEYS:
            raise sub.bad("optimizer", f"expected one of {', '.join(OPTIMIZER_KEYS)}")
        ladder.append(Variant(sub.flag("sharded"), opt, sub.flag("gradient_checkpointing")))

    def table(path: str, keys: tuple[str, ...]) -> dict[str, float]:
        return {k: r.number(f"{path}.{k}", lo=0.01, hi=1.0) for k in keys}

    return Policy(
        headroom_fraction=r.number("headroom.fraction", lo=0.0, hi=0.5),
        headroom_min_gib=r.number("headroom.min_gib", lo=0.0),
        preference=r.methods("methods.preference"),
        full_max_params_b=r.number("methods.full_max_params_b", lo=0.0),
        full_needs_default_optimizer=r.flag("methods.full_needs_default_optimizer"),
        lora=lora,
        learning_rates=rates,
        lr_scheduler=r.text("lr_scheduler"),
        warmup_ratio=r.number("warmup_ratio", lo=0.0, hi=0.5),
        epochs_default=r.integer("epochs.default"),
        epochs_large_data=r.integer("epochs.large_data"),
        large_data_tokens=r.integer("epochs.large_data_tokens"),
        target_effective_batch=r.integer("batch.target_effective"),
        micro_batch_candidates=tuple(candidates),
        busy_tokens_x_hidden=r.integer("batch.busy_tokens_x_hidden"),
        seq_len_default=r.integer("sequence_len.default"),
        seq_len_multiple=r.integer("sequence_len.multiple"),
        seq_len_min=r.integer("sequence_len.min"),
        seq_len_shrink_to_fit=r.flag("sequence_len.shrink_to_fit"),
        packing_max_p50_fraction=r.number("sample_packing.max_p50_fraction", lo=0.0, hi=1.0),
        packing_efficiency=r.number("sample_packing.efficiency", lo=0.1, hi=1.0),
        optimizers=optimizers,
        cpu_optimizer=r.text("optimizer.cpu"),
        sharded=sharded,
        ladder=tuple(ladder),
        mfu=table("mfu", METHODS),
        scaling=table("scaling", DISTRIBUTED),
        multi_node_scaling=r.number("multi_node", lo=0.01, hi=1.0),
        cpu_memory_fraction=r.number("cpu.memory_fraction", lo=0.01, hi=1.0),
        cpu_assumed_memory_gib=r.number("cpu.assumed_memory_gib", lo=0.1),
        cpu_methods=r.methods("cpu.methods"),
        cpu_sample_packing=r.flag("cpu.sample_packing"),
    )


def load_policy(path: str | Path | None = None) -> Policy:
    """The shipped policy (presets/policy.yaml), or a user's copy at `path`."""
    if path is None:
        from axo_helper.resources import load_preset

        return parse_policy(load_preset("policy.yaml"))
    import yaml

    p = Path(path).expanduser()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it
    try:
        raw = yaml.load(p.read_text(encoding="utf-8"), Loader=loader)  # a safe loader
    except OSError as exc:
        raise UsageError(f"cannot read the policy file {p}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"the policy file {p} is not valid YAML: {exc}") from None
    return parse_policy(raw, str(p))


# =========================================================================== search
@dataclass(frozen=True)
class _Fit:
    """The largest micro batch of one variant that fits (0: not even 1)."""

    variant: Variant
    micro_batch: int
    memory: MemoryBreakdown | None  # at micro_batch (None when 0)
    at_one: MemoryBreakdown  # at micro batch 1: the least this variant needs
    next_up: MemoryBreakdown | None  # at the next candidate above micro_batch, if estimated


@dataclass(frozen=True)
class _Choice:
    method: Method
    seq_len: int
    packing: bool
    micro_batch: int
    fit: _Fit
    fits: tuple[_Fit, ...]  # every ladder variant evaluated for this method, in order
    micro_cap: int
    cap_reason: str


def _gib(x: float) -> str:
    return f"{x:.1f} GiB"


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, math.ceil(value / multiple) * multiple)


class _Search:
    """The context of one plan() call: everything the variants share, and a memo."""

    def __init__(
        self,
        hardware: Hardware,
        model: ModelSpec,
        policy: Policy,
        *,
        budget: float,
        precision: Precision,
        attn: Attention,
        distributed: Distributed | None,
        calibration: Calibration | None,
    ):
        self.hardware = hardware
        self.model = model
        self.policy = policy
        self.budget = budget
        self.precision = precision
        self.attn = attn
        self.world = 1 if hardware.is_cpu else hardware.world_size
        self.forced_distributed = distributed
        self.calibration = calibration
        self._memo: dict[TrainSetup, MemoryBreakdown] = {}

    # ---------------------------------------------------------------- variants
    def distributed_for(self, variant: Variant, world: int | None = None) -> Distributed | None:
        """The `distributed` value of a variant here, or None when it does not apply."""
        world = self.world if world is None else world
        forced = self.forced_distributed
        if world == 1:
            return None if variant.sharded else "none"
        if forced is None:
            return self.policy.sharded if variant.sharded else "ddp"
        # --distributed picks the one strategy; zero1/zero2 keep a replica of the weights.
        if forced in SHARDED_CHOICES:
            return forced if variant.sharded else None
        return None if variant.sharded else forced

    def optimizer_for(self, variant: Variant) -> str | None:
        if self.hardware.is_cpu:
            # bitsandbytes optimizers need a GPU.
            return self.policy.cpu_optimizer if variant.optimizer == "default" else None
        return self.policy.optimizers[variant.optimizer]

    def variants(self) -> list[Variant]:
        return [
            v
            for v in self.policy.ladder
            if self.distributed_for(v) is not None and self.optimizer_for(v) is not None
        ]

    def lightest_variant(self) -> Variant:
        return self.variants()[-1]

    # ---------------------------------------------------------------- estimates
    def setup(
        self,
        method: Method,
        seq_len: int,
        packing: bool,
        variant: Variant,
        micro_batch: int,
        *,
        world: int | None = None,
    ) -> TrainSetup:
        world = self.world if world is None else world
        dist = self.distributed_for(variant, world) or "none"
        lora = self.policy.lora.get(method)
        # FSDP memory depends on it (gradients stay unsharded while accumulating).
        ga = max(1, math.ceil(self.policy.target_effective_batch / (micro_batch * world)))
        quantize_moe = self.quantize_moe_experts(method)
        targets = lora.targets if lora else ()
        if quantize_moe and tuple(targets) == ("all-linear",):
            # Axolotl 0.19 refuses quantize_moe_experts with lora_target_linear: name the
            # same layers (every nn.Linear of a block; experts are fused tensors) instead.
            targets = tuple(dict.fromkeys(ls.name for ls in self.model.linears if ls.nn_linear))
        return TrainSetup(
            model=self.model,
            method=method,
            precision=self.precision,
            lora_r=lora.r if lora else 0,
            lora_targets=targets,
            lora_dropout=lora.dropout if lora else 0.0,
            sequence_len=seq_len,
            micro_batch_size=micro_batch,
            sample_packing=packing,
            gradient_checkpointing=variant.gradient_checkpointing,
            attn_implementation=self.attn,
            optimizer=self.optimizer_for(variant) or self.policy.optimizers["default"],
            num_gpus=world,
            distributed=dist,
            # bitsandbytes must store NF4 in a float dtype for ZeRO-3/FSDP to shard it.
            quant_storage_bf16=method == "qlora" and dist in SHARDED_CHOICES,
            gradient_accumulation_steps=ga,
            quantize_moe_experts=quantize_moe,
        )

    def quantize_moe_experts(self, method: Method) -> bool:
        """Axolotl's quantize_moe_experts: 4-bit MoE experts under QLoRA.

        Without it bitsandbytes leaves the fused expert tensors (not nn.Linear in
        transformers 5) in 16-bit, or fp32 after k-bit preparation: Mixtral-8x7B
        would need ~170 GiB. Axolotl refuses it off CUDA (ROCm), so not on AMD.
        """
        gpu = self.hardware.gpu
        return method == "qlora" and self.model.is_moe and gpu is not None and gpu.vendor != "amd"

    def estimate(self, setup: TrainSetup) -> MemoryBreakdown:
        found = self._memo.get(setup)
        if found is None:
            found = memory.estimate(setup)
            if self.calibration is not None:
                found = self.calibration(setup, found)
            self._memo[setup] = found
        return found

    def fits(self, bd: MemoryBreakdown) -> bool:
        return bd.total_gib <= self.budget

    def fit(
        self,
        method: Method,
        seq_len: int,
        packing: bool,
        variant: Variant,
        cap: int,
        exact: int | None = None,
    ) -> _Fit:
        """Largest candidate micro batch <= cap that fits (memory grows with it)."""
        at_one = self.estimate(self.setup(method, seq_len, packing, variant, 1))
        if exact is not None:
            bd = (
                at_one
                if exact == 1
                else self.estimate(self.setup(method, seq_len, packing, variant, exact))
            )
            ok = self.fits(bd)
            return _Fit(variant, exact if ok else 0, bd if ok else None, at_one, None if ok else bd)
        if not self.fits(at_one):
            return _Fit(variant, 0, None, at_one, at_one)
        best, best_bd = 1, at_one
        next_bd: MemoryBreakdown | None = None
        for mb in self.policy.micro_batch_candidates[1:]:
            if mb > cap:
                break
            bd = self.estimate(self.setup(method, seq_len, packing, variant, mb))
            if not self.fits(bd):
                next_bd = bd
                break
            best, best_bd = mb, bd
        return _Fit(variant, best, best_bd, at_one, next_bd)

    # ---------------------------------------------------------------- micro batch cap
    def micro_cap(self, seq_len: int) -> tuple[int, str]:
        """The micro batch worth reaching: busy enough, and within the effective batch."""
        p = self.policy
        per_gpu = max(1, p.target_effective_batch // self.world)
        wanted = math.ceil(p.busy_tokens_x_hidden / (seq_len * self.model.hidden_size))
        busy = next(
            (c for c in p.micro_batch_candidates if c >= wanted), p.micro_batch_candidates[-1]
        )
        usable = [c for c in p.micro_batch_candidates if c <= min(per_gpu, busy)]
        cap = usable[-1] if usable else 1
        if busy <= per_gpu:
            why = f"{busy} x {seq_len} tokens keep a {self.model.hidden_size}-wide model busy"
        elif self.world > 1:
            why = f"target effective batch {p.target_effective_batch} over {self.world} GPUs"
        else:
            why = f"target effective batch {p.target_effective_batch}"
        return cap, why


# =========================================================================== plan
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
) -> Plan:
    """Decide a training setup that fits `hardware` (see the module docstring).

    `cpu_memory_gib`: on CPU hardware, the host memory to plan against (the caller
    reads it; this function does no I/O). Raises PlanError when nothing fits and
    UsageError for contradictory overrides.
    """
    _check_overrides(hardware, model, policy, method, seq_len, micro_batch, epochs, distributed)
    warnings: list[str] = list(hardware.warnings)
    reasons: dict[str, str] = {}

    # ------------------------------------------------------------ hardware facts
    gpu = hardware.gpu
    if gpu is None:
        host = (
            cpu_memory_gib
            if cpu_memory_gib and cpu_memory_gib > 0
            else policy.cpu_assumed_memory_gib
        )
        budget = host * policy.cpu_memory_fraction
        precision: Precision = "fp32"
        attn: Attention = "sdpa"
        reasons["precision"] = "fp32: CPU training (bf16/fp16 mixed precision needs a GPU)"
        reasons["attn_implementation"] = "sdpa: PyTorch's built-in attention, works on CPU"
        warnings.append(
            "CPU training is for the demo and tiny models: a 1B model takes hours per 1,000 steps"
        )
        budget_why = f"{policy.cpu_memory_fraction:.0%} of {host:.1f} GiB host memory"
    else:
        raw = hardware.budget_gib
        budget = policy.budget(raw)
        budget_why = f"{raw:.1f} GiB less {raw - budget:.1f} GiB headroom"
        cc = gpu.compute_capability
        cc_text = f"compute capability {cc[0]}.{cc[1]}" if cc else gpu.name
        if gpu.bf16:
            precision = "bf16"
            reasons["precision"] = (
                f"bf16: {cc_text} supports bfloat16 (fp16's range without loss scaling)"
            )
        else:
            precision = "fp16"
            reasons["precision"] = f"fp16: {cc_text} has no bfloat16 (bf16 needs >= 8.0)"
        if gpu.flash_attention_2:
            attn = "flash_attention_2"
            reasons["attn_implementation"] = f"flash_attention_2: supported on {cc_text}"
        else:
            attn = "sdpa"
            reasons["attn_implementation"] = (
                f"sdpa: FlashAttention-2 needs compute capability >= 8.0; {cc_text} gets PyTorch's "
                "memory-efficient attention"
            )
        if hardware.use_free_memory and not hardware.warnings:
            held = max(g.memory_gib - hardware.memory_of(g) for g in hardware.gpus)
            if held > 0.5:
                warnings.append(
                    f"other processes hold {held:.1f} GiB of GPU memory: planning against the free "
                    f"{raw:.1f} GiB"
                )
    if precision in ("bf16", "fp16"):
        reasons[precision] = reasons["precision"]  # the Axolotl key render comments
    if budget <= 0:
        hint = "free the GPU (see nvidia-smi) or pass --gpu with its profile"
        if hardware.source in ("size", "profile"):
            hint = (
                f"the policy keeps max({policy.headroom_fraction:.0%}, "
                f"{policy.headroom_min_gib:g} GiB) of each GPU as headroom; plan for a GPU with "
                "more memory"
            )
        raise PlanError(
            f"no memory left to plan with: {budget_why} leaves {budget:.1f} GiB", hint=hint
        )

    search = _Search(
        hardware,
        model,
        policy,
        budget=budget,
        precision=precision,
        attn=attn,
        distributed=cast(Distributed | None, distributed),
        calibration=calibration,
    )

    # ------------------------------------------------------------ sequence length
    base_seq, seq_why, explicit_seq = _choose_seq_len(model, data, policy, seq_len)
    seqs = [base_seq]
    if not explicit_seq and policy.seq_len_shrink_to_fit:
        seqs = list(_shrinking(base_seq, policy))

    methods = _candidate_methods(hardware, policy, method)
    auto_method = method is None

    # ------------------------------------------------------------ search
    rejected: list[Rejected] = []
    choice: _Choice | None = None
    for seq in seqs:
        packing = _packing(data, seq, policy, hardware.is_cpu)
        tried: list[tuple[Method, _Fit | None, str]] = []
        for m in methods:
            if auto_method and m == "full" and model.total_params > policy.full_max_params_b * 1e9:
                tried.append((m, None, "size"))
                continue
            c = _choose_for_method(search, m, seq, packing, micro_batch)
            if c is None:
                tried.append((m, _lightest(search, m, seq, packing), "nofit"))
                continue
            if (
                auto_method
                and m == "full"
                and policy.full_needs_default_optimizer
                and c.fit.variant.optimizer != "default"
            ):
                tried.append((m, c.fit, "squeezed"))
                continue
            choice = c
            break
        if choice is not None:
            rejected.extend(_rejected_methods(search, tried, choice, methods, budget))
            break
        # Nothing at this length: say so once, with the lightest method's need.
        fits_here = [f for _, f, why in tried if f is not None and why == "nofit"]
        if fits_here and seq != seqs[-1]:
            need = min(fits_here, key=lambda f: f.at_one.total_gib)
            rejected.append(
                Rejected(
                    f"sequence_len {seq}",
                    round(need.at_one.total_gib, 2),
                    f"nothing fits: the lightest setup needs {_gib(need.at_one.total_gib)} "
                    f"> {_gib(budget)} budget",
                )
            )

    if choice is None:
        raise _nothing_fits(search, seqs, methods, micro_batch, explicit_seq, method)

    # ------------------------------------------------------------ the chosen setup
    fit = choice.fit
    assert fit.memory is not None
    setup = search.setup(
        choice.method, choice.seq_len, choice.packing, fit.variant, choice.micro_batch
    )
    mem = fit.memory
    calibrated_from = 0
    if calibration is not None:
        raw_bd = memory.estimate(setup)
        # Re-run the hook on the chosen setup so its `runs` counter describes it.
        again = calibration(setup, raw_bd)
        if again is not raw_bd:
            calibrated_from = int(getattr(calibration, "runs", 0) or 0)
    rejected.extend(_rejected_variants(search, choice))

    world = search.world
    mb = choice.micro_batch
    ga = setup.gradient_accumulation_steps or 1
    lora = policy.lora.get(choice.method)

    # ------------------------------------------------------------ reasons
    reasons["method"] = _method_reason(choice, rejected, auto_method, model, policy, budget)
    reasons["sequence_len"] = seq_why + (
        f"; halved from {base_seq} to fit" if choice.seq_len != base_seq else ""
    )
    reasons["sample_packing"] = _packing_reason(
        data, choice.seq_len, choice.packing, policy, hardware.is_cpu
    )
    reasons["micro_batch_size"] = _micro_reason(
        choice, mem, budget, micro_batch, policy.micro_batch_candidates
    )
    reasons["gradient_accumulation_steps"] = (
        f"{mb} x {ga} x {world} GPU{'s' if world > 1 else ''} = {mb * ga * world} sequences per "
        f"optimizer step (target {policy.target_effective_batch})"
    )
    reasons["gradient_checkpointing"] = _gc_reason(choice)
    reasons["optimizer"] = _optimizer_reason(search, choice)
    reasons["distributed"] = _distributed_reason(search, choice)
    if lora is not None:
        reasons["lora_r"] = (
            f"r={lora.r} on {', '.join(lora.targets)}: with every linear layer adapted, rank "
            "matters little (QLoRA paper, Sec. 4)"
        )
        reasons["lora_alpha"] = (
            f"alpha = {lora.alpha} ({lora.alpha / lora.r:g} x r): the usual scaling"
        )
        reasons["lora_dropout"] = f"{lora.dropout} (policy; QLoRA's value)"
    lr = policy.learning_rate(choice.method, model.total_params)
    reasons["learning_rate"] = (
        f"{lr:g}: the policy's rate for {choice.method} at {model.total_params / 1e9:.1f}B parameters"
    )

    # ------------------------------------------------------------ epochs and time
    if epochs is not None:
        num_epochs = epochs
        reasons["num_epochs"] = "set by --epochs"
    elif data is not None and data.tokens.total >= policy.large_data_tokens:
        num_epochs = policy.epochs_large_data
        reasons["num_epochs"] = f"{data.tokens.total:,} tokens: one pass is enough on large data"
    else:
        num_epochs = policy.epochs_default
        reasons["num_epochs"] = "the policy default for small and medium data"

    timing = _timing(search, setup, data, ga, calibration)

    # ------------------------------------------------------------ warnings
    warnings.extend(_data_warnings(data, choice.seq_len, base_seq))
    if model.generic:
        warnings.append(
            f"{model.architecture} is not a known architecture: the estimate uses generic "
            "config.json fields"
        )
    warnings.extend(_moe_warnings(search, setup))
    if mem.total_gib > 0.97 * budget:
        warnings.append(
            f"the plan uses {mem.total_gib:.1f} of {budget:.1f} GiB: little margin for estimate error"
        )

    return Plan(
        hardware=hardware,
        model=model,
        data=data,
        setup=setup,
        memory=mem,
        budget_gib=budget,
        gradient_accumulation_steps=ga,
        lora_alpha=lora.alpha if lora else None,
        learning_rate=lr,
        num_epochs=num_epochs,
        lr_scheduler=policy.lr_scheduler,
        warmup_ratio=policy.warmup_ratio,
        rejected=tuple(rejected),
        warnings=tuple(dict.fromkeys(warnings)),
        reasons=reasons,
        steps_per_epoch=timing.steps_per_epoch,
        seconds_per_epoch=timing.seconds_per_epoch,
        tokens_per_epoch=timing.tokens_per_epoch,
        assumed_mfu=timing.mfu,
        calibrated_from=calibrated_from,
        seconds_per_step=timing.seconds_per_step,
        tokens_per_second=timing.tokens_per_second,
    )


# =========================================================================== pieces
def _check_overrides(
    hardware: Hardware,
    model: ModelSpec,
    policy: Policy,
    method: Method | None,
    seq_len: int | None,
    micro_batch: int | None,
    epochs: int | None,
    distributed: str | None,
) -> None:
    if method is not None and method not in METHODS:
        raise UsageError(f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if method is not None and hardware.is_cpu and method not in policy.cpu_methods:
        raise UsageError(
            f"--method {method} needs a CUDA GPU (bitsandbytes 4-bit quantization)",
            hint=f"on CPU use --method {' or '.join(policy.cpu_methods)}",
        )
    for name, value in (
        ("--seq-len", seq_len),
        ("--micro-batch", micro_batch),
        ("--epochs", epochs),
    ):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise UsageError(f"{name} must be at least 1, not {value}")
    if seq_len is not None and seq_len > model.max_position_embeddings:
        raise UsageError(
            f"--seq-len {seq_len} is longer than {model.name}'s {model.max_position_embeddings} "
            "positions",
            hint=f"use --seq-len {model.max_position_embeddings} or less",
        )
    if distributed is not None:
        if distributed not in DISTRIBUTED or distributed == "none":
            raise UsageError(
                f"unknown --distributed {distributed!r}",
                hint="use one of ddp, zero1, zero2, zero3, fsdp",
            )
        world = 1 if hardware.is_cpu else hardware.world_size
        if world < 2:
            raise UsageError(
                f"--distributed {distributed} needs several GPUs; this plan has one",
                hint="give a count with --gpu (e.g. --gpu 2xa100-80gb) or --nodes, or drop --distributed",
            )


def _choose_seq_len(
    model: ModelSpec, data: DataSpec | None, policy: Policy, explicit: int | None
) -> tuple[int, str, bool]:
    """(sequence_len, reason, explicit)."""
    limit = model.max_position_embeddings
    if explicit is not None:
        return explicit, "set by --seq-len", True
    if data is not None:
        p99 = max(1, data.tokens.p99)
        seq = max(policy.seq_len_min, _round_up(p99, policy.seq_len_multiple))
        why = f"data p99 is {p99:,} tokens, rounded up to a multiple of {policy.seq_len_multiple}"
        if seq == policy.seq_len_min and _round_up(p99, policy.seq_len_multiple) < seq:
            why += f" (at least {policy.seq_len_min})"
    else:
        seq = policy.seq_len_default
        why = "no --data: the policy default"
    if seq > limit:
        seq = limit
        why += f", capped by the model's {limit:,} positions"
    return seq, why, False


def _shrinking(seq: int, policy: Policy) -> Iterator[int]:
    """seq, then halves rounded down to the policy multiple, down to its minimum."""
    yield seq
    while True:
        nxt = (seq // 2) // policy.seq_len_multiple * policy.seq_len_multiple
        nxt = max(nxt, policy.seq_len_min)
        if nxt >= seq:
            return
        seq = nxt
        yield seq


def _packing(data: DataSpec | None, seq: int, policy: Policy, cpu: bool) -> bool:
    if cpu and not policy.cpu_sample_packing:
        return False
    return data is not None and data.tokens.p50 <= policy.packing_max_p50_fraction * seq


def _packing_reason(
    data: DataSpec | None, seq: int, packing: bool, policy: Policy, cpu: bool
) -> str:
    if data is None:
        return "no --data: sample lengths unknown, packing off"
    if cpu and not policy.cpu_sample_packing:
        return "off on CPU: the multipack sampler costs more time than tiny samples save"
    half = f"{policy.packing_max_p50_fraction:g} x sequence_len {seq}"
    if packing:
        per = seq / max(1.0, data.tokens.mean)
        return (
            f"median sample {data.tokens.p50} tokens <= {half}: about {per:.0f} samples per "
            "sequence instead of padding"
        )
    return f"median sample {data.tokens.p50} tokens > {half}: little to pack"


def _candidate_methods(hardware: Hardware, policy: Policy, method: Method | None) -> list[Method]:
    if method is not None:
        return [method]
    if hardware.is_cpu:
        return list(policy.cpu_methods)  # its own order (policy.yaml says why)
    return list(policy.preference)


def _choose_for_method(
    search: _Search, method: Method, seq: int, packing: bool, micro_batch: int | None
) -> _Choice | None:
    """The micro batch first (monotone in memory), then the first variant reaching it."""
    variants = search.variants()
    if micro_batch is not None:
        cap, cap_why = micro_batch, "set by --micro-batch"
        fits = [search.fit(method, seq, packing, v, cap, exact=micro_batch) for v in variants]
        best = micro_batch if any(f.micro_batch for f in fits) else 0
    else:
        cap, cap_why = search.micro_cap(seq)
        fits = []
        best = 0
        for v in variants:
            f = search.fit(method, seq, packing, v, cap)
            fits.append(f)
            best = max(best, f.micro_batch)
            if best >= cap:
                break  # later rungs cannot do better than the cap
    if best == 0:
        return None
    # fit() never exceeds the cap, so the first rung reaching `best` fits exactly it.
    index = next(i for i, f in enumerate(fits) if f.micro_batch >= best)
    chosen = fits[index]
    return _Choice(method, seq, packing, best, chosen, tuple(fits[: index + 1]), cap, cap_why)


def _lightest(search: _Search, method: Method, seq: int, packing: bool) -> _Fit:
    """The least a method needs at this length: the last rung at micro batch 1."""
    v = search.lightest_variant()
    return search.fit(method, seq, packing, v, 1, exact=1)


def _variant_label(search: _Search, v: Variant) -> str:
    parts = ["gradient checkpointing" if v.gradient_checkpointing else "no gradient checkpointing"]
    if search.world > 1:
        parts.append(search.distributed_for(v) or "?")
    parts.append(search.optimizer_for(v) or "?")
    return ", ".join(parts)


def _rejected_methods(
    search: _Search,
    tried: list[tuple[Method, _Fit | None, str]],
    choice: _Choice,
    methods: list[Method],
    budget: float,
) -> list[Rejected]:
    out: list[Rejected] = []
    model = search.model
    for m, f, why in tried:
        if why == "size":
            bd = search.estimate(
                search.setup(m, choice.seq_len, choice.packing, choice.fit.variant, 1)
            )
            out.append(
                Rejected(
                    m,
                    round(bd.total_gib, 2),
                    f"{model.total_params / 1e9:.1f}B parameters is above the policy's "
                    f"{search.policy.full_max_params_b:g}B limit for full fine-tuning "
                    "(--method full forces it)",
                )
            )
        elif why == "squeezed" and f is not None and f.memory is not None:
            out.append(
                Rejected(
                    m,
                    round(f.memory.total_gib, 2),
                    f"fits only with {search.optimizer_for(f.variant)}; the policy keeps full "
                    "fine-tuning for when it fits with the default optimizer",
                )
            )
        elif f is not None:
            out.append(
                Rejected(
                    m,
                    round(f.at_one.total_gib, 2),
                    f"needs {_gib(f.at_one.total_gib)} > {_gib(budget)} budget even at micro batch 1 "
                    f"with {_variant_label(search, f.variant)}",
                )
            )
    # Methods after the chosen one were not needed; show what they would have cost.
    after = methods[methods.index(choice.method) + 1 :]
    for m in after:
        bd = search.estimate(
            search.setup(m, choice.seq_len, choice.packing, choice.fit.variant, choice.micro_batch)
        )
        if m == "qlora":
            why_not = (
                f"not needed: {choice.method} fits; 4-bit base weights train ~30% slower and lose "
                "a little precision"
            )
        else:
            why_not = f"not needed: {choice.method} fits and trains every weight"
        out.append(Rejected(m, round(bd.total_gib, 2), why_not))
    return out


def _rejected_variants(search: _Search, choice: _Choice) -> list[Rejected]:
    """Faster rungs of the ladder that did not reach the chosen micro batch."""
    out: list[Rejected] = []
    for f in choice.fits[:-1]:
        label = f"{choice.method} ({_variant_label(search, f.variant)})"
        if f.micro_batch == 0:
            out.append(
                Rejected(
                    label,
                    round(f.at_one.total_gib, 2),
                    f"needs {_gib(f.at_one.total_gib)} at micro batch 1 > {_gib(search.budget)} budget",
                )
            )
        else:
            nxt = f.next_up
            need = (
                f" ({choice.micro_batch} would need more)"
                if nxt is None
                else (f"; the next size needs {_gib(nxt.total_gib)}")
            )
            out.append(
                Rejected(
                    label,
                    round(f.memory.total_gib if f.memory else f.at_one.total_gib, 2),
                    f"reaches only micro batch {f.micro_batch}{need}",
                )
            )
    return out


def _method_reason(
    choice: _Choice,
    rejected: list[Rejected],
    auto: bool,
    model: ModelSpec,
    policy: Policy,
    budget: float,
) -> str:
    total = choice.fit.memory.total_gib if choice.fit.memory else 0.0
    if not auto:
        return f"set by --method; fits in {_gib(total)} of {_gib(budget)}"
    earlier = [r for r in rejected if r.method in METHODS and not r.reason.startswith("not needed")]
    if not earlier:
        return f"{choice.method} is the policy's first choice and fits ({_gib(total)} of {_gib(budget)})"
    skipped = "; ".join(f"{r.method}: {r.reason}" for r in earlier)
    return f"{choice.method} fits ({_gib(total)} of {_gib(budget)}); {skipped}"


def _micro_reason(
    choice: _Choice,
    mem: MemoryBreakdown,
    budget: float,
    forced: int | None,
    candidates: tuple[int, ...],
) -> str:
    head = f"{mem.total_gib:.1f} of {budget:.1f} GiB predicted"
    if forced is not None:
        return f"{head}; set by --micro-batch"
    nxt = choice.fit.next_up
    if choice.micro_batch >= choice.micro_cap:
        return f"{head}; larger is not needed: {choice.cap_reason}"
    if nxt is not None:
        up = next((c for c in candidates if c > choice.micro_batch), choice.micro_batch + 1)
        return f"{head}; {up} would need {nxt.total_gib:.1f} GiB"
    return head


def _gc_reason(choice: _Choice) -> str:
    v = choice.fit.variant
    if not v.gradient_checkpointing:
        return "off: fits without it (no recompute, ~25% faster)"
    faster = [f for f in choice.fits if not f.variant.gradient_checkpointing]
    if faster:
        f = faster[-1]
        if f.micro_batch == 0:
            return (
                f"on: without it micro batch 1 needs {_gib(f.at_one.total_gib)}; it keeps ~2 "
                "activations per layer instead of all"
            )
        return f"on: without it only micro batch {f.micro_batch} fits, {choice.micro_batch} with it"
    return "on: the policy's ladder turns it on before this variant"


def _optimizer_reason(search: _Search, choice: _Choice) -> str:
    v = choice.fit.variant
    name = search.optimizer_for(v)
    if v.optimizer == "default":
        if search.hardware.is_cpu:
            return f"{name}: bitsandbytes 8-bit optimizers need a GPU"
        return f"{name}: fits without 8-bit optimizer states (fused kernel: fastest AdamW)"
    default = search.policy.optimizers["default"]
    default_fits = [f for f in choice.fits if f.variant.optimizer == "default"]
    best = max(default_fits, key=lambda f: f.micro_batch, default=None)
    if best is not None and best.micro_batch > 0:
        # The default optimizer fits, only at a smaller micro batch: say that, not "needs".
        purpose = f"needed to reach micro batch {choice.micro_batch}"
        extra = f"; {default} reaches only micro batch {best.micro_batch}"
        if best.next_up is not None:
            up = next(
                (c for c in search.policy.micro_batch_candidates if c > best.micro_batch),
                best.micro_batch + 1,
            )
            extra += f" ({up} needs {_gib(best.next_up.total_gib)})"
    else:
        purpose = "needed to fit"
        need = min((f.at_one.total_gib for f in default_fits), default=None)
        extra = f"; {default} needs {_gib(need)} at micro batch 1" if need else ""
    if v.optimizer == "paged":
        return f"{name}: 8-bit states that page to host memory under pressure, {purpose}{extra}"
    return f"{name}: 8-bit Adam states (~2 B/param instead of 8), {purpose}{extra}"


def _distributed_reason(search: _Search, choice: _Choice) -> str:
    dist = choice.fit.variant and search.distributed_for(choice.fit.variant)
    world = search.world
    if world == 1:
        return "none: one device"
    forced = " (set by --distributed)" if search.forced_distributed else ""
    if dist in ("ddp", "zero1", "zero2"):
        return f"{dist}{forced}: a full replica of the model fits on each of {world} GPUs"
    replicas = [f for f in choice.fits if not f.variant.sharded]
    best = max(replicas, key=lambda f: f.micro_batch, default=None)
    if best is not None and best.micro_batch > 0:
        why = (
            f"a full replica per GPU reaches only micro batch {best.micro_batch}, "
            f"{choice.micro_batch} sharded; "
        )
    else:
        need = min((f.at_one.total_gib for f in replicas), default=None)
        why = f"a full replica needs {_gib(need)} > {_gib(search.budget)}; " if need else ""
    return (
        f"{dist}{forced}: {why}sharding weights, gradients and optimizer states across "
        f"{world} GPUs fits"
    )


# =========================================================================== time
@dataclass(frozen=True)
class _Timing:
    steps_per_epoch: int | None = None
    seconds_per_epoch: float | None = None
    tokens_per_epoch: int | None = None
    seconds_per_step: float | None = None
    mfu: float | None = None
    tokens_per_second: float | None = None


def flops_per_token(setup: TrainSetup, context: float) -> float:
    """Training FLOPs per token (docs/plan.md, "Time").

    Matmul FLOPs: forward 2N; backward 4N for a full fine-tune (activation and weight
    gradients) but 2N for LoRA/QLoRA (frozen weights need no weight gradient; the
    adapters are negligible). Gradient checkpointing repeats the forward: +2N.
    N counts the weights that multiply (the input embedding is a lookup; the lm_head
    multiplies). Attention scores add 2 x 2 x layers x (heads x head_dim) x context/2 in
    the forward (causal: half the keys on average), backward twice that.
    """
    m = setup.model
    n = m.active_params - (0 if m.tie_word_embeddings else m.vocab_size * m.hidden_size)
    forward = 2.0 * n
    attn_fwd = 2.0 * m.num_layers * m.num_attention_heads * m.head_dim * context
    backward = (4.0 if setup.method == "full" else 2.0) * n + 2 * attn_fwd
    recompute = (forward + attn_fwd) if setup.gradient_checkpointing else 0.0
    return forward + attn_fwd + backward + recompute


def _timing(
    search: _Search,
    setup: TrainSetup,
    data: DataSpec | None,
    ga: int,
    calibration: Calibration | None,
) -> _Timing:
    """Steps, tokens and seconds per epoch (docs/plan.md, "Time")."""
    p = search.policy
    world = search.world
    seq, mb = setup.sequence_len, setup.micro_batch_size
    sequences_per_step = mb * ga * world

    # Tokens the GPUs process, padding included (it is computed too).
    tokens_per_epoch: int | None = None
    steps: int | None = None
    sample_len = float(seq)  # a sample's length (attention spans one sample)
    seq_tokens = float(seq)  # tokens in one sequence of a micro batch
    if data is not None and data.rows > 0:
        sample_len = max(1.0, min(float(seq), data.tokens.mean))
        if setup.sample_packing:
            sequences = math.ceil(data.tokens.total / (seq * p.packing_efficiency))
        else:
            # A padded micro batch is as long as its longest sample: about the mean
            # for one sample, towards p95 for many.
            p95 = min(float(seq), float(data.tokens.p95))
            seq_tokens = sample_len + max(0.0, p95 - sample_len) * (1.0 - 1.0 / mb)
            sequences = data.rows
        tokens_per_epoch = int(sequences * seq_tokens)
        steps = max(1, math.ceil(sequences / sequences_per_step))
    step_tokens = sequences_per_step * seq_tokens

    measured: float | None = None
    hook = getattr(calibration, "tokens_per_s", None) if calibration is not None else None
    if callable(hook):
        value = hook(setup)
        measured = float(value) if isinstance(value, int | float) and value > 0 else None

    gpu = search.hardware.gpu
    tflops = gpu.tflops_bf16 if gpu is not None else None
    mfu: float | None = None
    if measured is not None:
        tokens_per_second = measured  # the run's throughput, as the calibration store holds it
    elif tflops:
        mfu = p.mfu[setup.method] * p.scaling.get(setup.distributed, 1.0)
        if search.hardware.nodes > 1:
            mfu *= p.multi_node_scaling
        fpt = flops_per_token(setup, sample_len / 2.0)
        tokens_per_second = tflops * 1e12 * mfu * world / fpt
    else:
        return _Timing(steps_per_epoch=steps, tokens_per_epoch=tokens_per_epoch)

    return _Timing(
        steps_per_epoch=steps,
        seconds_per_epoch=tokens_per_epoch / tokens_per_second if tokens_per_epoch else None,
        tokens_per_epoch=tokens_per_epoch,
        seconds_per_step=step_tokens / tokens_per_second,
        mfu=round(mfu, 4) if mfu is not None else None,
        tokens_per_second=tokens_per_second,
    )


# =========================================================================== warnings
def _data_warnings(data: DataSpec | None, seq: int, base_seq: int) -> list[str]:
    if data is None:
        return []
    out = list(data.warnings)
    if data.approximate:
        out.append(
            "token counts are approximate (no local tokenizer: "
            f"{CHARS_PER_TOKEN} characters per token); pass "
            "--tokenizer DIR or a local --model for exact counts"
        )
    if seq < base_seq:
        out.append(
            f"sequence_len was halved from {base_seq} to {seq} to fit: samples longer than {seq} "
            "tokens are dropped by Axolotl (excess_length_strategy: drop) or truncated"
        )
    elif data.tokens.p99 > seq:
        out.append(
            f"more than 1% of samples are longer than sequence_len {seq} (p99 {data.tokens.p99}): "
            "Axolotl drops them by default"
        )
    elif data.tokens.max > seq:
        out.append(
            f"the longest sample has {data.tokens.max} tokens > sequence_len {seq}: fewer than 1% "
            "of samples are dropped (or truncated)"
        )
    return out


def _moe_warnings(search: _Search, setup: TrainSetup) -> list[str]:
    """MoE under QLoRA: what Axolotl 0.19 needs that the plan alone cannot give."""
    m = setup.model
    if not m.is_moe or setup.method != "qlora":
        return []
    if not setup.quantize_moe_experts:
        return [
            "MoE experts stay unquantized under QLoRA on this GPU (Axolotl's "
            "quantize_moe_experts needs CUDA): the estimate counts them so, and LoRA may "
            "need less"
        ]
    return []


# =========================================================================== nothing fits
def _nothing_fits(
    search: _Search,
    seqs: list[int],
    methods: list[Method],
    micro_batch: int | None,
    explicit_seq: bool,
    forced_method: Method | None,
) -> PlanError:
    """A PlanError that names the smallest change that would fit."""
    policy, budget = search.policy, search.budget
    method = methods[-1]  # the lightest in preference order (qlora unless forced/CPU)
    seq = seqs[-1]
    v = search.lightest_variant()
    mb = micro_batch or 1
    bd = search.estimate(search.setup(method, seq, False, v, mb))
    need = bd.total_gib
    desc = f"{method} at sequence_len {seq}, micro batch {mb}, {_variant_label(search, v)}"
    changes: list[str] = []

    if micro_batch is not None and micro_batch > 1:
        for m in methods:
            f = search.fit(m, seq, False, v, micro_batch - 1)
            if f.micro_batch:
                changes.append(
                    f"--micro-batch {f.micro_batch} ({m}, {_gib(f.memory.total_gib if f.memory else 0)})"
                )
                break
    if forced_method is not None and not search.hardware.is_cpu:
        for other in (m for m in ("lora", "qlora") if m != forced_method):
            f = search.fit(other, seq, False, v, 1)
            if f.micro_batch:
                changes.append(f"--method {other} ({_gib(f.at_one.total_gib)})")
                break
    if explicit_seq:
        for shorter in list(_shrinking(seq, policy))[1:]:
            f = search.fit(method, shorter, False, v, mb, exact=mb)
            if f.micro_batch and f.memory is not None:
                changes.append(f"--seq-len {shorter} ({_gib(f.memory.total_gib)})")
                break

    if search.hardware.is_cpu:
        changes.append(
            f"about {need / policy.cpu_memory_fraction:.0f} GiB of host memory, or a GPU"
        )
    else:
        changes.append(f"a GPU with >= {math.ceil(policy.raw_memory_for(need))} GiB")
        if search.forced_distributed not in ("ddp", "zero1", "zero2"):
            sharded = search.forced_distributed or policy.sharded
            sharded_variant = Variant(True, v.optimizer, True)
            gpu = search.hardware.gpu
            assert gpu is not None
            name = gpu.profile or f"{gpu.memory_gib:.0f}GB"
            for n in (2, 4, 8, 16, 32, 64):
                if n <= search.world:
                    continue
                s = search.setup(method, seq, False, sharded_variant, mb, world=n)
                if search.fits(search.estimate(s)):
                    where = f"--gpu {n}x{name}" if n <= 8 else f"--gpu 8x{name} --nodes {n // 8}"
                    changes.append(f"{n} such GPUs with {sharded} ({where})")
                    break
    return PlanError(
        f"nothing fits in {_gib(budget)} per {'process' if search.hardware.is_cpu else 'GPU'}: "
        f"the lightest setup ({desc}) needs {_gib(need)}",
        hint="smallest changes that fit: " + "; or ".join(changes) + "; or a smaller model",
    )
