"""Chat-template knowledge: which template a model trains with and how its turns end.

    decide.py     `decide(model, data) -> ChatChoice`: chat_template, eot_tokens, the
                  eos a base model gets, drop_system_message, new tokens and the
                  modules they make trainable, each with its reason
    templates.py  what each Axolotl named template writes: tokens, turn terminator,
                  system role (checked against Axolotl's own templates in tests)
    vocab.py      which special tokens a model's vocabulary has, and its base eos
    families.py   vocabulary -> named template; base or instruct checkpoint
    modelfile.py  which chat format (chatml, llama3, gemma, mistral) a template writes,
                  for the Ollama Modelfile

Pure and light: no torch or transformers import, no I/O (a local model's tokenizer is
read once by model/local.py into ModelSpec.tokenizer).
"""

from __future__ import annotations

from axo_helper.chat.decide import decide
from axo_helper.chat.modelfile import modelfile_format
from axo_helper.specs import ChatChoice

__all__ = ["ChatChoice", "decide", "modelfile_format"]
