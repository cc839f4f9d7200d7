"""The search: candidate setups of one plan() call and the fastest one that fits.

For a method and sequence length every rung of the policy's ladder (and its fused
cross-entropy twin) is fitted at its largest useful micro batch, every fitting micro
batch is timed, and the lowest predicted time per epoch wins (ties: the simpler).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from axo_helper import fit as fit_rule
from axo_helper import memory
from axo_helper.planner import freeze
from axo_helper.planner.packing import StepTokens
from axo_helper.planner.policy import PARTIAL_CHOICES, SHARDED_CHOICES, Policy, Variant
from axo_helper.specs import (
    Attention,
    ChatChoice,
    DataSpec,
    Distributed,
    Hardware,
    MemoryBreakdown,
    Method,
    ModelSpec,
    Precision,
    TrainSetup,
)

if TYPE_CHECKING:
    from axo_helper.calibration import Calibration


@dataclass(frozen=True)
class VariantFit:
    """The largest micro batch of one variant that fits (0: not even 1)."""

    variant: Variant
    micro_batch: int
    memory: MemoryBreakdown | None  # at micro_batch (None when 0)
    at_one: MemoryBreakdown  # at micro batch 1: the least this variant needs
    next_up: MemoryBreakdown | None  # at the next candidate above micro_batch, if estimated


@dataclass(frozen=True)
class Timed:
    """One (variant, micro batch) that fits, with its predicted time."""

    fit: VariantFit  # its memory is at `micro_batch`
    micro_batch: int
    seconds: float | None  # per epoch (per 1M tokens without data); None: no time model


@dataclass(frozen=True)
class Choice:
    method: Method
    seq_len: int
    packing: bool
    micro_batch: int
    fit: VariantFit
    fits: tuple[VariantFit, ...]  # every variant evaluated for this method, in order
    micro_cap: int
    cap_reason: str
    # the fastest candidate of each variant that fits, fastest first (the chosen one first)
    ranked: tuple[Timed, ...] = ()

    @property
    def seconds(self) -> float | None:
        return self.ranked[0].seconds if self.ranked else None


def gib(x: float) -> str:
    return f"{x:.1f} GiB"


class Search:
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
        chat: ChatChoice | None = None,
        data: DataSpec | None = None,
        fused_ce: bool = False,
        host_memory_gib: float | None = None,
    ):
        self.hardware = hardware
        # host RAM per node for CPU offload (read by the caller); None: the policy's
        self.host_memory_gib = host_memory_gib
        self.data = data
        # Liger's fused linear cross-entropy: installed, supported for this model, CUDA.
        self.fused_ce = fused_ce
        # Accumulation aims at the policy's tokens per step: it needs the data's lengths.
        self.step_tokens = StepTokens(data, policy)
        self.chat = chat  # its new tokens make embed_tokens/lm_head train (LoRA/QLoRA)
        # MoE: adapt the experts' fused tensors too; off when only attention-only LoRA fits.
        self.adapt_experts = True
        self.model = model
        self.policy = policy
        self.budget = budget
        self.precision = precision
        self.attn = attn
        self.world = 1 if hardware.is_cpu else hardware.world_size
        self.forced_distributed = distributed
        self.calibration = calibration
        self._memo: dict[TrainSetup, MemoryBreakdown] = {}
        self.freeze_layers: float | None = None  # --freeze-layers (planner/freeze.py)

    # ---------------------------------------------------------------- variants
    def distributed_for(self, variant: Variant, world: int | None = None) -> Distributed | None:
        """The `distributed` value of a variant here, or None when it does not apply."""
        world = self.world if world is None else world
        forced = self.forced_distributed
        if world == 1:
            return None if variant.sharded else "none"
        if variant.strategy is not None:
            return variant.strategy
        if forced is None:
            return self.policy.sharded if variant.sharded else "ddp"
        # --distributed picks the one strategy; zero1/zero2 keep a replica of the weights.
        if forced in SHARDED_CHOICES:
            return forced if variant.sharded else None
        if forced in PARTIAL_CHOICES and variant.sharded:
            # zero1/zero2 keep the weights: a sharded rung adds only its CPU offload
            return forced if variant.offload else None
        return None if variant.sharded else forced

    def optimizer_for(self, variant: Variant) -> str | None:
        if self.hardware.is_cpu:
            # bitsandbytes optimizers need a GPU.
            return self.policy.cpu_optimizer if variant.optimizer == "default" else None
        return self.policy.optimizers[variant.optimizer]

    def variants(self) -> list[Variant]:
        """The ladder's rungs that apply here, each followed by its fused cross-entropy
        twin when that is allowed: the order is the tie-break (simpler first).

        A sharded rung is tried with the policy's partial sharding (ZeRO-2: a weight
        replica) before its full sharding, unless --distributed names the strategy.
        Activation offloading and selective checkpointing need Axolotl's
        gradient_checkpointing, which FSDP replaces with its own: not with FSDP, and not
        on a CPU; selective checkpointing saves the SDPA/flash kernels, not eager."""
        out: list[Variant] = []
        for rung in self.policy.ladder:
            for v in self._strategies(rung):
                dist = self.distributed_for(v)
                if dist is None or self.optimizer_for(v) is None:
                    continue
                axolotl_gc = dist != "fsdp" and not self.hardware.is_cpu
                if (v.activation_offloading or v.selective) and not axolotl_gc:
                    continue
                if v.selective and self.attn == "eager":
                    continue
                out.append(v)
                if self.fused_ce:
                    out.append(replace(v, fused_ce=True))
        return out

    def _strategies(self, rung: Variant) -> list[Variant]:
        partial = self.policy.partial_sharding
        if not rung.sharded or self.world == 1 or self.forced_distributed or partial is None:
            return [rung]
        return [replace(rung, strategy=partial), replace(rung, strategy=self.policy.sharded)]

    def lightest_variant(self) -> Variant:
        return self.variants()[-1]

    def label(self, v: Variant) -> str:
        """A variant as the explanations name it."""
        parts = [
            "gradient checkpointing" if v.gradient_checkpointing else "no gradient checkpointing"
        ]
        if self.world > 1:
            parts.append(self.distributed_for(v) or "?")
        parts.append(self.optimizer_for(v) or "?")
        if v.fused_ce:
            parts.append("fused cross-entropy")
        if v.selective:
            parts.append("selective checkpointing")
        if v.activation_offloading:
            parts.append("activation offloading")
        if v.offload:
            parts.append("CPU offload")
        return ", ".join(parts)

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
        ga = self.step_tokens.accumulation(seq_len, packing, micro_batch, world)
        quantize_moe = self.quantize_moe_experts(method)
        targets, parameters = self.lora_targets(method)
        return TrainSetup(
            model=self.model,
            method=method,
            precision=self.precision,
            lora_r=lora.r if lora else 0,
            lora_targets=targets,
            lora_target_parameters=parameters,
            # PEFT's ParamWrapper refuses dropout, and Axolotl 0.19's schema with it.
            lora_dropout=lora.dropout if lora and not parameters else 0.0,
            sequence_len=seq_len,
            micro_batch_size=micro_batch,
            sample_packing=packing,
            gradient_checkpointing=variant.gradient_checkpointing,
            activation_offloading=variant.activation_offloading,
            selective_checkpointing=variant.selective,
            fused_cross_entropy=variant.fused_ce,
            cpu_offload=variant.offload and dist != "none" and dist != "ddp",
            attn_implementation=self.attn,
            optimizer=self.optimizer_for(variant) or self.policy.optimizers["default"],
            num_gpus=world,
            distributed=dist,
            # bitsandbytes must store NF4 in a float dtype for ZeRO-3/FSDP to shard it.
            quant_storage_bf16=method == "qlora" and dist in SHARDED_CHOICES,
            gradient_accumulation_steps=ga,
            quantize_moe_experts=quantize_moe,
            lora_modules_to_save=self.chat.modules_to_save if self.chat and lora else (),
            # method "freeze" only (planner/freeze.py)
            trainable_layers=(
                freeze.trainable_layers(self.model, self.policy, self.freeze_layers)
                if method == "freeze"
                else 0
            ),
            train_head=method == "freeze" and self.policy.freeze.train_head,
        )

    def lora_targets(self, method: Method) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(lora_target_modules, lora_target_parameters) of a method.

        The policy's "all-linear" means every weight matrix of a block. MoE experts are
        fused 3D tensors in transformers 5, not nn.Linear, so PEFT adapts them only
        through target_parameters (a ParamWrapper per tensor); the router stays frozen.
        """
        lora = self.policy.lora.get(method)
        targets = tuple(lora.targets) if lora else ()
        if targets != ("all-linear",):
            return targets, ()
        experts = memory.expert_parameters(self.model) if self.adapt_experts else ()
        if self.quantize_moe_experts(method):
            # Axolotl 0.19 refuses quantize_moe_experts with lora_target_linear: name the
            # same layers (every nn.Linear of a block) instead.
            targets = tuple(dict.fromkeys(ls.name for ls in self.model.linears if ls.nn_linear))
        return targets, experts

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
                found = self.calibration.correct(setup, found)
            self._memo[setup] = found
        return found

    def seconds(self, setup: TrainSetup) -> float | None:
        """Predicted seconds per epoch of `setup` (per 1M tokens without data)."""
        from axo_helper.planner.lengths import row_fate
        from axo_helper.planner.timing import timing

        data = self.data
        fate = row_fate(data, setup.sequence_len) if data is not None and data.rows > 0 else None
        ga = setup.gradient_accumulation_steps or 1
        t = timing(self.hardware, self.policy, setup, fate, ga, self.calibration)
        if t.seconds_per_epoch is not None:
            return t.seconds_per_epoch
        if t.tokens_per_second:
            return 1e6 / t.tokens_per_second
        return None

    def fits(self, bd: MemoryBreakdown) -> bool:
        """Within the GPU budget, and what it offloads within the node's host memory."""
        return self.host_fits(bd) and bd.total_gib <= self.budget

    def host_budget(self) -> float:
        """Host memory per node that CPU offload may use (read, or the policy's assumption)."""
        from axo_helper.planner.speed import gpu_class

        speed = self.policy.speed
        host = self.host_memory_gib
        if host is None:
            gpu = self.hardware.gpu
            consumer = gpu is not None and gpu_class(gpu) == "consumer"
            per_gpu = (
                speed.host_memory_gib_per_gpu_consumer
                if consumer
                else speed.host_memory_gib_per_gpu_datacenter
            )
            host = per_gpu * max(1, self.hardware.num_gpus)
        return host * speed.host_memory_fraction

    def host_fits(self, bd: MemoryBreakdown) -> bool:
        """What every rank of a node offloads fits in its host memory (the policy's share)."""
        return bd.host_gib * max(1, self.hardware.num_gpus) <= self.host_budget()

    def fit(
        self,
        method: Method,
        seq_len: int,
        packing: bool,
        variant: Variant,
        cap: int,
        exact: int | None = None,
    ) -> VariantFit:
        """Largest candidate micro batch <= cap that fits (or exactly `exact`)."""

        def setup_for(mb: int) -> TrainSetup:
            return self.setup(method, seq_len, packing, variant, mb)

        at_one = self.estimate(setup_for(1))
        if not self.host_fits(at_one):  # offload needs more host memory than the node has
            return VariantFit(variant, 0, None, at_one, None)
        if exact is not None:
            candidates: tuple[int, ...] = (exact,)
        else:
            candidates = tuple(c for c in self.policy.micro_batch_candidates if c <= cap)
        found = fit_rule.largest_fit(setup_for, self.budget, candidates, self.estimate)
        return VariantFit(variant, found.micro_batch, found.memory, at_one, found.next_up)

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


def candidate_methods(hardware: Hardware, policy: Policy, method: Method | None) -> list[Method]:
    if method is not None:
        return [method]
    if hardware.is_cpu:
        return list(policy.cpu_methods)  # its own order (policy.yaml says why)
    return list(policy.preference)


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, math.ceil(value / multiple) * multiple)


def choose_seq_len(
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


def shrinking(seq: int, policy: Policy, floor: int | None = None) -> Iterator[int]:
    """seq, then halves rounded down to the policy multiple, down to its minimum.

    `floor` (planner.lengths.shortest_allowed): the last length is never below it, so
    a halving that would drop more rows than the policy allows stops at the floor.
    """
    yield seq
    while True:
        nxt = (seq // 2) // policy.seq_len_multiple * policy.seq_len_multiple
        nxt = max(nxt, policy.seq_len_min, floor or 0)
        if nxt >= seq:
            return
        seq = nxt
        yield seq
