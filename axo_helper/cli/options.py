"""Options shared by the commands that plan (plan, render, run), and validate's
--revision.

@click.command()
@plan_options
def plan(**opts):            # opts: PLAN_OPTION_NAMES -> values
    core.make_plan(plan_request(opts))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

# Bounds past any real job, so a typo (`--epochs 1e13`, `--nodes 100000000`) is a usage
# error rather than a plan for millions of machines or years of training.
MAX_NODES = 4096
MAX_EPOCHS = 1000
MAX_MICRO_BATCH = 4096
MAX_SEQ_LEN = 10_485_760

if TYPE_CHECKING:
    from axo_helper.core import PlanRequest

F = TypeVar("F", bound=Callable[..., Any])

# The keyword arguments plan_options adds, named as core.PlanRequest's fields.
PLAN_OPTION_NAMES = (
    "gpu",
    "model",
    "revision",
    "data",
    "method",
    "freeze_layers",
    "seq_len",
    "micro_batch",
    "epochs",
    "nodes",
    "distributed",
    "tokenizer",
    "use_calibration",
)

class _BlockCount(click.ParamType):
    """A block count (4) or a fraction of the blocks (0.25)."""

    name = "N|FRACTION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value))
            except ValueError:
                self.fail(f"{value!r} is neither a block count nor a fraction", param, ctx)
        if number <= 0 or (number >= 1 and number != int(number)):
            self.fail(f"{value!r}: use a whole count >= 1 or a fraction in (0, 1)", param, ctx)
        return int(number) if number >= 1 else number


def _revision(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (not value.strip() or any(c.isspace() for c in value.strip())):
        raise click.BadParameter(f"{value!r} is not a branch, tag or commit hash", ctx, param)
    return value.strip() if value is not None else None


# A hub revision of --model: the hub's config.json is read at it, and the config pins it.
revision_option = click.option(
    "--revision",
    default=None,
    metavar="REV",
    callback=_revision,
    help="Hub branch, tag or commit of --model: its config.json is read at it, and a "
    "rendered config pins it (revision_of_model). Not for a local directory.",
)

_OPTIONS = [
    click.option(
        "--gpu",
        default="auto",
        show_default=True,
        metavar="SPEC",
        help="auto (NVML), a profile (rtx4090, a100-80gb), a size (24GB), with a count (8xh100), or cpu.",
    ),
    click.option(
        "--model",
        required=True,
        metavar="ID|DIR",
        help="Hugging Face id (a shipped preset or the hub's config.json) or a local directory.",
    ),
    revision_option,
    click.option(
        "--data",
        default=None,
        metavar="PATH",
        help="JSONL/JSON/Parquet/CSV file or a directory of them (optional for plan).",
    ),
    click.option(
        "--method",
        type=click.Choice(["full", "lora", "qlora", "freeze"]),
        default=None,
        help="Force the method instead of the policy's first that fits (freeze: train the "
        "last blocks only).",
    ),
    click.option(
        "--freeze-layers",
        type=_BlockCount(),
        default=None,
        metavar="N|FRACTION",
        help="Blocks a partial fine-tune trains: the last N, or a fraction of them "
        "(implies --method freeze; default: the policy's share, 0.25).",
    ),
    click.option(
        "--seq-len",
        type=click.IntRange(min=1, max=MAX_SEQ_LEN),
        default=None,
        help="Sequence length (default: data p99 rounded up to 256; 2048 without data).",
    ),
    click.option(
        "--micro-batch",
        type=click.IntRange(min=1, max=MAX_MICRO_BATCH),
        default=None,
        help="Micro batch per GPU (default: the largest useful one that fits).",
    ),
    click.option(
        "--epochs",
        type=click.IntRange(min=1, max=MAX_EPOCHS),
        default=None,
        help="Epochs (default: 3, or 1 on large data).",
    ),
    click.option(
        "--nodes",
        type=click.IntRange(min=1, max=MAX_NODES),
        default=1,
        show_default=True,
        help="Machines, each with the GPUs of --gpu.",
    ),
    click.option(
        "--distributed",
        type=click.Choice(["ddp", "zero1", "zero2", "zero3", "fsdp"]),
        default=None,
        help="Force the multi-GPU strategy (default: DDP when a replica fits, else ZeRO-3).",
    ),
    click.option(
        "--tokenizer",
        default=None,
        metavar="DIR",
        help="Directory with tokenizer.json for exact token counts (default: the model's, if local).",
    ),
    click.option(
        "--calibration/--no-calibration",
        "use_calibration",
        default=True,
        show_default=True,
        help="Correct the estimate from measured runs on the same GPU (axo-helper calibration list).",
    ),
]


def plan_options(func: F | None = None, *, model_required: bool = True) -> Any:
    """Add the shared planning options to a command (first option listed first).

    `@plan_options`, or `@plan_options(model_required=False)` for commands that can
    also start from a config or a run directory (`run --config`, `run --resume`).
    """

    def decorate(f: F) -> F:
        for option in reversed(_OPTIONS):
            f = option(f)
        if not model_required:
            for param in getattr(f, "__click_params__", []):
                if param.name == "model":
                    param.required = False
        return f

    return decorate(func) if func is not None else decorate


def plan_request(opts: dict[str, Any], **extra: Any) -> PlanRequest:
    """The planning options of a command as a PlanRequest (`extra`: other fields).

    The one place the shared options become a request: plan, render and run.
    """
    from axo_helper.core import PlanRequest

    return PlanRequest(**{n: opts[n] for n in PLAN_OPTION_NAMES if n in opts}, **extra)
