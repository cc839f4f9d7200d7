"""chat.modelfile_format: which chat format a tokenizer's Jinja template writes."""

from __future__ import annotations

import pytest

from axo_helper.chat import modelfile_format

LLAMA3 = (
    "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
)


@pytest.mark.parametrize(
    ("template", "fmt"),
    [
        (None, None),
        ("", None),
        ("{{ messages }}", None),
        ("<|im_start|>{{ role }}\n{{ content }}<|im_end|>", "chatml"),
        (LLAMA3, "llama3"),
        ("<start_of_turn>user\n{{ content }}<end_of_turn>", "gemma"),
        ("[INST] {{ content }} [/INST]", "mistral"),
        # Several markers: the first format in the order chatml, llama3, gemma, mistral.
        ("[INST] <start_of_turn> <|start_header_id|> <|im_start|>", "chatml"),
        ("[INST] <start_of_turn>", "gemma"),
        ("[INST] " + LLAMA3, "llama3"),
    ],
)
def test_modelfile_format_recognises_the_template_by_its_markers(
    template: str | None, fmt: str | None
) -> None:
    assert modelfile_format(template) == fmt
