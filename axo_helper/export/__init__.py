"""Export a finished run: adapter/, merged/, Modelfile and manifest.json (docs/export.md).

    export_run(run_dir) -> ExportResult

reads the run directory `run` wrote (axolotl.yml, plan.json, metrics.json, output/)
and produces, next to them:

  adapter/        LoRA/QLoRA only: adapter_model.safetensors, adapter_config.json, the
                  tokenizer as trained (added tokens, chat template), README.md
  merged/         base + adapter merged (or a full fine-tune's weights), sharded
                  safetensors, config, generation_config (stopping at the trained turn
                  terminator), the trained tokenizer, README.md
  gguf/           `export --gguf QUANT`: model-QUANT.gguf converted from merged/ by
                  llama.cpp's convert_hf_to_gguf.py (and llama-quantize)
  Modelfile       for `ollama create`
  manifest.json   every produced file with size and sha256; versions; plan; metrics

Atomic: each variant is built in a hidden temporary directory beside it and renamed
into place; Modelfile and manifest.json are written atomically, the manifest last.
A killed export leaves complete variants or none; re-running completes it. A variant
that exists is never replaced without force=True. torch, safetensors, transformers
and axolotl are imported inside the functions, and checked for before anything is
written (deps).

The package, in the order an export runs:

  exporter    export_run: choose variants, lock, preflight, build, Modelfile, manifest
  source      RunInfo from the run directory; the adapter in output/; the base model
  deps        the train-extra packages each step needs, as a message when missing
  check       refusing an adapter that was not trained on the base
  variants    building adapter/ and merged/ (weights, tokenizer, model card)
  merge       Axolotl's shard-by-shard LoRA merge, the NF4 round-trip scope
  shards      merged/'s safetensors shards and dtype (reshard)
  tokenizer   the trained tokenizer's files, copied; its chat template, eos, token ids
  stops       the turn terminator; generation_config.json's eos_token_id
  card        the model card's facts (README.md)
  hub_card    the card output/ already had, merged in; Hub ids only; no host paths
  ollama      the Modelfile's facts: FROM, chat format, Go template, stops
  gguf_step   export --gguf: which conversions to make, keep or drop
  gguf        one conversion: converter (+ llama-quantize) argv, run, atomic publish
  llama_cpp   finding convert_hf_to_gguf.py, gguf-py and llama-quantize
  manifest    manifest.json and verify_export
  files       checksums, permissions, fsync, the lock, atomic publish, sizes
  defaults    the manifest version and shard size; result: ExportResult

The file names (adapter/, merged/, Modelfile, manifest.json, .export.lock) are the run
directory's, owned by axo_helper/rundir.py; the versions come from axo_helper/versions.py.
"""

from __future__ import annotations

from axo_helper.export.card import card_context, model_card
from axo_helper.export.check import AdapterMismatchError, check_adapter_matches_base
from axo_helper.export.defaults import DEFAULT_MAX_SHARD_SIZE
from axo_helper.export.exporter import export_run
from axo_helper.export.files import parse_size, sha256_file
from axo_helper.export.manifest import verify_export
from axo_helper.export.ollama import chat_format, modelfile, modelfile_context
from axo_helper.export.result import ExportedFile, ExportResult
from axo_helper.export.source import RunInfo, load_run
from axo_helper.rundir import EXPORT_VARIANTS as VARIANTS
from axo_helper.rundir import MANIFEST, MODELFILE

__all__ = [
    "DEFAULT_MAX_SHARD_SIZE",
    "MANIFEST",
    "MODELFILE",
    "VARIANTS",
    "AdapterMismatchError",
    "ExportResult",
    "ExportedFile",
    "RunInfo",
    "card_context",
    "chat_format",
    "check_adapter_matches_base",
    "export_run",
    "load_run",
    "model_card",
    "modelfile",
    "modelfile_context",
    "parse_size",
    "sha256_file",
    "verify_export",
]
