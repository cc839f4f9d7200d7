"""The planner: hardware + model + data + policy -> a Plan that fits, and why.

Pure: no I/O besides `load_policy`, no torch. Every judgement call lives in
presets/policy.yaml; docs/plan.md explains the rules. In short:

1. precision and attention follow the GPU (bf16 + FlashAttention-2 from compute
   capability 8.0; fp16 + SDPA below; fp32 + SDPA on CPU);
2. sequence_len from the data's p99 (or the policy default), capped by the model;
   without --seq-len it is halved until something fits;
3. at each sequence length, methods in the policy's preference order; the first
   that fits wins (full only for models up to the policy's size, with the default
   optimizer and no offload);
4. for a method, every candidate of the policy's ladder (checkpointing, DDP or
   ZeRO-3/FSDP, 8-bit/paged optimizers, CPU offload, each with Liger's fused
   cross-entropy where it is installed and supports the model) is fitted at its
   largest micro batch up to the one that keeps the GPU busy (fit.py's rule), every
   fitting micro batch is timed (speed.py, timing.py), and the fastest wins; ties
   within the policy's tie band go to the simpler candidate. More memory only adds
   candidates, so it never gives a slower plan;
5. everything that was tried and not chosen is recorded as Rejected, with its
   memory, its predicted time and the reason.

Modules:
  policy.py        Policy, parse_policy, load_policy (presets/policy.yaml, validated)
  device.py        budget, precision and attention from the hardware
  search.py        candidate setups, the ladder, the fastest (variant, micro batch) that fits
  speed.py         the time model's throughput per GPU class, communication, offload
  longest.py       `plan --longest`: the longest sequence per memory option
  explain.py       reasons and rejected alternatives
  plan_warnings.py what the operator should know about the chosen setup
  nothing_fits.py  the PlanError naming the smallest change that fits
  lengths.py       what Axolotl does with each row at a sequence_len (dropped, split)
  timing.py        the time model (flops_per_token, steps and seconds per epoch)
  settings.py      the other config values (tf32, seed, val_set_size, LoRA kernels, ...)
  decide.py        plan(): the steps above, in order
"""

from axo_helper import memory  # noqa: F401  (tests patch planner.memory.estimate)
from axo_helper.planner.decide import plan
from axo_helper.planner.policy import LoraPolicy, Policy, Variant, load_policy, parse_policy
from axo_helper.planner.timing import flops_per_token

__all__ = [
    "LoraPolicy",
    "Policy",
    "Variant",
    "flops_per_token",
    "load_policy",
    "parse_policy",
    "plan",
]
