"""A figure the report cannot show: raised by the step that would make it, caught by
the report, which shows the reason in the figure's place (and in `--json`'s `missing`).

Not a user error: a run without the plugin or without a held-out split still gets its
report, exit 0. User mistakes (a path that is not a run directory) are errors.py's.
"""

from __future__ import annotations


class Missing(Exception):
    """Why a figure or a section is not in the report (the message is shown as is)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
