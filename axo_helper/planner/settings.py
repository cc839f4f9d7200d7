"""The config values beyond the TrainSetup that the planner decides: tf32, seed, eval split,
Axolotl's gradient_checkpointing key, LoRA kernels, the CPU dataloader keys,
excess_length_strategy and batch_flattening.

Pure: render lays these out with their reasons instead of deciding them itself.
"""

from __future__ import annotations

from axo_helper.specs import ConfigSettings, DataSpec, Hardware, RowFate, Setting, TrainSetup

SEED = 42


def decide_settings(
    hardware: Hardware,
    setup: TrainSetup,
    data: DataSpec | None,
    gc_reason: str,
    fate: RowFate | None = None,
) -> ConfigSettings:
    """`gc_reason`: the planner's reason for TrainSetup.gradient_checkpointing;
    `fate`: what the chosen sequence_len does to the rows (planner.lengths.row_fate)."""
    gpu = hardware.gpu
    cuda = gpu is not None and gpu.cuda
    tf32 = gpu is not None and gpu.tf32
    on_cpu = hardware.is_cpu
    return ConfigSettings(
        tf32=Setting(tf32, "TF32 matmuls (Ampere and newer)" if tf32 else "no TF32 on this device"),
        # Axolotl shuffles the prepared data with `seed`; unset, every run sees another order.
        seed=Setting(SEED, "fixed data order: two runs of this file train on the same order"),
        val_set_size=val_set_size(data),
        gradient_checkpointing=_gradient_checkpointing(setup, gc_reason),
        lora_kernels=None if setup.method == "full" else _lora_kernels(cuda, setup),
        dataloader_pin_memory=Setting(False, "no GPU to pin memory for") if on_cpu else None,
        dataset_num_proc=(
            Setting(1, "one tokenizing process: extra workers each re-import torch on CPU")
            if on_cpu
            else None
        ),
        excess_length_strategy=excess_length_strategy(fate),
        batch_flattening=batch_flattening(setup),
    )


# Axolotl 0.19 (schemas/validation.check_batch_flattening_fa) flattens a batch only with
# a varlen attention kernel; the planner picks flash_attention_2 where there is one.
_VARLEN_ATTENTION = ("flash_attention_2",)


def batch_flattening(setup: TrainSetup) -> Setting | None:
    """Padding-free batches where nothing else removes the padding.

    Unpacked micro batches of several samples are padded to their longest sample;
    Axolotl's batch_flattening (DataCollatorWithFlattening) concatenates them instead,
    with attention kept within each sample. None where it does not apply: packing
    has no padding, one sample per micro batch has none, and SDPA/eager cannot do it.
    """
    if setup.sample_packing or setup.micro_batch_size < 2:
        return None
    if setup.attn_implementation not in _VARLEN_ATTENTION:
        return None
    return Setting(
        True,
        f"padding-free: {setup.micro_batch_size} unpacked samples per micro batch are "
        "concatenated, not padded to the longest",
    )


def excess_length_strategy(fate: RowFate | None) -> Setting | None:
    """Written whenever rows are over sequence_len, so the config says what happens to them.

    Drop, not truncate: a truncated chat or answer loses its end, so the model trains on
    replies cut mid-turn that never reach their terminator. Completion rows are split
    into chunks that all fit: the key does not apply (None).
    """
    if fate is None or fate.handling == "split" or not (fate.rows_dropped + fate.rows_truncated):
        return None
    lost = fate.rows_dropped + fate.rows_truncated
    share = 100.0 * lost / fate.rows if fate.rows else 0.0
    tokens = fate.tokens_dropped
    return Setting(
        fate.handling,
        f"{lost:,} of {fate.rows:,} rows ({share:.1f}%, {tokens:,} tokens) are longer than "
        f"{fate.sequence_len:,} tokens; a truncated reply would train without its end",
    )


def val_set_size(data: DataSpec | None) -> Setting:
    """The share of rows held out for eval loss: none on small data."""
    rows = data.rows if data else 0
    if rows >= 2000:
        return Setting(0.02, f"{rows:,} rows: hold out 2% to watch eval loss")
    if rows >= 500:
        return Setting(0.05, f"{rows:,} rows: hold out 5% to watch eval loss")
    return Setting(0.0, f"{rows:,} rows: too few to hold out an evaluation split")


def _gradient_checkpointing(setup: TrainSetup, gc_reason: str) -> Setting:
    if setup.distributed == "fsdp":
        # transformers refuses gradient_checkpointing together with FSDP's own
        # activation checkpointing; FSDP2 does it per wrapped block.
        return Setting(False, "FSDP checkpoints activations instead (fsdp_config)")
    return Setting(bool(setup.gradient_checkpointing), gc_reason)


def _lora_kernels(cuda: bool, setup: TrainSetup) -> Setting:
    # Axolotl turns its fused Triton LoRA kernels on when these are unset (and warns
    # that it did); they need CUDA and do not support an 8-bit base. Say which.
    if cuda and not setup.load_in_8bit:
        return Setting(
            True, "Axolotl's fused Triton LoRA kernels (it turns them off where unsupported)"
        )
    if not cuda:
        return Setting(False, "the fused Triton kernels need a CUDA GPU")
    return Setting(False, "the fused kernels do not support an 8-bit base")
