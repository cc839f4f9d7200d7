"""`decide(model, data) -> ChatChoice`: every chat key a conversational config needs,
each with its reason. Pure over the specs (a local model's tokenizer is ModelSpec.tokenizer).

The rules, from Axolotl's conversation docs and its chat_template strategy:
- eot_tokens only names a token the vocabulary holds as one token (Axolotl refuses a
  split one); without it Axolotl ends turns with the eos token;
- a base model's eos becomes the template's terminator (special_tokens.eos_token), so
  the exported model stops where its answers ended in training;
- template tokens the vocabulary lacks are added (`tokens:`) and then embed_tokens and
  lm_head must train, or the new rows stay random;
- a template that refuses a system turn gets drop_system_message when the data has one.
"""

from __future__ import annotations

from axo_helper.chat.families import is_instruct, named_template
from axo_helper.chat.templates import FACTS, TemplateFacts, facts_of_text
from axo_helper.chat.vocab import Vocab, vocab_of
from axo_helper.specs import ChatChoice, DataSpec, ModelSpec

EMBEDDING_MODULES = ("embed_tokens", "lm_head")


def _template(model: ModelSpec, vocab: Vocab | None) -> tuple[str, TemplateFacts, str]:
    """(chat_template value, its facts, reason)."""
    named = named_template(model, vocab)
    local = model.tokenizer
    if local is not None and local.template:
        facts = facts_of_text(local.template, local.added)
        return "tokenizer_default", facts, "the model's own chat template, as inference will use it"
    if model.chat_template:
        # A hub/preset tokenizer that ships a template: its family's named template
        # writes the same turns, so its facts stand for the shipped one.
        facts = FACTS.get(named or "chatml", FACTS["chatml"])
        return "tokenizer_default", facts, "the model's own chat template, as inference will use it"
    if named:
        return (
            named,
            FACTS[named],
            f"the tokenizer has none; {named}'s tokens fit the {vocab.name if vocab else model.family} vocabulary",
        )
    return (
        "chatml",
        FACTS["chatml"],
        "the tokenizer has none and its vocabulary is unknown; chatml is the common default",
    )


def decide(model: ModelSpec, data: DataSpec | None) -> ChatChoice:
    """The chat keys for training `model` on `data` (conversations)."""
    vocab = vocab_of(model)
    template, facts, why = _template(model, vocab)
    reasons = {"chat_template": why}
    like = facts.name if facts.name != "tokenizer_default" else template
    term = facts.terminator
    if vocab is None:  # unknown vocabulary: nothing is certain to be one token
        return ChatChoice(
            template, like, reasons=reasons, drop_system_message=_drops(facts, data, reasons)
        )
    new = sorted(t for t in facts.tokens if t not in vocab.specials)
    eos = None
    base = model.source == "local" or not is_instruct(model)
    if term and base and term != vocab.eos:
        eos = term
        reasons["special_tokens"] = (
            f"base model: its eos {vocab.eos} never ends a chat turn; {term} does in {like}"
        )
    if new:
        reasons["tokens"] = f"{', '.join(new)}: written by {like}, not in the vocabulary"
    eot = (term,) if term and (term in vocab.specials or term in new) else ()
    if eot:
        reasons["eot_tokens"] = f"ends each assistant turn in {like}; trained so generation stops"
    modules = EMBEDDING_MODULES if new else ()
    if modules:
        reasons["lora_modules_to_save"] = "new tokens: their embedding and output rows must train"
    return ChatChoice(
        template,
        like,
        eot_tokens=eot,
        eos_token=eos,
        drop_system_message=_drops(facts, data, reasons),
        new_tokens=tuple(new),
        modules_to_save=modules,
        reasons=reasons,
    )


def _drops(facts: TemplateFacts, data: DataSpec | None, reasons: dict[str, str]) -> bool:
    """drop_system_message: the data has system turns the template cannot train on."""
    if facts.system not in ("refused", "omitted") or data is None or "system" not in data.roles:
        return False
    reasons["drop_system_message"] = (
        f"the data has system turns and the {facts.name} template raises "
        "'System role not supported' on them: they are dropped"
        if facts.system == "refused"
        else f"the data has system turns and {facts.name} leaves them out of a conversation "
        "that ends with an answer: dropped explicitly, so the config says so"
    )
    return True
