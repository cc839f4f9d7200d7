"""`axo-helper plan`: what to run on this GPU, and why. Touches no GPU."""

from __future__ import annotations

from typing import Any

import click

from axo_helper.cli.options import plan_options, plan_request
from axo_helper.specs import Plan


@click.command()
@plan_options
@click.option(
    "json_", "--json", is_flag=True, help="Print the plan as one JSON object (docs/plan.md)."
)
@click.option(
    "--longest",
    is_flag=True,
    help="Also print the longest sequence_len that fits with each memory option "
    "(checkpointing, fused cross-entropy, 8-bit states, sharding, offload).",
)
def plan(json_: bool, longest: bool, **opts: Any) -> None:
    """Plan an Axolotl fine-tune that fits the GPU, and show the reasoning.

    \b
    axo-helper plan --gpu rtx4090 --model meta-llama/Llama-3.1-8B --data qa.jsonl
    axo-helper plan --gpu 8xh100 --model meta-llama/Llama-3.1-8B --method full --json
    """
    from axo_helper.core import longest_lengths, make_plan
    from axo_helper.output import emit_json, warn

    request = plan_request(opts)
    rows: list[Any] = []
    if longest:
        result, rows = longest_lengths(request)
    else:
        result = make_plan(request)
    if json_:
        obj = result.to_json()
        if longest:
            obj["longest"] = [r.as_dict() for r in rows]
        emit_json(obj)
    else:
        show(result)
        if longest:
            show_longest(result, rows)
    for message in result.warnings:
        warn(message)


def show_longest(p: Plan, rows: list[Any]) -> None:
    """How long can the sequences be: one row per memory option, each adding to the last."""
    from rich.table import Table

    from axo_helper.output import console

    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    t.add_column(f"longest sequence ({p.method}, micro batch 1)")
    t.add_column("tokens", justify="right")
    t.add_column("GiB", justify="right")
    t.add_column("tokens/s", justify="right")
    for r in rows:
        t.add_row(
            r.option,
            f"{r.sequence_len:,}" if r.sequence_len else "does not fit",
            f"{r.total_gib:.1f}" if r.total_gib is not None else "-",
            f"{r.tokens_per_second:,.0f}" if r.tokens_per_second else "-",
        )
    console().print(t)


def _count(n: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def show(p: Plan) -> None:
    """The human summary (rich tables on stdout; warnings go to stderr separately)."""
    from rich.table import Table

    from axo_helper.output import console

    out = console()
    s = p.setup
    r = p.reasons
    at = f" at revision {p.model.revision}" if p.model.revision else ""
    out.print(f"[bold]Plan[/bold] for {p.model.name}{at} on {p.hardware.describe()}")
    for note in p.model.notes[:1]:
        if note.startswith("architecture from the shipped preset"):
            out.print(f"  {note}")

    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    t.add_column("setting")
    t.add_column("value")
    t.add_column("why", overflow="fold")
    lora = ""
    if s.method in ("lora", "qlora"):
        lora = (
            f" (r={s.lora_r}, alpha {p.lora_alpha}, "
            f"{', '.join((*s.lora_targets, *s.lora_target_parameters))})"
        )
    t.add_row("method", f"{s.method}{lora}", r.get("method", ""))
    if s.method == "freeze":
        trained = s.model.num_layers - s.frozen_layers
        head = ", the head too" if s.train_head else ""
        t.add_row("trained blocks", f"the last {trained} of {s.model.num_layers}{head}", "")
    t.add_row("precision", s.precision, r.get("precision", ""))
    t.add_row("attention", s.attn_implementation, r.get("attn_implementation", ""))
    t.add_row("sequence length", str(s.sequence_len), r.get("sequence_len", ""))
    t.add_row("sample packing", "on" if s.sample_packing else "off", r.get("sample_packing", ""))
    gpus = f"{s.num_gpus} GPU{'s' if s.num_gpus > 1 else ''}"
    t.add_row(
        "batch",
        f"{s.micro_batch_size} micro x {p.gradient_accumulation_steps} accumulation x {gpus}"
        f" = {p.effective_batch}",
        r.get("micro_batch_size", ""),
    )
    t.add_row(
        "gradient checkpointing",
        "on" if s.gradient_checkpointing else "off",
        r.get("gradient_checkpointing", ""),
    )
    for key, label in (
        ("selective_checkpointing", "selective checkpointing"),
        ("activation_offloading", "activation offloading"),
    ):
        if key in r:  # only when the plan turns it on
            t.add_row(label, "on", r[key])
    t.add_row("optimizer", s.optimizer, r.get("optimizer", ""))
    if "fused_cross_entropy" in r:
        t.add_row(
            "cross-entropy",
            "fused (Liger)" if s.fused_cross_entropy else "standard",
            r["fused_cross_entropy"],
        )
    t.add_row("distributed", s.distributed, r.get("distributed", ""))
    trainable = _count(p.memory.trainable_params)
    if p.adapter_bytes is not None:
        trainable += f" (adapter ~{p.adapter_bytes / 1e6:,.0f} MB on disk, fp32 safetensors)"
    t.add_row("trainable parameters", trainable, "")
    t.add_row(
        "schedule",
        f"lr {p.learning_rate:g}, {p.lr_scheduler}, warmup {p.warmup_ratio:.0%}, "
        f"{p.num_epochs} epoch{'s' if p.num_epochs > 1 else ''}",
        r.get("num_epochs", ""),
    )
    out.print(t)

    m = p.memory
    mt = Table(title=None, show_header=True, header_style="bold", box=None, pad_edge=False)
    mt.add_column("memory per GPU")
    mt.add_column("GiB", justify="right")
    for label, value in (
        ("weights", m.weights_gib),
        ("trainable state (grads + optimizer)", m.trainable_state_gib),
        ("activations", m.activations_gib),
        ("logits + loss", m.logits_gib),
        ("overhead (CUDA context, allocator)", m.overhead_gib),
    ):
        mt.add_row(label, f"{value:.2f}")
    mt.add_row("[bold]total[/bold]", f"[bold]{m.total_gib:.2f}[/bold]")
    calibrated = f", calibrated from {p.calibrated_from} runs" if p.calibrated_from else ""
    mt.add_row(f"budget (after headroom{calibrated})", f"{p.budget_gib:.2f}")
    out.print()
    out.print(mt)

    if p.rejected:
        rt = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        rt.add_column("rejected")
        rt.add_column("GiB", justify="right")
        rt.add_column("why", overflow="fold")
        for rej in p.rejected:
            rt.add_row(rej.method, f"{rej.total_gib:.1f}", rej.reason)
        out.print()
        out.print(rt)

    out.print()
    if p.row_fate is not None:
        out.print(_rows_line(p))
    out.print(_time_line(p))


def _rows_line(p: Plan) -> str:
    """What the chosen sequence_len does to the rows: kept, dropped, split (planner.lengths)."""
    from axo_helper.planner.lengths import describe

    assert p.row_fate is not None
    line = f"rows: {describe(p.row_fate)}"
    if p.settings is not None and p.settings.excess_length_strategy is not None:
        line += f" (excess_length_strategy: {p.settings.excess_length_strategy.value})"
    return line


def _time_line(p: Plan) -> str:
    g = p.hardware.gpu
    if p.assumed_mfu is not None and g is not None and g.tflops_bf16:
        basis = (
            f"{g.tflops_bf16:g} TFLOP/s {p.setup.precision} per GPU x {p.assumed_mfu:.0%} assumed "
            "utilisation"
        )
    elif p.tokens_per_second:
        basis = f"measured {p.tokens_per_second:,.0f} tokens/s"
    else:
        basis = None
    if p.steps_per_epoch is None:
        per_step = (
            f"; about {_duration(p.seconds_per_step)} per step ({basis})"
            if p.seconds_per_step and basis
            else ""
        )
        return f"time: pass --data for steps and time per epoch{per_step}"
    line = f"time: {p.steps_per_epoch:,} steps per epoch"
    if p.tokens_per_epoch:
        line += f", {_count(p.tokens_per_epoch)} tokens"
    if p.seconds_per_epoch is not None and basis:
        line += f", about {_duration(p.seconds_per_epoch)} per epoch ({basis})"
    else:
        line += " (no throughput figure for this device)"
    return line
