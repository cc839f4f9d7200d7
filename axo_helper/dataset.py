"""Dataset inspection: which Axolotl dataset type a file holds, how many rows, how long they are.

`inspect(path)` streams a .jsonl/.json/.parquet/.csv/.txt file, or a directory of them, once:

- every row is parsed and classified, so a malformed line, a binary file or a second
  format half-way through is reported with its file and line;
- rows are counted exactly;
- a seeded reservoir sample (at most `max_token_rows` rows) is kept for token statistics,
  so memory stays flat however large the file is;
- the sample is tokenized with the model's own fast tokenizer (tokenizer.json, through the
  Rust `tokenizers` library) when one is given, else estimated from characters
  (`CHARS_PER_TOKEN`) and flagged approximate.

Plan path: no torch, transformers or Axolotl import here. `tokenizers` and `pyarrow` are
imported lazily, only when a tokenizer.json or a Parquet file is actually read.
See docs/dataset.md for the accepted formats and how they map to Axolotl's `datasets:`.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from axo_helper.errors import EXIT_USAGE, DatasetError
from axo_helper.specs import DatasetType, DataSpec, TokenStats

__all__ = [
    "ALPACA_NO_INPUT_PREAMBLE",
    "ALPACA_PREAMBLE",
    "CHARS_PER_TOKEN",
    "CHAT_TOKENS_PER_MESSAGE",
    "CJK_TOKENS_PER_CHAR",
    "NON_ASCII_TOKENS_PER_CHAR",
    "SPECIAL_TOKENS_PER_ROW",
    "approx_tokens",
    "axolotl_dataset_entry",
    "inspect",
]

FileFormat = Literal["jsonl", "json", "parquet", "csv", "txt"]

# Axolotl reads .json and .jsonl with the same `json` builder; .txt is one row per line.
SUFFIXES: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".txt": "txt",
}

# ---------------------------------------------------------------- token approximation
# Without the model's tokenizer, tokens are estimated from characters. The usual rule of
# thumb for English with GPT-style BPE vocabularies (cl100k, Llama 3's 128k) is about 4
# characters per token (OpenAI, "What are tokens and how to count them"); 32k-vocabulary
# SentencePiece tokenizers (Llama 2, Mistral) split finer. 3.6 sits below both on purpose:
# an overestimate plans a longer sequence (safe), an underestimate truncates or OOMs.
CHARS_PER_TOKEN = 3.6
# CJK ideographs, kana and Hangul are mostly one token each or more in these vocabularies;
# other non-ASCII letters (accents, Cyrillic, Greek) are split about every two characters.
CJK_TOKENS_PER_CHAR = 1.0
NON_ASCII_TOKENS_PER_CHAR = 0.5
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")

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
_ALPACA_TURN = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
_ALPACA_TURN_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"

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

_SNIFF_BYTES = 8192
_JSON_CHUNK = 1 << 20  # characters read at a time from a .json array
_MAX_JSON_RECORD = 64 << 20  # one array element may not exceed this (characters)
_MAX_ROLES = 256  # stop collecting role names past this (speaker names used as roles)
_TOKENIZE_BATCH = 2048


# ---------------------------------------------------------------- public API
def inspect(
    path: str | Path,
    *,
    tokenizer: str | Path | None = None,
    max_token_rows: int = 20_000,
    seed: int = 0,
) -> DataSpec:
    """Detect the Axolotl dataset type of `path`, count its rows and measure their length.

    path: a .jsonl/.json/.parquet/.csv/.txt file, or a directory searched recursively for
    them (hidden and `_`-prefixed entries skipped, files in sorted order).
    tokenizer: a directory holding tokenizer.json, or a tokenizer.json file; None (or no
    tokenizer.json there) estimates tokens from characters and sets approximate=True.
    max_token_rows: size of the seeded reservoir sample that is tokenized.
    """
    if max_token_rows < 1:
        raise DatasetError(
            f"max_token_rows must be at least 1, got {max_token_rows}", exit_code=EXIT_USAGE
        )
    root = Path(path).expanduser()
    files, warnings = _data_files(root)
    tok_file = _tokenizer_file(tokenizer, warnings) if tokenizer is not None else None

    scan = _Scan(max_token_rows, seed)
    for file in files:
        before = scan.rows
        try:
            _SCANNERS[SUFFIXES[file.suffix.lower()]](scan, file)
        except OSError as e:  # unreadable: permissions, a vanished file, an I/O error
            raise DatasetError(
                f"cannot read {file}: {e.strerror or e}", hint="check the file's permissions"
            ) from None
        if scan.rows == before:
            if len(files) == 1:
                raise DatasetError(
                    f"{file} holds no rows", hint="point --data at a file with training examples"
                )
            warnings.append(f"{file} holds no rows")
    if scan.rows == 0:
        raise DatasetError(
            f"{root} holds no rows in {len(files)} data files",
            hint="point --data at a file with training examples",
        )
    if scan.shape is None:  # every row was an empty conversation
        raise DatasetError(
            f"every conversation in {root} is empty",
            hint="each row needs a non-empty list of messages",
        )
    shape = scan.shape
    fields = _final_fields(shape, scan)
    warnings += scan.warnings()

    counter = _token_counter(tok_file, warnings)
    segments = _SEGMENTS[shape.type]
    fmt = _alpaca_format(fields) if shape.type == "alpaca" else None
    sample = [segments(payload, fmt) for payload in scan.reservoir.items]
    lengths = counter(sample)
    longest = 0
    if scan.longest is not None:
        longest_shape, longest_row = scan.longest
        longest = counter([segments(longest_shape.extract(longest_row), fmt)])[0]
    stats = _stats(lengths, rows=scan.rows, longest=longest)

    # One builder's files remain (see _one_builder); .json with .jsonl is the json builder.
    kinds = sorted({SUFFIXES[f.suffix.lower()] for f in files})
    file_format: Any = kinds[0] if len(kinds) == 1 else "json"

    return DataSpec(
        path=str(root),
        files=tuple(str(f) for f in files),
        type=shape.type,
        fields=fields,
        rows=scan.rows,
        sampled_rows=len(sample),
        tokens=stats,
        tokenizer=str(tok_file) if counter.exact else None,
        approximate=not counter.exact,
        keys=tuple(scan.keys),
        file_format=file_format,
        warnings=tuple(warnings),
        roles=tuple(sorted(map(str, scan.roles))) if shape.type == "chat_template" else (),
    )


def axolotl_dataset_entry(spec: DataSpec) -> dict[str, Any]:
    """One Axolotl `datasets:` entry for `spec`: path, type and the field mapping.

    Alpaca with non-standard keys becomes Axolotl's user-defined prompt type, whose mapping
    is the value of `type:`; every other type keeps its name and puts `fields` beside it.
    Model-dependent keys (chat_template, roles_to_train, ...) are the renderer's to add.
    """
    entry: dict[str, Any] = {"path": spec.path}
    if spec.type == "alpaca" and spec.fields:
        entry["type"] = dict(spec.fields)
    else:
        entry["type"] = spec.type
        entry.update(spec.fields)
    return entry


# ---------------------------------------------------------------- file discovery
def _data_files(root: Path) -> tuple[list[Path], list[str]]:
    if not root.exists():
        raise DatasetError(
            f"dataset path {root} does not exist",
            hint="pass a .jsonl, .json, .parquet, .csv or .txt file, or a directory of them",
            exit_code=EXIT_USAGE,
        )
    if root.is_file():
        if root.suffix.lower() not in SUFFIXES:
            raise DatasetError(
                f"{root}: unsupported file type '{root.suffix or '(none)'}'",
                hint="use .jsonl, .json, .parquet, .csv or .txt (decompress .gz files first)",
                exit_code=EXIT_USAGE,
            )
        return [root], []
    files: list[Path] = []
    ignored: list[str] = []
    # Recursive like Hugging Face's load_dataset(directory), which Axolotl calls for a
    # directory path; like it, skip hidden (".") and special ("__") files and folders.
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).parts
        if any(part.startswith((".", "__")) for part in rel) or not p.is_file():
            continue
        if p.suffix.lower() in SUFFIXES:
            files.append(p)
        else:
            ignored.append(str(p.relative_to(root)))
    if not files:
        found = f" (found only: {', '.join(ignored[:5])})" if ignored else ""
        raise DatasetError(
            f"{root} contains no .jsonl, .json, .parquet, .csv or .txt files{found}",
            hint="point --data at a data file or a directory of them",
        )
    warnings = []
    if ignored:
        warnings.append(f"ignored files that are not data: {_some(ignored)}")
    return _one_builder(root, _train_split(root, files, warnings), warnings), warnings


def _some(names: list[str], n: int = 5) -> str:
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


# Hugging Face's split keywords (datasets.data_files.SPLIT_KEYWORDS) and the characters that
# may surround them in a file or folder name (NON_WORDS_CHARS).
_SPLIT_KEYWORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}
_SEP = "[-._ 0-9]"
_SPLIT_IN_DIR = {
    split: re.compile(rf"(?:^|{_SEP})(?:{'|'.join(words)})(?:{_SEP}|$)")
    for split, words in _SPLIT_KEYWORDS.items()
}
_SPLIT_IN_FILE = {
    split: re.compile(rf"(?:^|{_SEP})(?:{'|'.join(words)}){_SEP}")
    for split, words in _SPLIT_KEYWORDS.items()
}


# Hugging Face's dataset builder for each suffix, and its tie-break order (most preferred
# last) from datasets.load.infer_module_for_data_files_list.
_BUILDERS = {
    ".parquet": "parquet",
    ".jsonl": "json",
    ".json": "json",
    ".csv": "csv",
    ".txt": "text",
}
_TIE_BREAK = (".txt", ".csv", ".json", ".jsonl", ".parquet")


def _one_builder(root: Path, files: list[Path], warnings: list[str]) -> list[Path]:
    """Keep the files of the one type Hugging Face loads from a directory.

    load_dataset(directory) picks one builder by the most common suffix (a draw goes to
    .parquet, then .jsonl, .json, .csv) and silently leaves files of other types out.
    """
    counts = Counter(f.suffix.lower() for f in files)
    if len({_BUILDERS[sfx] for sfx in counts}) == 1:
        return files
    top = max(counts, key=lambda sfx: (counts[sfx], _TIE_BREAK.index(sfx)))
    keep = [f for f in files if _BUILDERS[f.suffix.lower()] == _BUILDERS[top]]
    left = [str(f.relative_to(root)) for f in files if f not in keep]
    warnings.append(
        f"not counted: {_some(left)}; Hugging Face datasets loads one file type from a "
        f"directory (here {top}, the most common) and leaves the others out; give each type "
        "its own `datasets:` entry"
    )
    return keep


def _train_split(root: Path, files: list[Path], warnings: list[str]) -> list[Path]:
    """The files of a directory that Axolotl trains on.

    Hugging Face's load_dataset(directory) assigns files to splits by keywords in folder
    names, else in file names (first rule that matches any file wins), and loads files
    without a keyword only when no file has one. Axolotl then takes the "train" split.
    """
    for rules in (_SPLIT_IN_DIR, _SPLIT_IN_FILE):
        splits: dict[Path, str | None] = {}
        for f in files:
            rel = f.relative_to(root).parts
            names = rel[:-1] if rules is _SPLIT_IN_DIR else rel[-1:]
            splits[f] = next(
                (s for s, rx in rules.items() if any(rx.search(n) for n in names)), None
            )
        if any(splits.values()):
            break
    else:
        return files  # no split names: everything is "train"
    train = [f for f in files if splits[f] == "train"]
    left = [
        f"{f.relative_to(root)} ({splits[f] or 'no split name'})" for f in files if f not in train
    ]
    if not train:
        raise DatasetError(
            f"{root}: Hugging Face datasets would find no 'train' split (files: {_some(left)})",
            hint="name the training files train*.jsonl (or put them in a train/ folder), "
            "or point --data at one file",
        )
    if left:
        warnings.append(
            f"not counted: {_some(left)}; Hugging Face datasets splits a directory by file and "
            "folder names and Axolotl trains on the 'train' split only"
        )
    return train


def _sniff(file: Path, fh: BinaryIO) -> None:
    """Refuse binary or non-UTF-8 files before parsing them line by line."""
    head = fh.read(_SNIFF_BYTES)
    fh.seek(0)
    if b"\x00" in head:
        raise DatasetError(
            f"{file} looks binary (it contains NUL bytes)",
            hint="datasets must be UTF-8 text (JSONL, JSON, CSV) or Parquet",
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut by the sniff window is fine.
        if not (e.reason == "unexpected end of data" and len(head) == _SNIFF_BYTES):
            raise _not_utf8(file, head.count(b"\n", 0, e.start) + 1) from None


def _not_utf8(file: Path, line: int) -> DatasetError:
    return DatasetError(
        f"{file}:{line} is not UTF-8 text (or the file is binary)",
        hint="re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8",
    )


# ---------------------------------------------------------------- formats
@dataclass(frozen=True, eq=False)
class _Shape:
    """One row format. Instances are interned, so rows compare by identity first."""

    type: DatasetType
    core: tuple[str, ...]  # what every row must share for one `datasets:` entry
    label: str  # how the format is named in messages
    extract: Callable[[dict[str, Any]], tuple[str, ...]]  # row -> payload for token counting
    columns: tuple[str, ...]  # the keys extract reads (Parquet reads only these)
    input_key: str | None = None  # alpaca: the optional input column this row has
    has_system: bool = False  # alpaca: the row has a system column


@dataclass(frozen=True)
class _ChatKeys:
    """Key-level classification of a chat row; its message style is checked per row."""

    field: str


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    if isinstance(v, list):  # multimodal content parts: keep the text parts
        return "".join(_text(p.get("text")) if isinstance(p, dict) else _text(p) for p in v)
    return str(v)


def _alpaca_shape(keys: tuple[str, ...]) -> _Shape | None:
    instr = next((k for k in INSTRUCTION_KEYS if k in keys), None)
    out = next((k for k in OUTPUT_KEYS if k in keys), None)
    if instr is None or out is None:
        return None
    inp = next((k for k in INPUT_KEYS if k in keys), None)
    system = SYSTEM_KEY in keys

    def extract(row: dict[str, Any]) -> tuple[str, ...]:
        return (
            _text(row.get(instr)),
            _text(row.get(inp)) if inp else "",
            _text(row.get(out)),
            _text(row.get(SYSTEM_KEY)) if system else "",
        )

    cols = tuple(k for k in (instr, inp, out, SYSTEM_KEY if system else None) if k)
    return _Shape(
        "alpaca", ("alpaca", instr, out), f"alpaca ({instr}/{out})", extract, cols, inp, system
    )


def _chat_shape(field: str, role: str, content: str, style: str) -> _Shape:
    def extract(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(_text(m.get(content)) for m in row.get(field) or ())

    return _Shape(
        "chat_template",
        ("chat_template", field, role, content),
        f"chat_template ({field}, {style} keys {role}/{content})",
        extract,
        (field,),
    )


def _io_extract(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(_text(s.get("text")) for s in row.get("segments") or ())


def _completion_extract(row: dict[str, Any]) -> tuple[str, ...]:
    return (_text(row.get("text")),)


_IO_SHAPE = _Shape(
    "input_output", ("input_output",), "input_output (segments)", _io_extract, ("segments",)
)
_COMPLETION_SHAPE = _Shape(
    "completion", ("completion", "text"), "completion (text)", _completion_extract, ("text",)
)
_CHAT_SHAPES = {
    (field, role): _chat_shape(field, role, content, style)
    for field in CHAT_KEYS
    for role, content, style in MESSAGE_STYLES
}
_EMPTY_CHAT = _Shape("chat_template", (), "chat_template (empty)", lambda row: (), ())


def _classify_keys(keys: tuple[str, ...]) -> _Shape | _ChatKeys | None:
    """Which format a row with these top-level keys is; the first match wins."""
    for field in CHAT_KEYS:  # before alpaca: chat exports often carry a prompt/answer too
        if field in keys:
            return _ChatKeys(field)
    if "segments" in keys:
        return _IO_SHAPE
    alpaca = _alpaca_shape(keys)
    if alpaca is not None:  # before completion: tatsu-lab/alpaca rows also carry "text"
        return alpaca
    if "text" in keys:
        return _COMPLETION_SHAPE
    return None


def _unknown(where: str, keys: Iterable[Any]) -> DatasetError:
    shown = ", ".join(repr(k) for k in list(keys)[:20]) or "(none)"
    return DatasetError(
        f"{where}: unknown dataset format; the row has keys {shown}",
        hint=f"accepted formats: {ACCEPTED_FORMATS}; see docs/dataset.md",
    )


# ---------------------------------------------------------------- the scan
class _Reservoir:
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


class _Scan:
    """State of one pass over all files: format, counts, sample, roles, keys."""

    def __init__(self, max_token_rows: int, seed: int):
        self.rows = 0
        self.reservoir = _Reservoir(max_token_rows, seed)
        self.shape: _Shape | None = None
        self.first_where = ""
        self.cache: dict[tuple[Any, ...], _Shape | _ChatKeys | None] = {}
        self.keys: dict[str, None] = {}  # ordered union of the top-level keys
        self.roles: set[Any] = set()  # role values as found (normally str)
        self.input_keys: set[str] = set()
        self.system = False
        self.empty_chats = 0
        self.first_empty_chat = ""
        self.longest_size = -1
        self.longest: tuple[_Shape, dict[str, Any]] | None = None

    # -- classification
    def classify(self, keys: tuple[Any, ...], file: Path, line: int | None) -> _Shape | _ChatKeys:
        got = _classify_keys(keys)
        if got is None:
            raise _unknown(_loc(file, line), keys)
        self.cache[keys] = got
        for k in keys:
            self.keys[str(k)] = None
        if isinstance(got, _Shape) and got.type == "alpaca":
            if got.input_key:
                self.input_keys.add(got.input_key)
            self.system = self.system or got.has_system
        return got

    def agree(self, shape: _Shape, file: Path, line: int | None) -> None:
        """Every row must share the first row's format (one Axolotl `datasets:` entry)."""
        if self.shape is None:
            self.shape = shape
            self.first_where = _loc(file, line)
        elif shape is not self.shape and shape.core != self.shape.core:
            raise DatasetError(
                f"mixed dataset formats: {_loc(file, line)} is {shape.label} but "
                f"{self.first_where} is {self.shape.label}",
                hint="Axolotl reads one format per `datasets:` entry; split the rows into one "
                "file per format and list each file under `datasets:`",
            )

    def chat_row(self, field: str, row: dict[str, Any], file: Path, line: int | None) -> _Shape:
        msgs = row[field]
        if type(msgs) is not list:
            raise DatasetError(
                f"{_loc(file, line)}: '{field}' must be a list of messages, got {type(msgs).__name__}",
                hint='each message is an object such as {"role": "user", "content": "..."}',
            )
        if not msgs:
            if not self.empty_chats:
                self.first_empty_chat = _loc(file, line)
            self.empty_chats += 1
            return _EMPTY_CHAT
        m0 = msgs[0]
        for role, content, _ in MESSAGE_STYLES:
            if type(m0) is dict and role in m0 and content in m0:
                break
        else:
            found = sorted(m0) if type(m0) is dict else type(m0).__name__
            raise DatasetError(
                f"{_loc(file, line)}: a message in '{field}' has keys {found}",
                hint="messages need role/content (OpenAI) or from/value (ShareGPT) keys",
            )
        try:
            if len(self.roles) < _MAX_ROLES:
                self.roles.update([m[role] for m in msgs])
            else:
                for m in msgs:
                    m[role]  # still check every message has its role
        except (KeyError, TypeError, IndexError):
            raise DatasetError(
                f"{_loc(file, line)}: every message in '{field}' needs a '{role}' key with a "
                f"string value (the first message uses {role}/{content})",
                hint="use one key style for all messages of all rows",
            ) from None
        for i, m in enumerate(msgs):
            # Axolotl's chat template renders message[content]; a missing or null one
            # fails deep inside Jinja without naming the row, so name it here.
            if m.get(content) is None:
                raise DatasetError(
                    f"{_loc(file, line)}: message {i} in '{field}' has no '{content}' "
                    f"(role {m.get(role)!r})",
                    hint=f"give every message a '{content}' string (it may be empty) "
                    "or drop the row",
                )
        return _CHAT_SHAPES[(field, role)]

    def row(self, row: dict[str, Any], size: int, file: Path, line: int | None) -> None:
        """Classify, count and maybe sample one parsed row. `size`: its length in the file."""
        keys = tuple(row)
        got = self.cache.get(keys)
        if got is None:
            got = self.classify(keys, file, line)
        if isinstance(got, _ChatKeys):
            shape = self.chat_row(got.field, row, file, line)
        else:
            shape = got
            if shape is _IO_SHAPE:
                _check_segments(row, file, line)
        if shape is not self.shape and shape is not _EMPTY_CHAT:
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
                f"the mapping reads '{_first(INPUT_KEYS, self.input_keys)}' only"
            )
        if self.shape is not None and self.shape.type == "chat_template":
            unknown = sorted(map(str, self.roles - AXOLOTL_DEFAULT_ROLES))
            if unknown:
                out.append(
                    f"roles {unknown} are not in Axolotl's default role mapping "
                    "(system, user/human, assistant/gpt, tool); add a `roles:` mapping to the "
                    "dataset entry"
                )
            if len(self.roles) >= _MAX_ROLES:
                out.append(f"more than {_MAX_ROLES} distinct roles; only the first were recorded")
        return out


def _first(order: tuple[str, ...], present: set[str]) -> str:
    return next(k for k in order if k in present)


def _check_segments(row: dict[str, Any], file: Path, line: int | None) -> None:
    segs = row["segments"]
    try:
        if type(segs) is not list:
            raise TypeError
        for s in segs:
            s["text"], s["label"]
    except (KeyError, TypeError, IndexError):
        raise DatasetError(
            f'{_loc(file, line)}: \'segments\' must be a list of {{"text": ..., "label": true|false}}',
            hint="this is Axolotl's input_output format; see docs/dataset.md",
        ) from None


def _final_fields(shape: _Shape, scan: _Scan) -> dict[str, Any]:
    """The Axolotl field mapping for the whole dataset (see docs/dataset.md)."""
    if shape.type == "chat_template":
        _, field, role, content = shape.core
        return {
            "field_messages": field,
            "message_property_mappings": {"role": role, "content": content},
        }
    if shape.type == "completion":
        return {"field": "text"}
    if shape.type == "input_output":
        return {}
    _, instr, out = shape.core
    inp = _first(INPUT_KEYS, scan.input_keys) if scan.input_keys else None
    if instr == "instruction" and out == "output" and inp in (None, "input") and not scan.system:
        return {}  # plain `type: alpaca`
    # Axolotl's user-defined prompt type (axolotl.prompt_strategies.user_defined): the
    # Alpaca turn format without its preamble, or the raw prompt for prompt/completion.
    fields: dict[str, Any] = {"field_instruction": instr}
    if inp:
        fields["field_input"] = inp
    fields["field_output"] = out
    if scan.system:
        fields["field_system"] = SYSTEM_KEY
        fields["system_format"] = "{system}\n\n"
    if instr == "prompt":
        fields["format"] = "{instruction}\n\n{input}"
        fields["no_input_format"] = "{instruction}"
    else:
        fields["format"] = _ALPACA_TURN
        fields["no_input_format"] = _ALPACA_TURN_NO_INPUT
    return fields


# ---------------------------------------------------------------- readers
def _loc(file: Path, line: int | None) -> str:
    """Where a row is, for messages: file:line, or the file alone (Parquet schema)."""
    return f"{file}:{line}" if line is not None else f"{file} (schema)"


def _bad_json(file: Path, line: int, raw: bytes | str, e: ValueError) -> DatasetError:
    if isinstance(e, UnicodeDecodeError):
        return _not_utf8(file, line)
    if (b"\x00" if isinstance(raw, bytes) else "\x00") in raw:  # type: ignore[operator]
        return DatasetError(
            f"{file}:{line} contains NUL bytes (binary data)",
            hint="datasets must be UTF-8 text (JSONL, JSON, CSV) or Parquet",
        )
    msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
    col = f", column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
    return DatasetError(
        f"{file}:{line}: malformed JSON ({msg}{col})",
        hint="each line of a JSONL file must be one complete JSON object",
    )


def _not_object(file: Path, line: int, obj: Any) -> DatasetError:
    return DatasetError(
        f"{file}:{line}: expected a JSON object (one training example), got {type(obj).__name__}",
        hint='each row is an object such as {"instruction": ..., "output": ...}',
    )


def _jsonl_lines(scan: _Scan, file: Path, fh: BinaryIO) -> None:
    # decode(bytes.decode()) skips json.loads' encoding detection: ~30% faster a line.
    decode = json.JSONDecoder().decode
    row = scan.row
    if fh.read(3) != b"\xef\xbb\xbf":  # a UTF-8 byte order mark
        fh.seek(0)
    for lineno, raw in enumerate(fh, 1):
        if raw.isspace():
            continue
        try:
            obj = decode(raw.decode("utf-8"))
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
            raise _bad_json(file, lineno, raw, e) from None
        if type(obj) is not dict:
            raise _not_object(file, lineno, obj)
        row(obj, len(raw), file, lineno)


def _scan_json(scan: _Scan, file: Path) -> None:
    """A .json or .jsonl file: a top-level array, or JSON Lines (Axolotl's json builder
    reads either from either suffix)."""
    with file.open("rb") as fh:
        _sniff(file, fh)
        head = fh.read(_SNIFF_BYTES).lstrip(b"\xef\xbb\xbf").lstrip()
        fh.seek(0)
        if head[:1] == b"[":
            _scan_json_array(scan, file)
            return
        try:
            _jsonl_lines(scan, file, fh)
        except DatasetError as e:
            # A pretty-printed object fails on its first line; say what the file should be.
            if file.suffix.lower() == ".json" and scan.rows == 0 and "malformed JSON" in e.message:
                raise DatasetError(
                    f"{file}: neither a JSON array of records nor JSON Lines ({e.message})",
                    hint="write one object per line (JSONL) or a top-level [ ... ] array; "
                    "a single object holding a list must be unwrapped",
                ) from None
            raise


def _scan_json_array(scan: _Scan, file: Path) -> None:
    """Stream the elements of a top-level JSON array without loading the whole file."""
    decode = json.JSONDecoder().raw_decode
    ws = re.compile(r"[ \t\n\r]*")
    with file.open("r", encoding="utf-8-sig", newline="") as fh:
        buf = ""
        pos = 0
        eof = False
        line = 1  # line number at `counted`
        counted = 0

        def more() -> bool:
            nonlocal buf, pos, counted, eof, line
            if eof:
                return False
            try:
                chunk = fh.read(_JSON_CHUNK)
            except UnicodeDecodeError:
                raise _not_utf8(file, line + buf.count("\n", counted)) from None
            if not chunk:
                eof = True
                return False
            line += buf.count("\n", counted, pos)  # lines in the part dropped below
            buf = buf[pos:] + chunk
            counted = 0
            pos = 0
            return True

        def skip_ws() -> bool:
            """Move past whitespace; False at the end of the file."""
            nonlocal pos
            while True:
                m = ws.match(buf, pos)
                pos = m.end() if m else pos
                if pos < len(buf):
                    return True
                if not more():
                    return False

        def here() -> int:
            nonlocal line, counted
            line += buf.count("\n", counted, pos)
            counted = pos
            return line

        more()
        if not skip_ws():
            return
        if buf[pos] != "[":
            raise DatasetError(
                f"{file}:{here()}: expected a JSON array", hint="write [ {...}, ... ]"
            )
        pos += 1
        first = True
        while True:
            if not skip_ws():
                raise DatasetError(
                    f"{file}:{here()}: the JSON array is not closed with ']'",
                    hint="the file may be truncated",
                )
            if buf[pos] == "]":
                return
            if not first:
                if buf[pos] != ",":
                    raise DatasetError(
                        f"{file}:{here()}: malformed JSON (expected ',' or ']')",
                        hint="array elements are separated by commas",
                    )
                pos += 1
                if not skip_ws():
                    continue  # reports the unclosed array
            first = False
            start_line = here()
            while True:
                try:
                    obj, end = decode(buf, pos)
                    if end < len(buf) or eof:
                        break
                    # A record ends with '}', so one that reaches the end of the buffer may be
                    # a number or literal cut short: read on and decode it again.
                except json.JSONDecodeError as e:
                    # Only an error at the end of the buffer (or an unterminated string) can
                    # be a record cut by the chunking; anything earlier is really malformed.
                    cut = e.msg.startswith("Unterminated string") or e.pos >= len(buf) - 8
                    if len(buf) - pos > _MAX_JSON_RECORD:
                        raise DatasetError(
                            f"{file}:{start_line}: malformed JSON or a record over "
                            f"{_MAX_JSON_RECORD >> 20} MiB ({e.msg})",
                            hint="fix the record, or write the data as JSONL",
                        ) from None
                    if not cut or not more():
                        bad_line = start_line + buf.count("\n", pos, e.pos)
                        raise _bad_json(file, bad_line, buf[pos : e.pos], e) from None
                    continue
                if not more():
                    break
            if type(obj) is not dict:
                raise _not_object(file, start_line, obj)
            scan.row(obj, end - pos, file, start_line)
            pos = end
            if pos > _JSON_CHUNK:  # drop what is parsed, keep line numbers right
                here()
                buf = buf[pos:]
                counted = 0
                pos = 0


def _scan_txt(scan: _Scan, file: Path) -> None:
    """Axolotl reads a .txt file one row per line, as completion rows with a `text` column."""
    with file.open("rb") as fh:
        _sniff(file, fh)
        for lineno, raw in enumerate(fh, 1):
            if raw.isspace():
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise _not_utf8(file, lineno) from None
            scan.row({"text": text}, len(raw), file, lineno)


def _scan_csv(scan: _Scan, file: Path) -> None:
    with file.open("rb") as bfh:
        _sniff(file, bfh)
    old_limit = csv.field_size_limit()
    # The default 128 KiB field limit is too small for long documents; restored below.
    csv.field_size_limit(max(old_limit, _MAX_JSON_RECORD))
    try:
        with file.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader, None)
                if not header:
                    return
                keys = tuple(header)
                shape = _classify_keys(keys)
                if shape is None:
                    raise _unknown(_loc(file, 1), keys)
                if not isinstance(shape, _Shape) or shape.type == "input_output":
                    raise DatasetError(
                        f"{file}: a CSV column cannot hold "
                        f"{'conversations' if isinstance(shape, _ChatKeys) else 'segments'}",
                        hint="write conversations and segments as JSONL or Parquet",
                    )
                scan.classify(keys, file, 1)
                scan.agree(shape, file, 1)
                width = len(keys)
                for values in reader:
                    if not values:
                        continue  # a blank line
                    if len(values) > width:
                        raise DatasetError(
                            f"{file}:{reader.line_num}: {len(values)} fields, the header has {width}",
                            hint="quote fields that contain commas or newlines",
                        )
                    if len(values) < width:  # short rows: missing cells are empty
                        values += [""] * (width - len(values))
                    row = dict(zip(keys, values, strict=True))
                    scan.row(row, sum(map(len, values)), file, reader.line_num)
            except csv.Error as e:
                raise DatasetError(
                    f"{file}:{reader.line_num}: malformed CSV ({e})",
                    hint="check the quoting around that line",
                ) from None
            except UnicodeDecodeError:
                raise _not_utf8(file, reader.line_num + 1) from None
    finally:
        csv.field_size_limit(old_limit)


def _scan_parquet(scan: _Scan, file: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            f"{file}: reading Parquet needs pyarrow",
            hint='install it with: pip install "axo-helper[parquet]"',
        ) from None
    try:
        pf = pq.ParquetFile(file)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError with varied messages
        raise DatasetError(
            f"{file} is not a readable Parquet file ({e})",
            hint="check the file, or export the data as JSONL",
        ) from None
    keys = tuple(pf.schema_arrow.names)
    got = scan.cache.get(keys) or scan.classify(keys, file, None)
    shape = _parquet_chat_shape(file, pf, got.field) if isinstance(got, _ChatKeys) else got
    scan.agree(shape, file, None)
    cols = list(shape.columns)
    meta = pf.metadata
    start = scan.rows
    res = scan.reservoir
    for rg in range(meta.num_row_groups):
        n = meta.row_group(rg).num_rows
        # Chat data is read whole for its roles; otherwise only row groups with a sample.
        if shape.type != "chat_template" and res.next >= start + n:
            start += n
            continue
        offset = start
        try:
            for batch in pf.iter_batches(batch_size=8192, row_groups=[rg], columns=cols):
                if shape.type == "chat_template" and len(scan.roles) < _MAX_ROLES:
                    scan.roles.update(_parquet_roles(batch.column(0), shape.core[2]))
                end = offset + batch.num_rows
                while res.next < end:
                    row = batch.slice(res.next - offset, 1).to_pylist()[0]
                    res.add(res.next, shape.extract(row))
                offset = end
        except pa.ArrowException as e:  # a corrupt or truncated row group
            raise DatasetError(
                f"{file}: cannot read row group {rg} ({e})",
                hint="check the file, or export the data again",
            ) from None
        start += n
    scan.rows = start


def _parquet_chat_shape(file: Path, pf: Any, field: str) -> _Shape:
    import pyarrow as pa

    t = pf.schema_arrow.field(field).type
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_struct(t.value_type):
        names = {t.value_type.field(i).name for i in range(t.value_type.num_fields)}
        for role, content, _ in MESSAGE_STYLES:
            if role in names and content in names:
                return _CHAT_SHAPES[(field, role)]
        raise DatasetError(
            f"{file}: messages in column '{field}' have keys {sorted(names)}",
            hint="messages need role/content (OpenAI) or from/value (ShareGPT) keys",
        )
    raise DatasetError(
        f"{file}: column '{field}' is {t}, not a list of messages",
        hint="each message is a struct such as {role: string, content: string}",
    )


def _parquet_roles(column: Any, role: str) -> list[str]:
    import pyarrow.compute as pc

    values = pc.list_flatten(column).field(role)
    return [r for r in pc.unique(values).to_pylist() if r is not None]


_SCANNERS: dict[FileFormat, Callable[[_Scan, Path], None]] = {
    "jsonl": _scan_json,
    "json": _scan_json,
    "csv": _scan_csv,
    "parquet": _scan_parquet,
    "txt": _scan_txt,
}


# ---------------------------------------------------------------- tokens
@dataclass(frozen=True)
class _AlpacaFormat:
    standard: bool
    format: str = ""
    no_input_format: str = ""
    system_format: str = ""


def _alpaca_format(fields: dict[str, Any]) -> _AlpacaFormat:
    if not fields:
        return _AlpacaFormat(standard=True)
    return _AlpacaFormat(
        standard=False,
        format=fields["format"],
        no_input_format=fields["no_input_format"],
        system_format=fields.get("system_format", ""),
    )


Segments = tuple[tuple[str, ...], int]  # texts Axolotl tokenizes separately, extra tokens


def _alpaca_segments(p: tuple[str, ...], fmt: _AlpacaFormat | None) -> Segments:
    instr, inp, out, system = p
    assert fmt is not None
    if fmt.standard:  # mirrors axolotl.prompters.AlpacaPrompter._build_result
        pre = ALPACA_PREAMBLE if inp else ALPACA_NO_INPUT_PREAMBLE
        turn = _ALPACA_TURN if inp else _ALPACA_TURN_NO_INPUT
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


_SEGMENTS: dict[str, Callable[[tuple[str, ...], Any], Segments]] = {
    "alpaca": _alpaca_segments,
    "chat_template": _chat_segments,
    "completion": _completion_segments,
    "input_output": _io_segments,
}


def approx_tokens(text: str) -> float:
    """Estimated tokens in `text` without a tokenizer (see CHARS_PER_TOKEN)."""
    if text.isascii():
        return len(text) / CHARS_PER_TOKEN
    ascii_chars = len(text.encode("ascii", "ignore"))
    cjk = len(_CJK.findall(text))
    other = len(text) - ascii_chars - cjk
    return (
        ascii_chars / CHARS_PER_TOKEN
        + cjk * CJK_TOKENS_PER_CHAR
        + other * NON_ASCII_TOKENS_PER_CHAR
    )


class _Counter:
    """Counts tokens of many rows: with a tokenizers.Tokenizer, or approximately."""

    def __init__(self, tokenizer: Any | None):
        self.tokenizer = tokenizer
        self.exact = tokenizer is not None

    def __call__(self, rows: list[Segments]) -> list[int]:
        if self.tokenizer is None:
            return [
                math.ceil(sum(approx_tokens(t) for t in texts)) + extra for texts, extra in rows
            ]
        counts = [extra for _, extra in rows]
        flat: Iterator[tuple[int, str]] = (
            (i, t) for i, (texts, _) in enumerate(rows) for t in texts
        )
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        while True:
            chunk = [pair for _, pair in zip(range(_TOKENIZE_BATCH), flat, strict=False)]
            if not chunk:
                return counts
            encodings = encode([t for _, t in chunk], add_special_tokens=False)
            for (i, _), enc in zip(chunk, encodings, strict=True):
                counts[i] += len(enc.ids)


def _tokenizer_file(tokenizer: str | Path, warnings: list[str]) -> Path | None:
    p = Path(tokenizer).expanduser()
    if not p.exists():
        raise DatasetError(
            f"tokenizer path {p} does not exist",
            hint="pass a directory containing tokenizer.json, or the tokenizer.json file",
            exit_code=EXIT_USAGE,
        )
    file = p / "tokenizer.json" if p.is_dir() else p
    if not file.is_file():
        warnings.append(
            f"no tokenizer.json in {p} (only fast tokenizers are read); token counts are "
            f"estimated at {CHARS_PER_TOKEN} characters per token"
        )
        return None
    return file


def _token_counter(file: Path | None, warnings: list[str]) -> _Counter:
    if file is None:
        return _Counter(None)
    try:
        from tokenizers import Tokenizer
    except ImportError:
        warnings.append("the `tokenizers` library is not installed; token counts are estimated")
        return _Counter(None)
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as e:  # a Rust-side parse error: report it, plan on the estimate
        warnings.append(f"could not read {file} ({e}); token counts are estimated")
        return _Counter(None)
    # tokenizer.json may carry truncation/padding settings that would distort lengths.
    tok.no_truncation()
    tok.no_padding()
    return _Counter(tok)


def _percentile(sorted_values: list[int], p: float) -> int:
    """Nearest-rank percentile: the smallest value with at least p% of values <= it."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _stats(lengths: list[int], *, rows: int, longest: int) -> TokenStats:
    values = sorted(lengths)
    total_sample = sum(values)
    mean = total_sample / len(values)
    exact = len(values) == rows
    return TokenStats(
        p50=_percentile(values, 50),
        p95=_percentile(values, 95),
        p99=_percentile(values, 99),
        max=max(values[-1], longest),
        mean=mean,
        total=total_sample if exact else round(mean * rows),
    )
