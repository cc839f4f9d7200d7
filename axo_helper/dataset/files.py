"""Which files of a --data path Axolotl trains on, found the way Hugging Face finds them.

Owns the accepted suffixes, the recursive directory walk (hidden and `__` entries
skipped), the "train" split chosen by file and folder names, and the one dataset builder
(file type) `load_dataset(directory)` keeps.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Literal

from axo_helper.errors import DatasetError, DatasetPathError

FileFormat = Literal["jsonl", "json", "parquet", "csv", "txt"]

# Axolotl reads .json and .jsonl with the same `json` builder; .txt is one row per line.
SUFFIXES: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".txt": "txt",
}


def data_files(root: Path) -> tuple[list[Path], list[str]]:
    """The files under `root` that Axolotl trains on, and warnings about the ones left out."""
    if not root.exists():
        raise DatasetPathError(
            f"dataset path {root} does not exist",
            hint="pass a .jsonl, .json, .parquet, .csv or .txt file, or a directory of them",
        )
    if root.is_file():
        if root.suffix.lower() not in SUFFIXES:
            raise DatasetPathError(
                f"{root}: unsupported file type '{root.suffix or '(none)'}'",
                hint="use .jsonl, .json, .parquet, .csv or .txt (decompress .gz files first)",
            )
        return [root], []
    if not root.is_dir():  # a FIFO, a socket or a device: nothing Axolotl can load
        raise DatasetPathError(
            f"dataset path {root} is not a regular file or a directory (a pipe, socket or device)",
            hint="write the data to a .jsonl, .json, .parquet, .csv or .txt file first; "
            "Axolotl reads it more than once",
        )
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
