"""How fast a candidate trains: achieved throughput and communication, per GPU class.

The time model the planner chooses by (docs/plan.md, "Time"). Pure arithmetic over the
setup, the hardware and policy.yaml `speed:`; the calibration store's measured tokens/s
replace it where they exist (planner/timing.py).

  compute   FLOPs per token (timing.flops_per_token: recompute under checkpointing,
            LoRA's frozen-weight backward) at an utilisation that grows with the work in
            one micro step; NF4 dequantization multiplies QLoRA's matmul time
  comm      what each optimizer step moves between GPUs (DDP/ZeRO-1/2: the gradients;
            ZeRO-3/FSDP: every parameter gathered for forward, backward and recompute,
            each micro step) over NVLink or PCIe, partly hidden behind compute
  offload   ZeRO/FSDP CPU offload: the gradients and parameters over PCIe and the
            optimizer step on the CPU; activation offloading: the saved block inputs
            down and back up over PCIe each micro step, on side streams that overlap
            compute like communication does
"""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.memory.activations import activations
from axo_helper.memory.params import trainable_params
from axo_helper.planner.policy import SpeedPolicy
from axo_helper.specs import GPU, Hardware, TrainSetup

_CONSUMER_WORDS = ("geforce", "rtx", "titan", "radeon")
_SHARDS_PARAMS = ("zero3", "fsdp")


def gpu_class(gpu: GPU) -> str:
    """datacenter or consumer (GeForce/RTX/Radeon): their sustained utilisation differs."""
    name = gpu.name.lower()
    return "consumer" if any(w in name for w in _CONSUMER_WORDS) else "datacenter"


def utilisation(setup: TrainSetup, gpu: GPU, speed: SpeedPolicy, tokens_per_micro: float) -> float:
    """Model-FLOPs utilisation of one micro step (before communication and offload)."""
    peak = speed.peak_mfu_consumer if gpu_class(gpu) == "consumer" else speed.peak_mfu_datacenter
    w = tokens_per_micro * setup.model.hidden_size
    mfu = peak * w / (w + speed.half_busy_tokens_x_hidden)
    if setup.method == "qlora":
        mfu /= speed.nf4_matmul_factor
    elif setup.load_in_8bit:
        mfu /= speed.int8_matmul_factor
    return mfu


@dataclass(frozen=True)
class StepCost:
    """Seconds of one optimizer step, by part."""

    compute: float
    comm: float  # exposed (not hidden) communication
    offload: float  # host transfers and the CPU optimizer step

    @property
    def total(self) -> float:
        return self.compute + self.comm + self.offload


def link_gbps(hardware: Hardware, speed: SpeedPolicy) -> float:
    """GB/s per direction between the ranks: NVLink within a node when the profile has
    it, PCIe otherwise (and across nodes, a conservative stand-in for the network)."""
    gpu = hardware.gpu
    if hardware.nodes > 1 or gpu is None or gpu.link_gbps is None:
        return speed.pcie_gbps
    return gpu.link_gbps


def step_cost(
    setup: TrainSetup,
    hardware: Hardware,
    speed: SpeedPolicy,
    *,
    compute_seconds: float,
    accumulation: int,
) -> StepCost:
    """One optimizer step of `setup`: `compute_seconds` of matmuls (all micro steps),
    plus what distribution and offload add."""
    world = hardware.world_size
    elem = 4 if setup.precision == "fp32" else 2
    comm_bytes = 0.0
    if world > 1 and setup.distributed != "none":
        trainable = trainable_params(setup)
        # a ring all-reduce or reduce-scatter + all-gather moves ~2x the data per rank
        ring = 2.0 * (world - 1) / world
        comm_bytes = ring * trainable * elem
        if setup.distributed in _SHARDS_PARAMS:
            # every weight is gathered for forward and backward (and for the recompute
            # under checkpointing), on each micro step: frozen bases too
            gathers = 3 if setup.gradient_checkpointing else 2
            weights = setup.model.total_params * _weight_bytes(setup)
            comm_bytes += gathers * accumulation * (world - 1) / world * weights
    comm = comm_bytes / (link_gbps(hardware, speed) * 1e9)
    exposed = max(comm * (1.0 - speed.comm_overlap), comm - compute_seconds)
    offload = 0.0
    if setup.cpu_offload and setup.distributed != "none":
        per_rank = trainable_params(setup) / max(1, world)
        # fp16 gradients down, fp16 parameters back up, then CPUAdam on the host
        offload = 2 * per_rank * elem / (speed.pcie_gbps * 1e9)
        offload += per_rank / speed.cpu_adam_params_per_s
        if setup.distributed in _SHARDS_PARAMS:
            # offloaded parameters come over PCIe for each gather instead of NVLink
            weights = setup.model.total_params * _weight_bytes(setup) / max(1, world)
            offload += 2 * accumulation * weights / (speed.pcie_gbps * 1e9)
    if setup.activation_offloading and setup.gradient_checkpointing:
        moved = 2 * accumulation * activations(setup).host / (speed.pcie_gbps * 1e9)
        offload += max(moved * (1.0 - speed.comm_overlap), moved - compute_seconds)
        offload += speed.activation_offload_overhead * compute_seconds
    return StepCost(compute=compute_seconds, comm=max(0.0, exposed), offload=offload)


def _weight_bytes(setup: TrainSetup) -> float:
    if setup.method == "qlora":
        return 0.55  # NF4 + its scales, gathered as stored
    if setup.load_in_8bit:
        return 1.0
    return 4.0 if setup.precision == "fp32" else 2.0
