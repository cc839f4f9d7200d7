"""Every bad input through the real CLI: a two-line message and the documented exit code.

Each case asserts the exit code docs/cli.md gives for it (and that the docs' table
says so), that stderr is exactly `error: what was wrong` + `  hint: what to do`,
that the message names what was wrong, and that no traceback escapes. Two cases
also run `axo-helper` as a new process, the way a user meets them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result

from axo_helper.errors import EXIT_FAILURE, EXIT_USAGE

LLAMA8 = "meta-llama/Llama-3.1-8B"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


# --------------------------------------------------------------------------- inputs
def _qa_rows(n: int) -> list[dict[str, str]]:
    return [
        {"instruction": f"question {i}?", "input": "", "output": f"answer {i}."} for i in range(n)
    ]


def _write_jsonl(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _no_config(tmp: Path) -> str:
    d = tmp / "weights-only"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"\0" * 16)
    return str(d)


def _bert(tmp: Path) -> str:
    d = tmp / "bert"
    d.mkdir()
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "vocab_size": 30522,
        "max_position_embeddings": 512,
    }
    (d / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return str(d)


def _empty(tmp: Path) -> str:
    p = tmp / "empty.jsonl"
    p.write_text("", encoding="utf-8")
    return str(p)


def _binary(tmp: Path) -> str:
    p = tmp / "blob.jsonl"
    p.write_bytes(bytes(range(256)) * 8)
    return str(p)


def _mixed(tmp: Path) -> str:
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    return str(_write_jsonl(tmp / "mixed.jsonl", [*_qa_rows(3), chat]))


def _unknown_keys(tmp: Path) -> str:
    return str(_write_jsonl(tmp / "odd.jsonl", [{"foo": 1, "bar": "x"}] * 3))


def _malformed_line(tmp: Path) -> str:
    p = _write_jsonl(tmp / "broken.jsonl", _qa_rows(3))
    with p.open("a", encoding="utf-8") as fh:
        fh.write('{"instruction": "cut off", \n')
    return str(p)


@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[Path], list[str]]  # plan options, built in a temp dir
    code: int
    says: tuple[str, ...]  # fragments of the error line (what was wrong)
    hint: tuple[str, ...] = ()  # fragments of the hint line (what to do)
    doc: str = ""  # a phrase of docs/cli.md's exit-code row for `code`


def _plan(gpu: str = "rtx4090", model: str = LLAMA8, *extra: str) -> list[str]:
    return ["plan", "--gpu", gpu, "--model", model, *extra]


def _data(make: Callable[[Path], str]) -> Callable[[Path], list[str]]:
    return lambda tmp: _plan("rtx4090", LLAMA8, "--data", make(tmp))


CASES = [
    Case(
        "unknown-gpu",
        lambda tmp: _plan("rtx4091"),
        EXIT_USAGE,
        ("unknown GPU 'rtx4091'", "closest profiles: rtx4090"),
        ("gpus --profiles",),
        "unknown GPU profile",
    ),
    Case(
        "size-zero",
        lambda tmp: _plan("0GB"),
        EXIT_USAGE,
        ("'0GB'", "more than 0"),
        ("24GB",),
        "malformed size",
    ),
    Case(
        "size-terabytes",
        lambda tmp: _plan("24TB"),
        EXIT_USAGE,
        ("'24TB'", "GB or GiB", "not TB"),
        ("24GB",),
        "malformed size",
    ),
    Case(
        "size-not-a-number",
        lambda tmp: _plan("abcGB"),
        EXIT_USAGE,
        ("'abcGB' is not a size", "'abc' is not a number"),
        ("24GB",),
        "malformed size",
    ),
    Case(
        "model-dir-without-config",
        lambda tmp: _plan("rtx4090", _no_config(tmp)),
        EXIT_USAGE,
        ("weights-only", "has no config.json"),
        ("config.json",),
        "without `config.json`",
    ),
    Case(
        "not-a-causal-lm",
        lambda tmp: _plan("rtx4090", _bert(tmp)),
        EXIT_FAILURE,
        ("not a causal language model", "BertModel"),
        ("ForCausalLM",),
        "not a causal LM",
    ),
    Case(
        "unknown-model-offline",
        lambda tmp: _plan("rtx4090", "acme/no-such-model-7b"),
        EXIT_FAILURE,
        ("'acme/no-such-model-7b'", "offline"),
        ("local directory", "config.json", "--model ./"),
        "unknown model while offline",
    ),
    Case(
        "dataset-missing",
        lambda tmp: _plan("rtx4090", LLAMA8, "--data", str(tmp / "nope.jsonl")),
        EXIT_USAGE,
        ("nope.jsonl", "does not exist"),
        (".jsonl",),
        "missing file named on the command line",
    ),
    Case(
        "dataset-empty",
        _data(_empty),
        EXIT_FAILURE,
        ("empty.jsonl", "no rows"),
        ("training examples",),
        "an empty",
    ),
    Case(
        "dataset-binary",
        _data(_binary),
        EXIT_FAILURE,
        ("blob.jsonl", "binary"),
        ("UTF-8",),
        "binary",
    ),
    Case(
        "dataset-mixed-formats",
        _data(_mixed),
        EXIT_FAILURE,
        ("mixed dataset formats", "chat_template", "alpaca"),
        ("one file per format",),
        "mixed-format",
    ),
    Case(
        "dataset-unknown-keys",
        _data(_unknown_keys),
        EXIT_FAILURE,
        ("odd.jsonl:1", "unknown dataset format", "'foo'", "'bar'"),
        ("alpaca", "chat_template", "completion", "input_output"),
        "unknown format",
    ),
    Case(
        "dataset-malformed-json",
        _data(_malformed_line),
        EXIT_FAILURE,
        ("broken.jsonl:4", "malformed JSON"),
        ("one complete JSON object",),
        "malformed",
    ),
    Case(
        "70b-on-8gb",
        lambda tmp: _plan("8GB", "meta-llama/Llama-3.1-70B"),
        EXIT_FAILURE,
        ("nothing fits in 7.0 GiB per GPU", "qlora", "needs"),
        ("smallest changes that fit", "a GPU with >="),
        "nothing fits the GPU",
    ),
    Case(
        "seq-len-zero",
        lambda tmp: _plan("rtx4090", LLAMA8, "--seq-len", "0"),
        EXIT_USAGE,
        ("--seq-len", "0"),
        ("axo-helper plan --help",),
        "`--seq-len 0`",
    ),
]


def _check(stderr: str, stdout: str, case: Case, tmp: Path) -> None:
    assert "Traceback" not in stderr and "Traceback" not in stdout
    lines = stderr.strip("\n").splitlines()
    # The size warning of `--gpu 8GB` comes first; the error itself is two lines.
    lines = [line for line in lines if not line.startswith("warning: ")]
    assert len(lines) == 2, stderr
    error, hint = lines
    assert error.startswith("error: "), stderr
    # Short: one line, whatever the length of the user's own paths.
    assert len(error.replace(str(tmp), "<tmp>")) <= 200, f"not a short message: {error}"
    for fragment in case.says:
        assert fragment in error, f"{fragment!r} not in {error!r}"
    assert hint.startswith("  hint: ") and len(hint) > len("  hint: ") + 5, stderr
    for fragment in case.hint:
        assert fragment in hint, f"{fragment!r} not in {hint!r}"
    assert stdout == ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_two_lines_and_the_documented_exit_code(
    case: Case, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    r = cli(*case.args(tmp_path))
    assert r.exit_code == case.code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    _check(r.stderr, r.stdout, case, tmp_path)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_json_mode_fails_the_same_way(
    case: Case, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    """Scripts that pass --json get nothing on stdout and the same error on stderr."""
    r = cli(*case.args(tmp_path), "--json")
    assert r.exit_code == case.code, r.output
    _check(r.stderr, r.stdout, case, tmp_path)


def _exit_code_rows() -> dict[int, str]:
    rows: dict[int, str] = {}
    text = DOCS.read_text(encoding="utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for m in re.finditer(r"^\| (\d) \| (.+) \|$", text, re.MULTILINE):
        rows[int(m.group(1))] = m.group(2)
    return rows


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_docs_cli_md_documents_the_exit_code(case: Case) -> None:
    rows = _exit_code_rows()
    assert {0, 1, 2} <= set(rows), rows
    assert case.doc in rows[case.code], f"docs/cli.md exit {case.code} does not list {case.doc!r}"


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["no-such-command"],
        ["plan", "--gpu", "rtx4090"],  # --model missing
        ["plan", "--gpu", "rtx4090", "--model", LLAMA8, "--method", "best"],
        ["plan", "--gpu", "rtx4090", "--model", LLAMA8, "--micro-batch", "-1"],
    ],
)
def test_option_parsing_errors_use_the_same_format(
    args: list[str], cli: Callable[..., Result]
) -> None:
    r = cli(*args)
    assert r.exit_code == EXIT_USAGE, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: "), r.stderr
    assert lines[1].startswith("  hint: see 'axo-helper") and "--help" in lines[1]
    assert "Usage:" not in r.stderr and "Traceback" not in r.output


def _axo_helper() -> list[str]:
    script = Path(sys.executable).with_name("axo-helper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "axo_helper"]


@pytest.mark.parametrize("case_id", ["unknown-gpu", "dataset-binary"])
def test_a_new_process_shows_no_traceback(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "AXO_HELPER_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [*_axo_helper(), *case.args(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == case.code, proc.stderr
    _check(proc.stderr, proc.stdout, case, tmp_path)
    assert "\x1b[" not in proc.stderr  # plain text: not a terminal, and NO_COLOR


def test_an_unexpected_exception_is_one_line_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    from axo_helper import core

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(core, "make_plan", boom)
    monkeypatch.delenv("AXO_HELPER_DEBUG", raising=False)
    result = cli("plan", "--gpu", "rtx4090", "--model", "x")
    assert result.exit_code == 1
    assert "internal error: ZeroDivisionError: simulated bug" in result.output
    assert "AXO_HELPER_DEBUG=1" in result.output
    assert "Traceback" not in result.output
    monkeypatch.setenv("AXO_HELPER_DEBUG", "1")
    result = cli("plan", "--gpu", "rtx4090", "--model", "x")
    assert isinstance(result.exception, ZeroDivisionError)
