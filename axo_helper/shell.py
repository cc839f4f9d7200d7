"""Commands shown to people: every argument quoted for a POSIX shell.

A path such as `runs/$(rm -rf ~)` must read as one literal argument when a printed
next step (a hint, "Run it:" in a config's header, "serve it: ...") is pasted into
a terminal. Every printed command is built here.
"""

from __future__ import annotations

import shlex
from os import PathLike


def quote(arg: str | PathLike[str]) -> str:
    """One argument, quoted only when the shell would otherwise read it differently."""
    return shlex.quote(str(arg))


def command(*argv: str | PathLike[str]) -> str:
    """A command line from its arguments, each quoted."""
    return " ".join(quote(a) for a in argv)
