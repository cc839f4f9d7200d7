"""`axo-helper trace`: the memory of a config's real training step, traced on fake tensors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from axo_helper.trace import ConfigTrace

_LABELS = {
    "weights": "weights",
    "state": "gradients + optimizer",
    "activations": "activations",
    "logits": "logits + loss",
    "step": "step's own tensors",
    "allocated": "peak (allocated)",
}


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model",
    default=None,
    metavar="ID|DIR",
    help="Architecture when base_model does not resolve offline (preset, cached id, local dir).",
)
@click.option(
    "--layers",
    type=click.IntRange(min=1, max=512),
    default=None,
    help="Trace only this many blocks (each block adds the same bytes; faster).",
)
@click.option(
    "--hold-outputs",
    is_flag=True,
    help="Keep the model's outputs through backward, as a hand-written loop does "
    "(HF Trainer frees the logits before backward).",
)
@click.option("json_", "--json", is_flag=True, help="Print the result as one JSON object.")
def trace(
    config: Path, model: str | None, layers: int | None, hold_outputs: bool, json_: bool
) -> None:
    """Run one training step of CONFIG on fake tensors and count its memory.

    Builds the base model's real transformers class from its config.json (no
    weights, no GPU), applies LoRA/QLoRA and checkpointing as Axolotl does, runs
    forward, loss, backward and the optimizer step, and prints the peak beside
    the estimate. Needs the train extra (torch, transformers, peft).
    """
    import importlib.util

    from axo_helper.errors import MissingExtraError
    from axo_helper.output import emit_json

    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "peft")):
        raise MissingExtraError("axo-helper trace")
    from axo_helper.trace import trace_config

    result = trace_config(config, model=model, layers=layers, hold_outputs=hold_outputs)
    if json_:
        emit_json(result.as_dict())
        return
    _show(result)


def _show(t: ConfigTrace) -> None:
    d = t.result.as_dict()
    layers = f", {t.result.layers} blocks" if t.result.layers else ""
    click.echo(f"trace of {t.config} ({t.model}{layers}, {d['seconds']} s)")
    click.echo(f"  {'':<24}{'traced GiB':>11}{'estimate':>10}{'error':>8}")
    for key, label in _LABELS.items():
        err = d["error"][key]
        err_s = f"{err:+.1%}" if err is not None else "-"
        click.echo(
            f"  {label:<24}{d['traced_gib'][key]:>11.3f}{d['estimated_gib'][key]:>10.3f}{err_s:>8}"
        )
    click.echo(f"  step's own tensors peak in: {d['peak_phase']}")
    phases = ", ".join(f"{k} {v:.2f}" for k, v in d["phase_peak_gib"].items())
    click.echo(f"  live at each phase's peak (GiB): {phases}")
    top = list(d["by_module_gib"].items())[:6]
    click.echo("  at the step peak, by module: " + ", ".join(f"{k} {v:.3f}" for k, v in top))
    for note in d["notes"]:
        click.echo(f"  note: {note}")
    click.echo(
        "  not traced: CUDA context, cuBLAS workspace, allocator reserve (constants in the estimate)"
    )
