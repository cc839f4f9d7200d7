"""All terminal output: rich for people, JSON for scripts, diagnostics to stderr.

No colour when NO_COLOR is set or the stream is not a terminal. rich is imported
lazily so commands that only print JSON never load it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console


def use_colour(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    colour = use_colour(stream)
    return Console(
        file=stream,
        no_color=not colour,
        highlight=False,
        force_terminal=colour,
        width=None if colour else 100,
        soft_wrap=not colour,
    )


def emit_json(obj: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def info(message: str) -> None:
    click.echo(message, err=True)


def write_output(path: Any, text: str) -> None:
    """Write a file the user named (-o), atomically; a file-system failure is a message."""
    from pathlib import Path

    from axo_helper.atomic import atomic_write_text
    from axo_helper.errors import UsageError, os_error

    if not str(path):
        raise UsageError("the output path is empty", hint="name a file, e.g. -o train.yml")
    try:
        atomic_write_text(Path(path), text)
    except OSError as exc:
        raise os_error(exc, path) from None
