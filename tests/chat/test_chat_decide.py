"""chat.decide: the chat keys per family and base/instruct variant."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from render_fixtures import data_spec

from axo_helper import model as model_mod
from axo_helper.chat import decide
from axo_helper.model.local import read_tokenizer_facts
from axo_helper.specs import DataSpec


def chats(*roles: str) -> DataSpec:
    return replace(data_spec("chat_template"), roles=roles)


def test_gemma2_with_system_turns_drops_them_and_says_why() -> None:  # case 3
    gemma = model_mod.inspect("google/gemma-2-9b")
    choice = decide(gemma, chats("system", "user", "assistant"))
    assert choice.template == "gemma" and choice.drop_system_message is True
    assert "System role not supported" in choice.reasons["drop_system_message"]
    assert decide(gemma, chats("user", "assistant")).drop_system_message is False
    # Llama 3 has a system turn of its own: nothing dropped.
    llama = model_mod.inspect("meta-llama/Llama-3.1-8B")
    assert decide(llama, chats("system", "user", "assistant")).drop_system_message is False


def test_mixtral_base_gets_mistral_v1_with_no_tokens_it_lacks() -> None:  # case 4
    choice = decide(model_mod.inspect("mistralai/Mixtral-8x7B-v0.1"), None)
    assert choice.template == "mistral_v1"
    assert choice.new_tokens == () and choice.modules_to_save == ()
    # mistral_v1 ends an answer with </s>, the eos Mixtral already has.
    assert choice.eot_tokens == () and choice.eos_token is None


def test_phi4_ends_turns_with_im_end_and_phi35_with_end() -> None:  # case 5
    assert decide(model_mod.inspect("microsoft/phi-4"), None).eot_tokens == ("<|im_end|>",)
    phi35 = decide(model_mod.inspect("microsoft/Phi-3.5-mini-instruct"), None)
    assert phi35.eot_tokens == ("<|end|>",)


@pytest.mark.parametrize(
    ("name", "eos"),
    [
        ("meta-llama/Llama-3.1-8B", "<|eot_id|>"),
        ("Qwen/Qwen2.5-7B", "<|im_end|>"),
        ("google/gemma-2-9b", "<end_of_turn>"),
        ("HuggingFaceTB/SmolLM2-360M", "<|im_end|>"),
        ("meta-llama/Llama-3.1-8B-Instruct", None),  # a chat release already stops there
        ("Qwen/Qwen2.5-7B-Instruct", None),
        ("microsoft/phi-4", None),
    ],
)
def test_a_base_model_gets_the_templates_terminator_as_eos(
    name: str, eos: str | None
) -> None:  # case 6
    choice = decide(model_mod.inspect(name), None)
    assert choice.eos_token == eos
    assert ("special_tokens" in choice.reasons) is (eos is not None)
    assert choice.new_tokens == ()  # these vocabularies hold their template's tokens


def test_template_tokens_new_to_a_local_vocabulary_train_the_embeddings(
    tmp_path: Path,
) -> None:  # case 6
    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": "</s>"}')
    # A local checkpoint of no known vocabulary (its own files say which tokens it has).
    spec = replace(
        model_mod.inspect("meta-llama/Llama-3.2-1B"),
        source="local",
        local_path=str(tmp_path),
        vocab_size=50_000,
        tokenizer=read_tokenizer_facts(tmp_path),  # what model.inspect reads there
    )
    choice = decide(spec, None)
    assert choice.template == "chatml"
    assert choice.new_tokens == ("<|im_end|>", "<|im_start|>")
    assert choice.eos_token == "<|im_end|>" and choice.eot_tokens == ("<|im_end|>",)
    assert choice.added_tokens == ("<|im_start|>",)  # special_tokens adds the eos itself
    assert choice.modules_to_save == ("embed_tokens", "lm_head")
    assert "not in the vocabulary" in choice.reasons["tokens"]


def test_an_unknown_vocabulary_declares_no_token() -> None:
    odd = replace(model_mod.inspect("meta-llama/Llama-3.2-1B"), family="new", model_type="new")
    choice = decide(odd, None)
    assert choice.template == "chatml"
    assert (choice.eot_tokens, choice.eos_token, choice.new_tokens) == ((), None, ())


def test_new_template_tokens_train_the_embeddings_in_the_plan(tmp_path: Path) -> None:
    """The planner takes chat.decide's modules_to_save into the TrainSetup, so memory and
    trainable parameters count the full embed_tokens/lm_head copies, and render writes them."""
    from render_fixtures import data_spec

    from axo_helper import hardware, planner
    from axo_helper.config.render import render_plan

    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": "</s>"}')
    base = model_mod.inspect("meta-llama/Llama-3.2-1B")
    local = replace(
        base,
        source="local",
        local_path=str(tmp_path),
        vocab_size=50_000,
        tokenizer=read_tokenizer_facts(tmp_path),
    )
    hw, policy = hardware.resolve("a100-80gb"), planner.load_policy()
    chats = data_spec("chat_template")
    plan = planner.plan(hw, local, chats, policy, method="lora")
    assert plan.chat is not None and plan.chat.modules_to_save == ("embed_tokens", "lm_head")
    assert plan.setup.lora_modules_to_save == ("embed_tokens", "lm_head")
    without = planner.plan(hw, local, data_spec("alpaca"), policy, method="lora")
    assert without.setup.lora_modules_to_save == () and without.chat is None
    assert plan.memory.trainable_params > without.memory.trainable_params + 50_000 * 2048
    cfg = render_plan(plan, output_dir="o", dataset_path="d.jsonl").config
    assert cfg["lora_modules_to_save"] == ["embed_tokens", "lm_head"]
    assert cfg["tokens"] == ["<|im_start|>"] and cfg["special_tokens"] == {
        "eos_token": "<|im_end|>"
    }
    assert plan.to_json()["chat"]["modules_to_save"] == ["embed_tokens", "lm_head"]
