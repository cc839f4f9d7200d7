"""chat.decide's knowledge checked against Axolotl's own templates, rendered with jinja2:
the declared end-of-turn token ends each assistant turn, a template marked as refusing
a system turn raises on one, and a base model's new eos is the template's terminator."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jinja2
import pytest
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment
from render_fixtures import data_spec

from axo_helper import model as model_mod
from axo_helper.chat import decide
from axo_helper.chat.templates import FACTS
from axo_helper.chat.vocab import vocab_of
from axo_helper.model.presets import list_presets

pytestmark = pytest.mark.axolotl
ANSWER = "Paris-is-the-answer."
SYSTEM = "Answer-in-one-word."
TURNS = [
    {"role": "user", "content": "Capital-of-France?"},
    {"role": "assistant", "content": ANSWER},
]


class _Generation(Extension):
    """{% generation %} as transformers renders it: the body, unmarked (Phi-4 uses it)."""

    tags = {"generation"}  # noqa: RUF012 (jinja2 declares it a plain class attribute)

    def parse(self, parser: Any) -> Any:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.Scope(body, lineno=lineno)


def render(name: str, messages: list[dict[str, str]], bos: str, eos: str) -> str:
    axolotl_templates = pytest.importorskip("axolotl.utils.chat_templates")
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, "jinja2.ext.loopcontrols"]
    )

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    template = env.from_string(axolotl_templates.get_chat_template(name))
    return template.render(
        messages=messages, bos_token=bos, eos_token=eos, add_generation_prompt=False
    )


PRESETS = [m.hf_id or m.name for m in list_presets()]


@pytest.mark.parametrize("name", PRESETS)
def test_declared_turn_tokens_occur_where_axolotls_template_ends_the_answer(name: str) -> None:
    spec = model_mod.inspect(name)
    vocab = vocab_of(spec)
    assert vocab is not None, f"{name}: every preset's vocabulary is known"
    choice = decide(
        spec, replace(data_spec("chat_template"), roles=("system", "user", "assistant"))
    )
    eos = choice.eos_token or vocab.eos or ""
    plain = render(choice.like, TURNS, "<bos>", eos)
    for token in choice.eot_tokens:
        assert ANSWER + token in plain, f"{name}: {token} does not end the answer in {choice.like}"
    if not choice.eot_tokens:  # turns end with the eos token (the Mistral formats)
        assert ANSWER + eos in plain
    if choice.eos_token:  # a base model's eos is the template's terminator
        assert choice.eot_tokens == (choice.eos_token,)
    facts = FACTS[choice.like]
    system = [{"role": "system", "content": SYSTEM}, *TURNS]
    if facts.system == "refused":
        with pytest.raises(jinja2.exceptions.TemplateError, match="System role not supported"):
            render(choice.like, system, "<bos>", eos)
        assert choice.drop_system_message
    elif facts.system == "omitted":
        assert SYSTEM not in render(choice.like, system, "<bos>", eos)
        assert choice.drop_system_message
    else:
        with_system = render(choice.like, system, "<bos>", eos)
        assert SYSTEM in with_system and not choice.drop_system_message
        plain += with_system
    for token in facts.tokens:  # the tokens the vocabulary must hold, as the template writes them
        assert token in plain, f"{name}: {choice.like} never writes {token}"


@pytest.mark.axolotl
def test_every_template_chat_can_choose_is_one_axolotl_accepts() -> None:
    """A named template axo-helper may write must be a value of Axolotl's ChatTemplate
    enum (Axolotl 0.19 ships phi_4.jinja but refuses `chat_template: phi_4`)."""
    pytest.importorskip("axolotl")
    from axolotl.utils.schemas.enums import ChatTemplate

    from axo_helper.chat.templates import FACTS

    accepted = {t.value for t in ChatTemplate}
    assert set(FACTS) - accepted == set()
    chosen = {
        decide(model_mod.inspect(name), data_spec("chat_template")).template for name in PRESETS
    }
    assert chosen - accepted == set()
