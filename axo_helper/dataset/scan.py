"""The one pass over all rows: format agreement, exact counts, the sample, roles, warnings.

Owns `Scan`, the state every reader feeds row by row, the per-row checks of chat messages
and input_output segments, and `Reservoir`, the seeded sample that keeps memory flat
however large the data is.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from axo_helper.dataset.problems import loc
from axo_helper.dataset.shapes import (
    AXOLOTL_DEFAULT_ROLES,
    CHAT_SHAPES,
    EMPTY_CHAT,
    INPUT_KEYS,
    IO_SHAPE,
    MESSAGE_STYLES,
    ChatKeys,
    Shape,
    classify_keys,
    first_present,
    not_text,
    unknown_format,
)
from axo_helper.errors import DatasetError

MAX_ROLES = 256  # stop collecting role names past this (speaker names used as roles)


class Reservoir:
    """Seeded reservoir sample (Li's Algorithm L): O(k log(n/k)) random draws in all.

    `next` is the index of the next row to keep, so callers only build a payload for the
    rows that are kept, and whole Parquet row groups without one are skipped unread.
    """

    def __init__(self, k: int, seed: int):
        self.k = k
        self.items: list[Any] = []
        self.next = 0
        self._rng = random.Random(seed)
        self._w = 1.0

    def _u(self) -> float:
        return 1.0 - self._rng.random()  # (0, 1]: log() never sees 0

    def _advance(self, index: int) -> None:
        self._w = min(self._w * math.exp(math.log(self._u()) / self.k), math.nextafter(1.0, 0.0))
        self.next = index + 1 + math.floor(math.log(self._u()) / math.log1p(-self._w))

    def add(self, index: int, item: Any) -> None:
        """Keep `item`, the row at `index` (== self.next)."""
        if len(self.items) < self.k:
            self.items.append(item)
            if len(self.items) < self.k:
                self.next = index + 1
            else:
                self._advance(index)
        else:
            self.items[self._rng.randrange(self.k)] = item
            self._advance(index)


class Scan:
    """State of one pass over all files: format, counts, sample, roles, keys."""

    def __init__(self, max_token_rows: int, seed: int):
        self.rows = 0
        self.reservoir = Reservoir(max_token_rows, seed)
        self.shape: Shape | None = None
        self.first_where = ""
        self.cache: dict[tuple[Any, ...], Shape | ChatKeys | None] = {}
        self.keys: dict[str, None] = {}  # ordered union of the top-level keys
        self.roles: set[Any] = set()  # role values as found (normally str)
        self.input_keys: set[str] = set()
        self.system = False
        self.empty_chats = 0
        self.first_empty_chat = ""
        self.longest_size = -1
        self.longest: tuple[Shape, dict[str, Any]] | None = None

    # -- classification
    def classify(self, keys: tuple[Any, ...], file: Path, line: int | None) -> Shape | ChatKeys:
        got = classify_keys(keys)
        if got is None:
            raise unknown_format(loc(file, line), keys)
        self.cache[keys] = got
        for k in keys:
            self.keys[str(k)] = None
        if isinstance(got, Shape) and got.type == "alpaca":
            if got.input_key:
                self.input_keys.add(got.input_key)
            self.system = self.system or got.has_system
        return got

    def agree(self, shape: Shape, file: Path, line: int | None) -> None:
        """Every row must share the first row's format (one Axolotl `datasets:` entry)."""
        if self.shape is None:
            self.shape = shape
            self.first_where = loc(file, line)
        elif shape is not self.shape and shape.core != self.shape.core:
            raise DatasetError(
                f"mixed dataset formats: {loc(file, line)} is {shape.label} but "
                f"{self.first_where} is {self.shape.label}",
                hint="Axolotl reads one format per `datasets:` entry; split the rows into one "
                "file per format and list each file under `datasets:`",
            )

    def chat_row(self, field: str, row: dict[str, Any], file: Path, line: int | None) -> Shape:
        msgs = row[field]
        if type(msgs) is not list:
            raise DatasetError(
                f"{loc(file, line)}: '{field}' must be a list of messages, got {type(msgs).__name__}",
                hint='each message is an object such as {"role": "user", "content": "..."}',
            )
        if not msgs:
            if not self.empty_chats:
                self.first_empty_chat = loc(file, line)
            self.empty_chats += 1
            return EMPTY_CHAT
        role, content = _message_style(field, msgs[0], file, line)
        try:
            if len(self.roles) < MAX_ROLES:
                self.roles.update([m[role] for m in msgs])
            else:
                for m in msgs:
                    m[role]  # still check every message has its role
        except (KeyError, TypeError, IndexError):
            raise DatasetError(
                f"{loc(file, line)}: every message in '{field}' needs a '{role}' key with a "
                f"string value (the first message uses {role}/{content})",
                hint="use one key style for all messages of all rows",
            ) from None
        _check_contents(field, msgs, role, content, file, line)
        return CHAT_SHAPES[(field, role)]

    def row(self, row: dict[str, Any], size: int, file: Path, line: int | None) -> None:
        """Classify, count and maybe sample one parsed row. `size`: its length in the file."""
        keys = tuple(row)
        got = self.cache.get(keys)
        if got is None:
            got = self.classify(keys, file, line)
        if isinstance(got, ChatKeys):
            shape = self.chat_row(got.field, row, file, line)
        else:
            shape = got
            if shape is IO_SHAPE:
                check_segments(row, file, line)
            elif shape.texts:
                check_texts(shape, row, file, line)
        if shape is not self.shape and shape is not EMPTY_CHAT:
            self.agree(shape, file, line)
        index = self.rows
        self.rows += 1
        if index == self.reservoir.next:
            self.reservoir.add(index, shape.extract(row))
        # The longest row by size is always tokenized too, so `max` is not only the
        # sample's maximum.
        if size > self.longest_size:
            self.longest_size = size
            self.longest = (shape, row)

    def warnings(self) -> list[str]:
        out = []
        if self.empty_chats:
            out.append(
                f"{self.empty_chats} rows have an empty conversation (first: "
                f"{self.first_empty_chat}); Axolotl produces no tokens for them"
            )
        if len(self.input_keys) > 1:
            out.append(
                f"rows use more than one input column ({', '.join(sorted(self.input_keys))}); "
                f"the mapping reads '{first_present(INPUT_KEYS, self.input_keys)}' only"
            )
        if self.shape is not None and self.shape.type == "chat_template":
            unknown = sorted(map(str, self.roles - AXOLOTL_DEFAULT_ROLES))
            if unknown:
                out.append(
                    f"roles {unknown} are not in Axolotl's default role mapping "
                    "(system, user/human, assistant/gpt, tool); add a `roles:` mapping to the "
                    "dataset entry"
                )
            if len(self.roles) >= MAX_ROLES:
                out.append(f"more than {MAX_ROLES} distinct roles; only the first were recorded")
        return out


def _message_style(field: str, m0: Any, file: Path, line: int | None) -> tuple[str, str]:
    """The (role, content) keys of a conversation, read off its first message."""
    for role, content, _ in MESSAGE_STYLES:
        if type(m0) is dict and role in m0 and content in m0:
            return role, content
    found = sorted(m0) if type(m0) is dict else type(m0).__name__
    raise DatasetError(
        f"{loc(file, line)}: a message in '{field}' has keys {found}",
        hint="messages need role/content (OpenAI) or from/value (ShareGPT) keys",
    )


def _check_contents(
    field: str, msgs: list[Any], role: str, content: str, file: Path, line: int | None
) -> None:
    for i, m in enumerate(msgs):
        # Axolotl's chat template renders message[content]; a missing or null one
        # fails deep inside Jinja without naming the row, so name it here.
        if m.get(content) is None:
            raise DatasetError(
                f"{loc(file, line)}: message {i} in '{field}' has no '{content}' "
                f"(role {m.get(role)!r})",
                hint=f"give every message a '{content}' string (it may be empty) or drop the row",
            )


def check_texts(shape: Shape, row: dict[str, Any], file: Path, line: int | None) -> None:
    """The columns Axolotl formats as text hold strings (optional ones may be null)."""
    for key in shape.texts:
        if type(row[key]) is not str:
            raise not_text(loc(file, line), key, row[key])
    for key in shape.optional_texts:
        value = row.get(key)
        if value is not None and type(value) is not str:
            raise not_text(loc(file, line), key, value)


def check_segments(row: dict[str, Any], file: Path, line: int | None) -> None:
    """An input_output row: a list of {"text": ..., "label": ...} segments."""
    segs = row["segments"]
    try:
        if type(segs) is not list:
            raise TypeError
        for i, s in enumerate(segs):
            value, _ = s["text"], s["label"]
            if type(value) is not str:
                raise not_text(f"{loc(file, line)}: segment {i}", "text", value)
    except (KeyError, TypeError, IndexError):
        raise DatasetError(
            f'{loc(file, line)}: \'segments\' must be a list of {{"text": ..., "label": true|false}}',
            hint="this is Axolotl's input_output format; see docs/dataset.md",
        ) from None
