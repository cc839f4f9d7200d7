"""export's own defaults: the manifest format version and the largest merged/ shard.

The names export writes into a run directory (adapter/, merged/, Modelfile,
manifest.json, .export.lock) belong to axo_helper/rundir.py.
"""

from __future__ import annotations

MANIFEST_VERSION = 1
DEFAULT_MAX_SHARD_SIZE = "5GB"
