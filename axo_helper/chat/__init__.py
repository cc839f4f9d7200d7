"""Chat-template knowledge: which template a model trains with and how its turns end.

    families.py   model family -> Axolotl's named chat_template, its turn terminator
                  (eot token), and the choice render writes for conversational data
    tokenizer.py  a local model directory's own chat template and added special tokens
    modelfile.py  which chat format (chatml, llama3, gemma, mistral) a template writes,
                  for the Ollama Modelfile

Pure and light: no torch or transformers import; tokenizer files are read as JSON.
"""

from __future__ import annotations

from axo_helper.chat.families import chat_template_choice
from axo_helper.chat.modelfile import modelfile_format

__all__ = ["chat_template_choice", "modelfile_format"]
