"""`axo-helper gpus`: the GPUs NVML sees (or, with --profiles, the GPUs --gpu knows)."""

from __future__ import annotations

from typing import Any

import click

from axo_helper.output import console, emit_json, warn


@click.command()
@click.option("json_", "--json", is_flag=True, help="Print JSON (a list of objects) for scripts.")
@click.option(
    "--profiles",
    is_flag=True,
    help="List the GPU profiles that --gpu NAME accepts instead of detecting GPUs.",
)
def gpus(json_: bool, profiles: bool) -> None:
    """List this machine's NVIDIA GPUs: memory, compute capability, driver.

    Honours CUDA_VISIBLE_DEVICES. Exits 1 with a one-line reason when there is no
    GPU or no driver.
    """
    # Imported here so `axo-helper --help` does not load the presets.
    from axo_helper.errors import HardwareError
    from axo_helper.hardware.nvml import detect
    from axo_helper.hardware.profiles import gpu_as_dict, list_profiles

    if profiles:
        rows = list_profiles()
        if json_:
            emit_json(rows)
        else:
            _print_profiles(rows)
        return

    try:
        found = detect()
    except HardwareError:
        if json_:
            emit_json([])  # scripts get valid JSON: no GPUs; the reason is on stderr
        raise
    if json_:
        emit_json([gpu_as_dict(g) for g in found.gpus])
    else:
        _print_gpus([gpu_as_dict(g) for g in found.gpus])
    for message in found.warnings:
        warn(message)


# No box drawing, like `plan`: output piped to a file or grep stays plain text.
_PLAIN: dict[str, Any] = {"box": None, "header_style": "bold", "pad_edge": False}


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _print_gpus(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=f"{len(rows)} GPU(s)", **_PLAIN)
    for col, justify in (
        ("#", "right"),
        ("name", "left"),
        ("total GiB", "right"),
        ("free GiB", "right"),
        ("cc", "right"),
        ("driver", "left"),
        ("profile", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            str(r["index"]),
            r["name"],
            _num(r["memory_total_gib"]),
            _num(r["memory_free_gib"]),
            r["compute_capability"] or "-",
            r["driver"] or "-",
            r["profile"] or "-",
        )
    console().print(table)


def _print_profiles(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(
        title=f"{len(rows)} GPU profiles (use the key, or the name, with --gpu)", **_PLAIN
    )
    for col, justify in (
        ("key", "left"),
        ("name", "left"),
        ("GiB", "right"),
        ("cc", "right"),
        ("bf16", "left"),
        ("FA2", "left"),
        ("TFLOPs", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r["key"],
            r["name"],
            _num(r["memory_gib"]),
            r["compute_capability"] or "-",
            "yes" if r["bf16"] else "no",
            "yes" if r["flash_attention_2"] else "no",
            _num(r["tflops_bf16"], ".1f"),
        )
    console().print(table)
