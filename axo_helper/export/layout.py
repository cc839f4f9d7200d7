"""The names export writes into a run directory, and its defaults.

When axo_helper/rundir.py owns the whole run-directory layout, these move there.
"""

from __future__ import annotations

VARIANTS: tuple[str, ...] = ("adapter", "merged")
MANIFEST = "manifest.json"
MODELFILE = "Modelfile"
MANIFEST_VERSION = 1
DEFAULT_MAX_SHARD_SIZE = "5GB"
LOCK_FILE = ".export.lock"
