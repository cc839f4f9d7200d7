"""What Axolotl's prompt formats add around a row's text, as the texts it tokenizes.

Owns Axolotl's alpaca prompt (standard `type: alpaca` and the user-defined prompt type),
the special tokens each dataset type adds a row, and `SEGMENTS`: per dataset type, a
sampled payload -> (texts tokenized separately, extra tokens). The per-message chat
overhead is a fixed count here, not the model's own chat template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Tokens the prompt format adds around the text, whichever way tokens are counted.
# alpaca / completion: BOS (when the tokenizer has one) + the EOS Axolotl appends.
# chat_template: the role header and end-of-turn markers of the model's chat template:
# ChatML "<|im_start|>user\n" + "<|im_end|>\n" and Llama 3 "<|start_header_id|>user
# <|end_header_id|>\n\n" + "<|eot_id|>" are both 5 tokens a message; plus one BOS a row.
# input_output: Axolotl tokenizes the segments with add_special_tokens=False and adds nothing.
CHAT_TOKENS_PER_MESSAGE = 5
SPECIAL_TOKENS_PER_ROW: dict[str, int] = {
    "alpaca": 2,
    "completion": 2,
    "chat_template": 1,
    "input_output": 0,
}

# Axolotl's `type: alpaca` prompt (axolotl.prompters.AlpacaPrompter, instruct style).
ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request."
)
ALPACA_NO_INPUT_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request."
)
ALPACA_TURN = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
ALPACA_TURN_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"


@dataclass(frozen=True)
class AlpacaFormat:
    standard: bool
    format: str = ""
    no_input_format: str = ""
    system_format: str = ""


def alpaca_format(fields: dict[str, Any]) -> AlpacaFormat:
    """The prompt an alpaca field mapping renders: standard when the mapping is empty."""
    if not fields:
        return AlpacaFormat(standard=True)
    return AlpacaFormat(
        standard=False,
        format=fields["format"],
        no_input_format=fields["no_input_format"],
        system_format=fields.get("system_format", ""),
    )


Segments = tuple[tuple[str, ...], int]  # texts Axolotl tokenizes separately, extra tokens


def _alpaca_segments(p: tuple[str, ...], fmt: AlpacaFormat | None) -> Segments:
    instr, inp, out, system = p
    assert fmt is not None
    if fmt.standard:  # mirrors axolotl.prompters.AlpacaPrompter._build_result
        pre = ALPACA_PREAMBLE if inp else ALPACA_NO_INPUT_PREAMBLE
        turn = ALPACA_TURN if inp else ALPACA_TURN_NO_INPUT
        prompt = pre + "\n\n" + turn.format(instruction=instr, input=inp)
    else:  # mirrors axolotl.prompt_strategies.alpaca_w_system.SystemDataPrompter
        sys = fmt.system_format.format(system=system) if system and fmt.system_format else ""
        turn = fmt.format if inp else fmt.no_input_format
        prompt = sys + turn.format(instruction=instr, input=inp)
    # Axolotl tokenizes the prompt and the response separately, so do we.
    return (prompt, out), SPECIAL_TOKENS_PER_ROW["alpaca"]


def _chat_segments(p: tuple[str, ...], fmt: Any) -> Segments:
    return p, CHAT_TOKENS_PER_MESSAGE * len(p) + SPECIAL_TOKENS_PER_ROW["chat_template"]


def _completion_segments(p: tuple[str, ...], fmt: Any) -> Segments:
    return p, SPECIAL_TOKENS_PER_ROW["completion"]


def _io_segments(p: tuple[str, ...], fmt: Any) -> Segments:
    return p, SPECIAL_TOKENS_PER_ROW["input_output"]


SEGMENTS: dict[str, Callable[[tuple[str, ...], Any], Segments]] = {
    "alpaca": _alpaca_segments,
    "chat_template": _chat_segments,
    "completion": _completion_segments,
    "input_output": _io_segments,
}
