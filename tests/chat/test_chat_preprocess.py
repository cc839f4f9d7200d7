"""Every model family's rendered chat config through real `axolotl preprocess` on CPU.

For each family in presets/models/ a tiny local model (tests/tinymodel_families.py)
is built twice: as a base checkpoint without a chat template (chat.decide picks the
family's named template, a base eos, drop_system_message) and as a chat checkpoint
whose tokenizer ships that template (tokenizer_default). Each gets two datasets, both
mixing rows with and without a system turn and with one or two assistant turns:
OpenAI keys (messages: role/content) and ShareGPT keys (conversations: from/value).
`render --gpu cpu` writes each config; Axolotl prepares it; the prepared rows must
all be there (they are far shorter than sequence_len) and every assistant turn's
terminator (eot_tokens, else the eos the config gives) must be a trained label.

Axolotl's import is most of a preprocess on CPU (~7 s of ~20 s on 2 cores), so one
subprocess runs Axolotl's own `axolotl.cli.preprocess.do_cli` (what `python -m
axolotl.cli.preprocess CONFIG` runs) over all 48 configs (~1.5 s each), and one test
checks that the real command line prepares the same rows as that batch.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from tinymodel_families import FAMILIES, build, with_template

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("axolotl", reason="needs the [train] extra")

SYSTEM = "You answer in one short sentence."
ROWS = 12
STYLES = ("openai", "sharegpt")
SHAREGPT_ROLE = {"system": "system", "user": "human", "assistant": "gpt"}
QUESTION = re.compile(r"Question (\d+):")
ENV = {"HF_HUB_OFFLINE": "1", "AXOLOTL_DO_NOT_TRACK": "1", "NO_COLOR": "1"}

# Runs each config through Axolotl's preprocess entry point; one failure does not
# stop the others: each config's outcome is written to the JSON file argv[1].
DRIVER = """
import json, sys, traceback
from axolotl.cli.preprocess import do_cli
outcome = {}
for config in sys.argv[2:]:
    try:
        do_cli(config=config)
        outcome[config] = "ok"
    except BaseException as exc:  # SystemExit included: Axolotl exits on bad configs
        outcome[config] = "".join(traceback.format_exception_only(exc))[-2000:]
json.dump(outcome, open(sys.argv[1], "w"))
"""


def conversation(i: int) -> list[tuple[str, str]]:
    """Row i: a system turn on even rows, a second exchange on every third row."""
    turns = [("system", SYSTEM)] if i % 2 == 0 else []
    turns += [("user", f"Question {i}: what is {i} plus one?"), ("assistant", f"It is {i + 1}.")]
    if i % 3 == 0:
        turns += [("user", "And plus two?"), ("assistant", f"That is {i + 2}.")]
    return turns


def assistant_turns(i: int) -> int:
    return sum(role == "assistant" for role, _ in conversation(i))


def write_data(root: Path) -> dict[str, Path]:
    paths = {}
    for style in STYLES:
        lines = []
        for i in range(ROWS):
            turns = conversation(i)
            if style == "openai":
                row = {"messages": [{"role": r, "content": c} for r, c in turns]}
            else:
                row = {"conversations": [{"from": SHAREGPT_ROLE[r], "value": c} for r, c in turns]}
            lines.append(json.dumps(row))
        paths[style] = root / f"{style}.jsonl"
        paths[style].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


@dataclass(frozen=True)
class Case:
    model: Path
    config: Path

    @property
    def cfg(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.config.read_text(encoding="utf-8")))


def render(model: Path, data: Path, out: Path) -> Path:
    from axo_helper.cli import cli

    config = out / "axolotl.yml"
    args = ["render", "--gpu", "cpu", "--model", str(model), "--data", str(data)]
    result = CliRunner().invoke(cli, [*args, "--no-calibration", "-o", str(config)])
    assert result.exit_code == 0, result.output
    return config


def named_template(config: Path) -> str:
    """The named template chat.decide chose for a base model (what its chat twin ships)."""
    return str(yaml.safe_load(config.read_text(encoding="utf-8"))["chat_template"])


def _case_ids() -> list[str]:
    return [f"{f}{v}-{s}" for f in FAMILIES for v in ("", "-chat") for s in STYLES]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Every case rendered, then all preprocessed in one Axolotl process: id -> Case."""
    from axolotl.utils.chat_templates import get_chat_template

    root = tmp_path_factory.mktemp("chat-preprocess")
    data = write_data(root)
    cases: dict[str, Case] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AXO_HELPER_HOME", str(root / "home"))
        for name in ENV:
            mp.setenv(name, ENV[name])
        for name, family in FAMILIES.items():
            base = build(family, root / "models")
            for style in STYLES:
                out = root / f"{name}-{style}"
                cases[f"{name}-{style}"] = Case(base, render(base, data[style], out))
            chat_family = with_template(
                family, get_chat_template(named_template(out / "axolotl.yml"))
            )
            chat = build(chat_family, root / "models")
            for style in STYLES:
                out = root / f"{name}-chat-{style}"
                cases[f"{name}-chat-{style}"] = Case(chat, render(chat, data[style], out))
    outcome_file = root / "outcome.json"
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(outcome_file), *(str(c.config) for c in cases.values())],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=900,
    )  # fmt: skip
    assert outcome_file.is_file(), proc.stderr[-3000:]
    outcome = json.loads(outcome_file.read_text())
    for case in cases.values():
        assert outcome[str(case.config)] == "ok", outcome[str(case.config)]
    return cases


def load_prepared(case: Case) -> Any:
    from datasets import load_from_disk

    (folder,) = [p for p in Path(case.cfg["dataset_prepared_path"]).iterdir() if p.is_dir()]
    return load_from_disk(str(folder))


def terminator_id(case: Case) -> tuple[str, int, Any]:
    """(terminator, its id, the tokenizer as Axolotl set it up): eot_tokens, else the eos."""
    from transformers import AutoTokenizer

    cfg = case.cfg
    tok = AutoTokenizer.from_pretrained(case.model)
    eos = (cfg.get("special_tokens") or {}).get("eos_token")
    # Axolotl adds `tokens:` and a new eos before tokenizing; so does this.
    if cfg.get("tokens"):
        tok.add_tokens(list(cfg["tokens"]), special_tokens=True)
    if eos:
        tok.add_special_tokens({"eos_token": eos})
    term = (cfg.get("eot_tokens") or [eos or tok.eos_token])[0]
    ids = tok(term, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, f"{term} is not one token of this vocabulary"
    return term, ids[0], tok


@pytest.mark.parametrize("case_id", _case_ids())
def test_every_row_kept_and_every_answer_ends_in_a_trained_terminator(
    prepared: dict[str, Case], case_id: str
) -> None:
    case = prepared[case_id]
    rows = load_prepared(case)
    assert len(rows) == ROWS, f"{ROWS - len(rows)} of {ROWS} rows dropped"
    term, term_id, tok = terminator_id(case)
    seen = set()
    for row in rows:
        ids, labels = row["input_ids"], row["labels"]
        text = tok.decode(ids)
        (i,) = {int(n) for n in QUESTION.findall(text)}
        seen.add(i)
        trained = [p for p, t in enumerate(ids) if t == term_id and labels[p] == term_id]
        assert len(trained) == assistant_turns(i), (
            f"row {i}: {len(trained)} trained {term} for {assistant_turns(i)} answers\n{text}"
        )
        # the answers themselves train; the prompts do not
        assert tok.decode([t for t in labels if t != -100]).count(f"{i + 1}.") == 1
        assert "Question" not in tok.decode([t for t in labels if t != -100])
        # the system turn reaches the model unless the config drops it
        dropped = any(d.get("drop_system_message") for d in case.cfg["datasets"])
        assert (SYSTEM in text) == (i % 2 == 0 and not dropped), text
    assert seen == set(range(ROWS))


def test_the_axolotl_command_line_prepares_the_same_rows(
    prepared: dict[str, Case], tmp_path: Path
) -> None:
    """The batch above runs do_cli in one process; `python -m axolotl.cli.preprocess`
    on its own gives the same tokens and labels (no state carried between configs)."""
    case = prepared["phi4-chat-sharegpt"]  # the last config, after 47 others in that process
    cfg = case.cfg | {"dataset_prepared_path": str(tmp_path / "prepared")}
    config = tmp_path / "axolotl.yml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "axolotl.cli.preprocess", str(config)],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    alone = load_prepared(Case(case.model, config))
    batched = load_prepared(case)

    def key(rows: Any) -> list[tuple[list[int], list[int]]]:
        return sorted(zip(rows["input_ids"], rows["labels"], strict=True))

    assert key(alone) == key(batched)
