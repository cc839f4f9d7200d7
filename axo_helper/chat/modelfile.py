"""Which known chat format a Jinja chat template writes, as the Ollama Modelfile needs it.

Ollama wants a Go template per format, not the tokenizer's Jinja; the format is
recognised by the special tokens the template writes.
"""

from __future__ import annotations

# (marker the Jinja template writes, format), checked in this order: a template
# with several markers is the first one's.
_FORMAT_MARKERS = (
    ("<|im_start|>", "chatml"),
    ("<|start_header_id|>", "llama3"),
    ("<start_of_turn>", "gemma"),
    ("[INST]", "mistral"),
)


def modelfile_format(template: str | None) -> str | None:
    """The chat format a Jinja chat template writes: chatml, llama3, gemma or mistral;
    None when the template is absent or none of them."""
    if not template:
        return None
    return next((fmt for marker, fmt in _FORMAT_MARKERS if marker in template), None)
