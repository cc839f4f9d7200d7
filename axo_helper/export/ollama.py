"""The Ollama Modelfile: where FROM points, the Go chat template for the chat format
the trained tokenizer's Jinja template writes, and the stop strings (the format's and
the run's turn terminator, export/stops.py).

Which format a Jinja template writes is chat/'s fact (chat.modelfile_format); the
Go templates Ollama wants for each format are this module's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axo_helper import __version__
from axo_helper.chat import modelfile_format as chat_format
from axo_helper.config.templating import render_template
from axo_helper.errors import ConfigError
from axo_helper.export.source import RunInfo
from axo_helper.export.stops import turn_terminator
from axo_helper.export.tokenizer import tokenizer_facts

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

# No known chat format: the prompt is sent as is.
PLAIN_PROMPT = "{{ .Prompt }}"


def modelfile_context(info: RunInfo, *, merged: bool, adapter: bool) -> dict[str, Any]:
    """The facts templates/Modelfile.j2 lays out: where FROM points, the Ollama
    template, and the stop strings: the format's, the trained turn terminator, the eos."""
    template, eos = tokenizer_facts(info.output_dir)
    fmt = chat_format(template)
    go, format_stops = OLLAMA_TEMPLATES.get(fmt or "", (PLAIN_PROMPT, ()))
    # The trained turn terminator stops generation whatever the format: a template
    # Ollama has no Go template for still ends its turns with it.
    term = turn_terminator(info.config, info.output_dir)
    stops = list(dict.fromkeys([*format_stops, *(term.tokens if term else ()), eos]))
    stops = [s for s in stops if s]
    base = Path(info.base_model).expanduser()
    return {
        "name": info.run_dir.name,
        "version": __version__,
        "merged": merged,
        "adapter": adapter,
        "base_model": info.base_model,
        "base_dir": str(base.resolve()) if not merged and base.is_dir() else None,
        "chat_format": fmt,
        "template_saved": bool(template),
        "ollama_template": go,
        "stops": stops,
    }


def modelfile(info: RunInfo, *, merged: bool, adapter: bool) -> str:
    """An Ollama Modelfile: FROM ./merged, or the base with ADAPTER ./adapter."""
    context = modelfile_context(info, merged=merged, adapter=adapter)
    try:
        return render_template("Modelfile.j2", **context)
    except ValueError as exc:  # the `modelfile` filter: a value no Modelfile can hold
        raise ConfigError(
            f"cannot write the Modelfile: {exc}",
            hint="rename the base model or fix the tokenizer's eos token, then export again",
        ) from exc
