"""Shared fixtures. Every test runs with a private AXO_HELPER_HOME and the hub offline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("axo-home")
    monkeypatch.setenv("AXO_HELPER_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AXOLOTL_DO_NOT_TRACK", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    yield home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama + trained byte-level BPE tokenizer + chat template, built once.

    Needs the [train] extra (transformers, tokenizers, torch); tests that use it are
    skipped when it is missing. See axo_helper/tinymodel.py and docs/cpu.md.
    """
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from axo_helper.tinymodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run the real `axo-helper` command group in-process: `cli("plan", "--gpu", "t4", ...)`.

    Returns click's Result (exit_code, stdout, stderr). `input=` is passed through.
    """
    from axo_helper.cli import cli as group

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(group, list(args), prog_name="axo-helper", input=input)

    return invoke
