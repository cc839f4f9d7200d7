"""The Ollama Modelfile: where FROM points, the Go chat template for the chat format
the trained tokenizer's Jinja template writes, and the stop strings (the format's and
the run's turn terminator, export/stops.py).

Which format a Jinja template writes is chat/'s fact (chat.modelfile_format); the
Go templates Ollama wants for each format are this module's, and so is what Ollama's
`ollama create` does by itself (read in its source, server/create.go and convert/):

- TEMPLATE replaces the template Ollama would detect. It detects one only for a
  safetensors FROM directory, from tokenizer_config.json's `chat_template` (never
  chat_template.jinja, where transformers 5 saves it), matched against the Jinja
  templates it knows; an ADAPTER takes the FROM model's template. So TEMPLATE is
  written for a format mapped here, and never as a bare `{{ .Prompt }}`: a format not
  mapped is left to Ollama's detection or to the FROM model's template.
- ADAPTER converts only on a base whose architecture Ollama's adapter converter
  takes (convert.ConvertAdapter: llama, gemma2); for any other the Modelfile uses
  merged/ and says how to export it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axo_helper import __version__
from axo_helper.chat import modelfile_format as chat_format
from axo_helper.config.templating import render_template
from axo_helper.errors import ConfigError
from axo_helper.export.files import read_json
from axo_helper.export.source import RunInfo, base_folders_offline
from axo_helper.export.stops import turn_terminator
from axo_helper.export.tokenizer import tokenizer_facts
from axo_helper.model.config import architectures
from axo_helper.rundir import MERGED
from axo_helper.shell import command

# Go templates for Ollama, keyed by the chat format the Jinja template uses.
OLLAMA_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "chatml": (
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
        "{{ end }}<|im_start|>assistant\n",
        ("<|im_start|>", "<|im_end|>"),
    ),
    "llama3": (
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
        "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
        ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
    "gemma": (
        "{{- range .Messages }}<start_of_turn>"
        '{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n'
        "{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n",
        ("<start_of_turn>", "<end_of_turn>"),
    ),
    "mistral": (
        '{{- range .Messages }}{{ if eq .Role "user" }}[INST] {{ .Content }} [/INST]'
        '{{ else if eq .Role "assistant" }}{{ .Content }}</s>{{ end }}{{ end }}',
        ("[INST]", "[/INST]", "</s>"),
    ),
}

# The base architectures (config.json's architectures[0], which Ollama's safetensors
# import turns into the GGUF architecture its adapter converter switches on) whose
# LoRA adapters `ollama create` converts: convert/convert.go, ConvertAdapter.
OLLAMA_ADAPTER_ARCHITECTURES = {"LlamaForCausalLM": "llama", "Gemma2ForCausalLM": "gemma2"}


def base_architecture(info: RunInfo) -> str | None:
    """The base's architecture class, from the config.json Axolotl saved beside the
    adapter, else the base's own (found offline); None when neither is there."""
    for folder in [info.output_dir, *base_folders_offline(info, "config.json")]:
        config = read_json(folder / "config.json")
        archs = architectures(config) if isinstance(config, dict) else []
        if archs:
            return archs[0]
    return None


def ollama_reads_template(folder: Path) -> bool:
    """Whether Ollama's import of `folder` sees a chat template to detect a template
    from: it reads tokenizer_config.json's chat_template only."""
    config = read_json(folder / "tokenizer_config.json")
    return isinstance(config, dict) and bool(config.get("chat_template"))


def _adapter_line(info: RunInfo, merged: bool, adapter: bool) -> tuple[bool, str | None]:
    """(write ADAPTER ./adapter, the base architecture Ollama cannot convert, if so)."""
    if merged or not adapter:
        return False, None
    arch = base_architecture(info)
    if arch is None or arch in OLLAMA_ADAPTER_ARCHITECTURES:
        return True, None  # not known: Ollama says so at create time
    return False, arch


def _template_note(template: str | None, merged: bool, folder: Path, gguf: str | None) -> str:
    """Why there is no TEMPLATE: what Ollama will use instead."""
    if gguf and template:  # the converter writes it as tokenizer.chat_template
        return "gguf"
    if merged and ollama_reads_template(folder):
        return "detected"
    if not template:
        return "none saved"
    return "unseen"


def modelfile_context(
    info: RunInfo, *, merged: bool, adapter: bool, gguf: str | None = None
) -> dict[str, Any]:
    """The facts templates/Modelfile.j2 lays out: where FROM points (and ADAPTER), the
    Ollama template when the chat format is one mapped here, and the stop strings: the
    format's, the trained turn terminator, the eos."""
    template, eos = tokenizer_facts(info.output_dir)
    fmt = chat_format(template)
    go, format_stops = OLLAMA_TEMPLATES.get(fmt or "", (None, ()))
    # A GGUF is the merged model in the format Ollama runs: no ADAPTER beside it.
    with_adapter, unconvertible = _adapter_line(info, merged or gguf is not None, adapter)
    # The trained turn terminator stops generation whatever the format: a template
    # Ollama has no Go template for still ends its turns with it.
    term = turn_terminator(info.config, info.output_dir)
    stops = list(dict.fromkeys([*format_stops, *(term.tokens if term else ()), eos]))
    stops = [s for s in stops if s]
    base = Path(info.base_model).expanduser()
    return {
        "name": info.run_dir.name,
        "version": __version__,
        "merged": merged or unconvertible is not None,
        "merged_missing": not merged and unconvertible is not None,
        "adapter": with_adapter,
        "unconvertible": unconvertible,
        "adapter_architectures": ", ".join(OLLAMA_ADAPTER_ARCHITECTURES.values()),
        "export_merged": command("axo-helper", "export", info.run_dir, "--variant", MERGED),
        "base_model": info.base_model,
        "base_dir": str(base.resolve()) if not merged and base.is_dir() else None,
        "chat_format": fmt,
        "ollama_template": go,
        "gguf": gguf,
        "no_template": None if go else _template_note(template, merged, info.output_dir, gguf),
        "stops": stops,
    }


def modelfile(info: RunInfo, *, merged: bool, adapter: bool, gguf: str | None = None) -> str:
    """An Ollama Modelfile: FROM the exported GGUF (`gguf`, relative to the run), or
    ./merged, or the base with ADAPTER ./adapter (only on a base Ollama converts
    adapters of; else FROM ./merged and how to export it)."""
    context = modelfile_context(info, merged=merged, adapter=adapter, gguf=gguf)
    try:
        return render_template("Modelfile.j2", **context)
    except ValueError as exc:  # the `modelfile` filter: a value no Modelfile can hold
        raise ConfigError(
            f"cannot write the Modelfile: {exc}",
            hint="rename the base model or fix the tokenizer's eos token, then export again",
        ) from exc
