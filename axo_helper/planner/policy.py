"""The policy: presets/policy.yaml as a validated, frozen value (docs/plan.md explains each key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from axo_helper.errors import AxoHelperError, UsageError
from axo_helper.specs import METHODS, Distributed, Method

OPTIMIZER_KEYS = ("default", "eight_bit", "paged")
SHARDED_CHOICES: tuple[Distributed, ...] = ("zero3", "fsdp")
# Keep a replica of the weights, shard the gradients and optimizer states (DeepSpeed).
PARTIAL_CHOICES: tuple[Distributed, ...] = ("zero1", "zero2")


@dataclass(frozen=True)
class LoraPolicy:
    r: int
    alpha: int
    dropout: float
    targets: tuple[str, ...]


@dataclass(frozen=True)
class FreezePolicy:
    """Partial fine-tuning (method "freeze"): how many blocks train, and when it may be
    chosen without --method (only where methods.preference lists it)."""

    trainable_fraction: float  # share of the blocks that train without --freeze-layers
    train_head: bool  # train the output head with them
    max_params_b: float  # chosen automatically only for models up to this size


# A policy file written before "freeze" existed plans it like this.
DEFAULT_FREEZE = FreezePolicy(trainable_fraction=0.25, train_head=False, max_params_b=3.0)


@dataclass(frozen=True)
class Variant:
    """One rung of the ladder: how much speed to give up for memory."""

    sharded: bool
    optimizer: str  # a key of Policy.optimizers: default | eight_bit | paged
    gradient_checkpointing: bool
    # Liger's fused linear cross-entropy (never the b*s*V logits); the search adds a
    # fused twin of every rung where the integration is installed and supports the model.
    fused_ce: bool = False
    # ZeRO/FSDP CPU offload of the optimizer states (and, fully sharded, the parameters)
    offload: bool = False
    # Axolotl activation_offloading: the checkpointed blocks' inputs in host memory
    activation_offloading: bool = False
    # Axolotl selective_checkpointing: the attention outputs kept, not recomputed
    selective: bool = False
    # The sharding strategy of a sharded rung, set when the search expands it into each
    # of the policy's strategies (distributed.partial, then distributed.sharded).
    strategy: Distributed | None = None


@dataclass(frozen=True)
class SpeedPolicy:
    """policy.yaml `speed:`: the assumptions the time model chooses by."""

    peak_mfu_datacenter: float
    peak_mfu_consumer: float
    half_busy_tokens_x_hidden: float
    nf4_matmul_factor: float
    int8_matmul_factor: float
    pcie_gbps: float
    comm_overlap: float
    cpu_adam_params_per_s: float
    activation_offload_overhead: float
    host_memory_gib_per_gpu_datacenter: float
    host_memory_gib_per_gpu_consumer: float
    host_memory_fraction: float
    tie_fraction: float


@dataclass(frozen=True)
class FusedCEPolicy:
    """policy.yaml `fused_cross_entropy:` (Liger's fused linear cross-entropy)."""

    enabled: bool
    package: str  # the import name the caller checks
    install: str
    model_types: frozenset[str]

    def supports(self, model_type: str) -> bool:
        return self.enabled and model_type in self.model_types


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
    target_tokens_per_step: int
    min_steps_per_epoch: int
    micro_batch_candidates: tuple[int, ...]
    busy_tokens_x_hidden: int
    seq_len_default: int
    seq_len_multiple: int
    seq_len_min: int
    seq_len_shrink_to_fit: bool
    min_rows_kept: float
    packing_max_mean_fraction: float
    packing_min_seq_len: int
    packing_efficiency: float
    optimizers: Mapping[str, str]
    cpu_optimizer: str
    sharded: Distributed
    ladder: tuple[Variant, ...]
    multi_node_scaling: float
    cpu_memory_fraction: float
    cpu_assumed_memory_gib: float
    cpu_methods: tuple[Method, ...]
    cpu_sample_packing: bool
    speed: SpeedPolicy
    fused_ce: FusedCEPolicy
    freeze: FreezePolicy = DEFAULT_FREEZE
    # Tried before `sharded` on sharded rungs: a weight replica with ZeRO-sharded
    # gradients and states (same traffic as DDP). None: only `sharded`.
    partial_sharding: Distributed | None = None

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


def _lora(r: _PolicyReader) -> dict[str, LoraPolicy]:
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
    return lora


def _rates(r: _PolicyReader) -> dict[str, tuple[tuple[float | None, float], ...]]:
    rates: dict[str, tuple[tuple[float | None, float], ...]] = {}
    for method in METHODS:
        if method == "freeze" and "freeze" not in r.get("learning_rate"):
            rates[method] = rates["full"]  # a policy file from before "freeze"
            continue
        rows = r.get(f"learning_rate.{method}")
        if not isinstance(rows, list) or not rows:
            raise r.bad(f"learning_rate.{method}", "expected a list of {max_params_b, value}")
        parsed: list[tuple[float | None, float]] = []
        for i, row in enumerate(rows):
            sub = _PolicyReader(row, r.where)
            value = sub.number("value", lo=0.0, hi=1.0)
            limit = sub.number("max_params_b", lo=0.0) if "max_params_b" in row else None
            if i == len(rows) - 1 and limit is not None:
                raise r.bad(f"learning_rate.{method}", "the last row must have no max_params_b")
            parsed.append((limit, value))
        rates[method] = tuple(parsed)
    return rates


def _candidates(r: _PolicyReader) -> tuple[int, ...]:
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
    return tuple(candidates)


def _ladder(r: _PolicyReader) -> tuple[Variant, ...]:
    ladder_raw = r.get("ladder")
    if not isinstance(ladder_raw, list) or not ladder_raw:
        raise r.bad("ladder", "expected a list of variants")
    ladder: list[Variant] = []
    for i, row in enumerate(ladder_raw):
        sub = _PolicyReader(row, f"{r.where} ladder[{i}]")
        opt = sub.text("optimizer")
        if opt not in OPTIMIZER_KEYS:
            raise sub.bad("optimizer", f"expected one of {', '.join(OPTIMIZER_KEYS)}")
        offload = sub.flag("offload") if "offload" in row else False
        if offload and not sub.flag("sharded"):
            raise sub.bad("offload", "CPU offload needs sharded: true (ZeRO or FSDP)")
        gc = sub.flag("gradient_checkpointing")
        acts = sub.flag("activation_offloading") if "activation_offloading" in row else False
        if acts and not gc:
            raise sub.bad(
                "activation_offloading", "activation offloading needs gradient_checkpointing: true"
            )
        selective = sub.flag("selective_checkpointing") if "selective_checkpointing" in row else False
        if selective and not gc:
            raise sub.bad(
                "selective_checkpointing", "selective checkpointing needs gradient_checkpointing: true"
            )
        ladder.append(
            Variant(
                sub.flag("sharded"),
                opt,
                gc,
                offload=offload,
                activation_offloading=acts,
                selective=selective,
            )
        )
    return tuple(ladder)


def _freeze(r: _PolicyReader) -> FreezePolicy:
    if "freeze" not in r.raw:
        return DEFAULT_FREEZE
    return FreezePolicy(
        trainable_fraction=r.number("freeze.trainable_fraction", lo=0.01, hi=1.0),
        train_head=r.flag("freeze.train_head"),
        max_params_b=r.number("freeze.max_params_b", lo=0.0),
    )


def _fused_ce(r: _PolicyReader) -> FusedCEPolicy:
    types = r.get("fused_cross_entropy.model_types")
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise r.bad("fused_cross_entropy.model_types", "expected a list of model_type names")
    return FusedCEPolicy(
        enabled=r.flag("fused_cross_entropy.enabled"),
        package=r.text("fused_cross_entropy.package"),
        install=r.text("fused_cross_entropy.install"),
        model_types=frozenset(types),
    )


def parse_policy(raw: Any, where: str = "presets/policy.yaml") -> Policy:
    """Build a Policy from parsed YAML; raises AxoHelperError naming a bad key."""
    r = _PolicyReader(raw, where)
    # Read in the order the checks always ran, so the first bad key reported is the same.
    lora = _lora(r)
    rates = _rates(r)
    candidates = _candidates(r)
    optimizers = {k: r.text(f"optimizer.{k}") for k in OPTIMIZER_KEYS}
    sharded = r.text("distributed.sharded")
    if sharded not in SHARDED_CHOICES:
        raise r.bad("distributed.sharded", f"expected one of {', '.join(SHARDED_CHOICES)}")
    ladder = _ladder(r)
    partial = r.get("distributed.partial") if "partial" in (r.get("distributed") or {}) else None
    if partial is not None and partial not in PARTIAL_CHOICES:
        raise r.bad("distributed.partial", f"expected null or one of {', '.join(PARTIAL_CHOICES)}")

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
        target_tokens_per_step=r.integer("batch.target_tokens_per_step"),
        min_steps_per_epoch=r.integer("batch.min_steps_per_epoch"),
        micro_batch_candidates=candidates,
        busy_tokens_x_hidden=r.integer("batch.busy_tokens_x_hidden"),
        seq_len_default=r.integer("sequence_len.default"),
        seq_len_multiple=r.integer("sequence_len.multiple"),
        seq_len_min=r.integer("sequence_len.min"),
        seq_len_shrink_to_fit=r.flag("sequence_len.shrink_to_fit"),
        min_rows_kept=r.number("sequence_len.min_rows_kept", lo=0.0, hi=1.0),
        packing_max_mean_fraction=r.number("sample_packing.max_mean_fraction", lo=0.0, hi=1.0),
        packing_min_seq_len=r.integer("sample_packing.min_sequence_len"),
        packing_efficiency=r.number("sample_packing.efficiency", lo=0.1, hi=1.0),
        optimizers=optimizers,
        cpu_optimizer=r.text("optimizer.cpu"),
        sharded=sharded,
        partial_sharding=cast("Distributed | None", partial),
        ladder=ladder,
        multi_node_scaling=r.number("multi_node", lo=0.01, hi=1.0),
        cpu_memory_fraction=r.number("cpu.memory_fraction", lo=0.01, hi=1.0),
        cpu_assumed_memory_gib=r.number("cpu.assumed_memory_gib", lo=0.1),
        cpu_methods=r.methods("cpu.methods"),
        cpu_sample_packing=r.flag("cpu.sample_packing"),
        fused_ce=_fused_ce(r),
        speed=SpeedPolicy(
            peak_mfu_datacenter=r.number("speed.peak_mfu.datacenter", lo=0.01, hi=1.0),
            peak_mfu_consumer=r.number("speed.peak_mfu.consumer", lo=0.01, hi=1.0),
            half_busy_tokens_x_hidden=r.number("speed.half_busy_tokens_x_hidden", lo=1.0),
            nf4_matmul_factor=r.number("speed.nf4_matmul_factor", lo=1.0, hi=10.0),
            int8_matmul_factor=r.number("speed.int8_matmul_factor", lo=1.0, hi=10.0),
            pcie_gbps=r.number("speed.pcie_gbps", lo=0.1),
            comm_overlap=r.number("speed.comm_overlap", lo=0.0, hi=1.0),
            cpu_adam_params_per_s=r.number("speed.cpu_adam_params_per_s", lo=1.0),
            activation_offload_overhead=r.number(
                "speed.activation_offload_overhead", lo=0.0, hi=1.0
            ),
            host_memory_gib_per_gpu_datacenter=r.number(
                "speed.host_memory_gib_per_gpu.datacenter", lo=1.0
            ),
            host_memory_gib_per_gpu_consumer=r.number(
                "speed.host_memory_gib_per_gpu.consumer", lo=1.0
            ),
            host_memory_fraction=r.number("speed.host_memory_fraction", lo=0.05, hi=1.0),
            tie_fraction=r.number("speed.tie_fraction", lo=0.0, hi=0.5),
        ),
        freeze=_freeze(r),
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
