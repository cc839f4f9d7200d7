"""The report's figures: matplotlib (Agg, no display) to PNG, inlined as data: URIs.

matplotlib comes with the `report` extra; without it every figure is Missing and the
report says how to install it. Each function takes the `report --json` objects, so
the pictures show exactly the figures a script reads.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

from axo_helper.report.missing import Missing

DPI = 100
SIZE = (8.0, 3.6)  # inches: 800 x 360 pixels at DPI
# Colours that tell the series apart for most colour-blind readers (Okabe-Ito).
TRAIN, EVAL, RATE, BASE, TUNED = "#0072B2", "#D55E00", "#009E73", "#999999", "#CC79A7"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise Missing(
            'matplotlib is not installed, so no figure is drawn: pip install "axo-helper[report]"'
        ) from exc
    matplotlib.use("Agg")  # files only: never a window, works without a display
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _xy(series: list[list[float]]) -> tuple[list[float], list[float]]:
    return [p[0] for p in series], [p[1] for p in series]


def loss_figure(training: Mapping[str, Any]) -> str:
    """Training and evaluation loss against steps, the learning rate on a second axis."""
    series = training["series"]
    if not series["train_loss"] and not series["eval_loss"]:
        raise Missing("no loss was recorded: " + "; ".join(training["missing"] or ["no steps"]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    if series["train_loss"]:
        ax.plot(*_xy(series["train_loss"]), color=TRAIN, linewidth=1.5, label="training loss")
    if series["eval_loss"]:
        ax.plot(
            *_xy(series["eval_loss"]), color=EVAL, marker="o", linewidth=2, label="evaluation loss"
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if series["learning_rate"]:
        lr_ax = ax.twinx()
        lr_ax.plot(
            *_xy(series["learning_rate"]),
            color=RATE,
            linestyle="--",
            linewidth=1,
            label="learning rate",
        )
        lr_ax.set_ylabel("learning rate")
        lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        more_h, more_l = lr_ax.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    ax.legend(handles, labels, loc="upper right")
    return _png(fig)


def speed_figure(training: Mapping[str, Any]) -> str:
    """Tokens per second and step time over the run."""
    series = training["series"]
    if not series["tokens_per_s"] and not series["step_time_s"]:
        raise Missing("no step timing was recorded (the plugin's metrics.jsonl has no steps)")
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(SIZE[0], SIZE[1] * 1.2), sharex=True, layout="constrained"
    )
    if series["tokens_per_s"]:
        top.plot(*_xy(series["tokens_per_s"]), color=TRAIN, linewidth=1)
    top.set_ylabel("tokens / s")
    top.grid(alpha=0.3)
    if series["step_time_s"]:
        bottom.plot(*_xy(series["step_time_s"]), color=EVAL, linewidth=1)
    bottom.set_ylabel("step time (s)")
    bottom.set_xlabel("step")
    bottom.grid(alpha=0.3)
    return _png(fig)


def memory_figure(memory: Mapping[str, Any]) -> str:
    """The predicted peak, stacked by component, beside the measured peak."""
    components, measured = memory["components_gib"], memory["measured_gib"]
    if not components and memory["predicted_gib"] is None:
        raise Missing("no prediction to compare with: " + "; ".join(memory["missing"]))
    if measured is None:
        raise Missing("no measured peak: " + "; ".join(memory["missing"]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(SIZE[0], SIZE[1] * 0.8), layout="constrained")
    left = 0.0
    palette = plt.get_cmap("tab10")
    parts = components or {"total": memory["predicted_gib"]}
    for i, (name, gib) in enumerate(parts.items()):
        ax.barh("predicted", gib, left=left, color=palette(i), label=name.replace("_", " "))
        left += gib
    ax.barh(
        "measured",
        measured,
        color="#333333",
        label=f"measured ({memory['measured_kind'] or 'peak'})",
    )
    budget = memory.get("budget_gib")
    if budget and budget <= 2 * max(left, measured):  # far beyond, it would squash the bars
        ax.axvline(budget, color="#D55E00", linestyle=":", label="budget")
    ax.set_xlabel("GiB per GPU")
    fig.legend(loc="outside lower center", fontsize="small", ncols=4)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def eval_figure(evaluation: Mapping[str, Any]) -> str:
    """Held-out loss of the base and of the fine-tuned model."""
    if evaluation.get("status") != "ok":
        raise Missing(evaluation.get("reason") or "no evaluation")
    base, tuned = evaluation["base"]["loss"], evaluation["fine_tuned"]["loss"]
    if base is None or tuned is None:
        raise Missing("a held-out loss is not a finite number")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(SIZE[0] * 0.6, SIZE[1] * 0.8), layout="constrained")
    bars = ax.bar(["base", "fine-tuned"], [base, tuned], color=[BASE, TUNED])
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylabel("held-out loss")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
