"""export on a laptop install (no train extra): merged/ is refused with the usual
`error:` / `hint:` pair and exit 1, before anything is written; adapter/ still works.

The missing packages are simulated with None in sys.modules, which makes both
`import X` and importlib.util.find_spec("X") fail the way an absent package does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result

TRAIN_PACKAGES = ("torch", "safetensors", "transformers", "peft", "axolotl")
Cli = Callable[..., Result]


def _laptop(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def _run_dir(root: Path, *, full: bool = False) -> Path:
    """A run directory whose files are never opened as weights: the refusal comes first."""
    base = root / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    run = root / "run"
    out = run / "output"
    out.mkdir(parents=True)
    cfg = {"base_model": str(base), "output_dir": str(out)}
    if full:
        (out / "model.safetensors").write_bytes(b"not read")
    else:
        cfg["adapter"] = "lora"
        (out / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
        (out / "adapter_model.safetensors").write_bytes(b"copied, never parsed")
    (out / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    (run / "axolotl.yml").write_text(yaml.safe_dump(cfg))
    return run


def _assert_two_line_error(res: Result, *expected: str) -> list[str]:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and "internal error" not in res.output
    lines = res.stderr.strip("\n").splitlines()
    assert len(lines) == 2, res.stderr
    assert lines[0].startswith("error: exporting merged/ needs ")
    assert all(name in lines[0] for name in expected), lines[0]
    assert lines[1].startswith("  hint: ") and 'pip install "axo-helper[train]"' in lines[1]
    return lines


@pytest.mark.parametrize("missing", ["safetensors", "torch", "axolotl"])
def test_merged_without_the_train_extra_is_a_message(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    run = _run_dir(tmp_path)
    _laptop(monkeypatch, missing)
    lines = _assert_two_line_error(cli("export", str(run)), missing)
    assert "--variant adapter" in lines[1]  # what still works without the extra
    assert not any((run / n).exists() for n in ("adapter", "merged", "Modelfile"))


def test_full_finetune_without_the_train_extra_is_a_message(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run_dir(tmp_path, full=True)
    _laptop(monkeypatch, *TRAIN_PACKAGES)
    lines = _assert_two_line_error(cli("export", str(run)), "torch", "safetensors")
    assert "axolotl" not in lines[0] and "--variant adapter" not in lines[1]
    assert not (run / "merged").exists() and not list(run.glob(".merged.*"))


def test_adapter_exports_without_the_train_extra(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run_dir(tmp_path)
    _laptop(monkeypatch, *TRAIN_PACKAGES)
    res = cli("export", str(run), "--variant", "adapter", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["verified"] and list(out["variants"]) == ["adapter"]
    assert (run / "adapter" / "adapter_model.safetensors").read_bytes() == b"copied, never parsed"
