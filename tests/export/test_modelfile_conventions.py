"""The Modelfile follows what `ollama create` does by itself (Ollama's server/create.go
and convert/): no TEMPLATE that would turn its template detection off for a format
not mapped here, and ADAPTER only on a base its adapter converter takes."""

from __future__ import annotations

import json
from pathlib import Path

import ollama_modelfile
import pytest

from axo_helper.export.ollama import modelfile
from axo_helper.export.source import RunInfo

CHATML = "{% for m in messages %}{{ '<|im_start|>' + m['role'] }}{% endfor %}"
PHI3 = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>' }}{% endfor %}"
)


def run_info(
    root: Path,
    template: str | None,
    *,
    in_config: bool = True,
    architecture: str | None = "LlamaForCausalLM",
) -> RunInfo:
    """output/ with the trained tokenizer's config (its chat template in
    tokenizer_config.json, or in chat_template.jinja as transformers 5 saves it) and
    the base's config.json Axolotl saves beside the adapter."""
    out = root / "output"
    out.mkdir()
    tcfg: dict[str, str] = {"eos_token": "</s>"}
    if template is not None and in_config:
        tcfg["chat_template"] = template
    elif template is not None:
        (out / "chat_template.jinja").write_text(template, encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps(tcfg))
    if architecture:
        (out / "config.json").write_text(json.dumps({"architectures": [architecture]}))
    return RunInfo(root / "my-run", {}, out, "org/base", "lora", None, None)


def commands(text: str, name: str) -> list[str]:
    return [value for command, value in ollama_modelfile.parse(text) if command == name]


@pytest.mark.parametrize("merged", [True, False])
@pytest.mark.parametrize("in_config", [True, False])
def test_an_unmapped_chat_format_writes_no_template(
    tmp_path: Path, merged: bool, in_config: bool
) -> None:
    text = modelfile(run_info(tmp_path, PHI3, in_config=in_config), merged=merged, adapter=True)
    assert commands(text, "template") == []  # not even {{ .Prompt }}: Ollama decides
    assert "{{ .Prompt }}" not in text
    assert commands(text, "stop") == ["</s>"]
    if merged and in_config:
        assert "Ollama picks one by matching merged/tokenizer_config.json" in text
    else:
        assert "Ollama does not read it here" in text


def test_no_saved_chat_template_writes_no_template(tmp_path: Path) -> None:
    text = modelfile(run_info(tmp_path, None), merged=True, adapter=False)
    assert commands(text, "template") == []
    assert "the run saved no chat template" in text


@pytest.mark.parametrize("in_config", [True, False])
def test_a_mapped_chat_format_still_writes_its_template(tmp_path: Path, in_config: bool) -> None:
    # transformers 5 saves the template in chat_template.jinja, which Ollama never reads:
    # without TEMPLATE a merged/ import would chat with the raw prompt.
    text = modelfile(run_info(tmp_path, CHATML, in_config=in_config), merged=True, adapter=True)
    (template,) = commands(text, "template")
    assert template.startswith("{{- range .Messages }}<|im_start|>")


@pytest.mark.parametrize("architecture", ["LlamaForCausalLM", "Gemma2ForCausalLM", None])
def test_adapter_on_a_base_ollama_converts_adapters_of(
    tmp_path: Path, architecture: str | None
) -> None:
    text = modelfile(
        run_info(tmp_path, CHATML, architecture=architecture), merged=False, adapter=True
    )
    assert commands(text, "model") == ["org/base"]
    assert commands(text, "adapter") == ["./adapter"]


@pytest.mark.parametrize(
    "architecture", ["Qwen2ForCausalLM", "MistralForCausalLM", "Phi3ForCausalLM"]
)
def test_no_adapter_line_for_a_base_ollama_cannot_convert(
    tmp_path: Path, architecture: str
) -> None:
    info = run_info(tmp_path, CHATML, architecture=architecture)
    text = modelfile(info, merged=False, adapter=True)
    assert commands(text, "adapter") == []
    assert commands(text, "model") == ["./merged"]
    assert f"not for\n# {architecture}: this Modelfile uses the merged model" in text
    assert "axo-helper export" in text and "--variant merged" in text
    # merged/ exported too: FROM it, and no advice to export it.
    both = modelfile(info, merged=True, adapter=True)
    assert commands(both, "model") == ["./merged"] and commands(both, "adapter") == []
    assert "--variant merged" not in both
