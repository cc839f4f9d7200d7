"""Row formats: which Axolotl dataset type a row's keys make, and what each format reads.

Owns the key names of every accepted format (alpaca and its look-alikes, chat messages in
OpenAI or ShareGPT keys, completion, input_output), the interned `Shape` of each format,
and the classification of a row's top-level keys. Dataset-format knowledge only; which
chat template a model uses belongs to `axo_helper.chat`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from axo_helper.errors import DatasetError
from axo_helper.specs import DatasetType

# Alpaca-style key names. Standard keys render as `type: alpaca`; any other pairing as
# Axolotl's user-defined prompt type (`type: {field_instruction: ..., format: ...}`).
INSTRUCTION_KEYS = ("instruction", "question", "prompt", "query")
OUTPUT_KEYS = ("output", "response", "answer", "completion")
INPUT_KEYS = ("input", "context")
SYSTEM_KEY = "system"

CHAT_KEYS = ("messages", "conversations")
# (role key, content key, name): OpenAI keys, then ShareGPT keys.
MESSAGE_STYLES = (("role", "content", "OpenAI"), ("from", "value", "ShareGPT"))
# Roles Axolotl's chat_template maps without a `roles:` entry (ChatTemplatePrompter).
AXOLOTL_DEFAULT_ROLES = frozenset({"system", "user", "human", "assistant", "gpt", "tool"})

ACCEPTED_FORMATS = (
    "alpaca (instruction, output, optional input/system; also question/answer, "
    "prompt/completion, instruction/response, query/response, with optional input or context), "
    "chat_template (messages or conversations: a list of {role, content} or {from, value}), "
    "completion (text), "
    "input_output (segments: a list of {text, label})"
)


@dataclass(frozen=True, eq=False)
class Shape:
    """One row format. Instances are interned, so rows compare by identity first."""

    type: DatasetType
    core: tuple[str, ...]  # what every row must share for one `datasets:` entry
    label: str  # how the format is named in messages
    extract: Callable[[dict[str, Any]], tuple[str, ...]]  # row -> payload for token counting
    columns: tuple[str, ...]  # the keys extract reads (Parquet reads only these)
    input_key: str | None = None  # alpaca: the optional input column this row has
    has_system: bool = False  # alpaca: the row has a system column
    # Columns Axolotl's prompter formats and tokenizes as text: a number, list or null
    # there passes the scan but fails deep in Axolotl's preprocess without a row.
    texts: tuple[str, ...] = ()  # must be strings
    optional_texts: tuple[str, ...] = ()  # strings or null


@dataclass(frozen=True)
class ChatKeys:
    """Key-level classification of a chat row; its message style is checked per row."""

    field: str


def text(v: Any) -> str:
    """The text of one cell as Axolotl would render it."""
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    if isinstance(v, list):  # multimodal content parts: keep the text parts
        return "".join(text(p.get("text")) if isinstance(p, dict) else text(p) for p in v)
    return str(v)


def first_present(order: tuple[str, ...], present: set[str]) -> str:
    """The first key of `order` in `present`: the column a mapping reads when rows differ."""
    return next(k for k in order if k in present)


def _alpaca_shape(keys: tuple[str, ...]) -> Shape | None:
    instr = next((k for k in INSTRUCTION_KEYS if k in keys), None)
    out = next((k for k in OUTPUT_KEYS if k in keys), None)
    if instr is None or out is None:
        return None
    inp = next((k for k in INPUT_KEYS if k in keys), None)
    system = SYSTEM_KEY in keys

    def extract(row: dict[str, Any]) -> tuple[str, ...]:
        return (
            text(row.get(instr)),
            text(row.get(inp)) if inp else "",
            text(row.get(out)),
            text(row.get(SYSTEM_KEY)) if system else "",
        )

    cols = tuple(k for k in (instr, inp, out, SYSTEM_KEY if system else None) if k)
    optional = tuple(k for k in (inp, SYSTEM_KEY if system else None) if k)
    return Shape(
        "alpaca",
        ("alpaca", instr, out),
        f"alpaca ({instr}/{out})",
        extract,
        cols,
        inp,
        system,
        texts=(instr, out),
        optional_texts=optional,
    )


def _chat_shape(field: str, role: str, content: str, style: str) -> Shape:
    def extract(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(text(m.get(content)) for m in row.get(field) or ())

    return Shape(
        "chat_template",
        ("chat_template", field, role, content),
        f"chat_template ({field}, {style} keys {role}/{content})",
        extract,
        (field,),
    )


def _io_extract(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(text(s.get("text")) for s in row.get("segments") or ())


def _completion_extract(row: dict[str, Any]) -> tuple[str, ...]:
    return (text(row.get("text")),)


IO_SHAPE = Shape(
    "input_output", ("input_output",), "input_output (segments)", _io_extract, ("segments",)
)
COMPLETION_SHAPE = Shape(
    "completion",
    ("completion", "text"),
    "completion (text)",
    _completion_extract,
    ("text",),
    texts=("text",),
)
CHAT_SHAPES = {
    (field, role): _chat_shape(field, role, content, style)
    for field in CHAT_KEYS
    for role, content, style in MESSAGE_STYLES
}
EMPTY_CHAT = Shape("chat_template", (), "chat_template (empty)", lambda row: (), ())


def classify_keys(keys: tuple[str, ...]) -> Shape | ChatKeys | None:
    """Which format a row with these top-level keys is; the first match wins."""
    for field in CHAT_KEYS:  # before alpaca: chat exports often carry a prompt/answer too
        if field in keys:
            return ChatKeys(field)
    if "segments" in keys:
        return IO_SHAPE
    alpaca = _alpaca_shape(keys)
    if alpaca is not None:  # before completion: tatsu-lab/alpaca rows also carry "text"
        return alpaca
    if "text" in keys:
        return COMPLETION_SHAPE
    return None


def json_kind(value: Any) -> str:
    """How a JSON (or Parquet) value is named in messages: null, a number, a list, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value!r}"[:60]
    kinds: dict[type, str] = {list: "a list", dict: "an object", str: "a string"}
    return kinds.get(type(value), type(value).__name__)


def not_text(where: str, key: str, value: Any) -> DatasetError:
    """The error for a text column holding something else."""
    return DatasetError(
        f"{where}: '{key}' must be a string, got {json_kind(value)}",
        hint="Axolotl formats and tokenizes this field as text; write it as a string "
        '(e.g. "12345"), or fix or drop the row',
    )


def unknown_format(where: str, keys: Iterable[Any]) -> DatasetError:
    """The error for a row whose keys match no accepted format."""
    shown = ", ".join(repr(k) for k in list(keys)[:20]) or "(none)"
    return DatasetError(
        f"{where}: unknown dataset format; the row has keys {shown}",
        hint=f"accepted formats: {ACCEPTED_FORMATS}; see docs/dataset.md",
    )
