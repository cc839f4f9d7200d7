"""A copied run directory exports its own weights; a tampered or unfinished export is
refused; `export --verify` holds the files to the manifest and the manifest to output/."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from fake_runs import make_run

from axo_helper.rundir import RunDir

pytestmark = pytest.mark.axolotl
pytest.importorskip("torch")
pytest.importorskip("peft")

Cli = Callable[..., Result]
WEIGHTS = "adapter_model.safetensors"


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_copied_run_exports_its_own_weights(tiny_model: Path, tmp_path: Path, cli: Cli) -> None:
    a = make_run(tmp_path, tiny_model)
    b = tmp_path / "copy"
    shutil.copytree(a, b, symlinks=True)
    # B then trained on: its output/ holds other weights than A's.
    other = make_run(tmp_path / "other", tiny_model, seed=1)
    shutil.copy2(other / "output" / WEIGHTS, b / "output" / WEIGHTS)
    assert (a / "axolotl.yml").read_text() == (b / "axolotl.yml").read_text()

    res = cli("export", str(b), "--variant", "adapter")
    assert res.exit_code == 0, res.output
    exported = (b / "adapter" / WEIGHTS).read_bytes()
    assert exported == (b / "output" / WEIGHTS).read_bytes()
    assert exported != (a / "output" / WEIGHTS).read_bytes()
    assert "names another run directory" in res.stderr
    assert not (a / "adapter").exists() and not (a / "manifest.json").exists()
    sources = json.loads((b / "manifest.json").read_text())["sources"]
    assert f"output/{WEIGHTS}" in {s["path"] for s in sources}


def test_a_tampered_export_is_refused_not_blessed(
    tiny_model: Path, tmp_path: Path, cli: Cli
) -> None:
    run = make_run(tmp_path, tiny_model)
    assert cli("export", str(run), "--variant", "adapter").exit_code == 0
    assert cli("export", str(run), "--verify").exit_code == 0
    _flip_last_byte(run / "adapter" / WEIGHTS)

    again = cli("export", str(run), "--variant", "adapter")
    assert again.exit_code == 1, again.output
    assert "does not verify" in again.stderr and "already has a complete export" not in again.stderr
    assert "hint: " in again.stderr and "--force" in again.stderr

    checked = cli("export", str(run), "--verify", "--json")
    assert checked.exit_code == 1
    problems = json.loads(checked.stdout)["problems"]
    assert any(p.startswith(f"adapter/{WEIGHTS}: sha256") for p in problems), problems

    # Without the manifest, the tampered adapter is held to output/ and refused.
    (run / "manifest.json").unlink()
    res = cli("export", str(run), "--variant", "adapter")
    assert res.exit_code == 1, res.output
    assert "is not the export of this run" in res.stderr and "differs from" in res.stderr
    assert not (run / "manifest.json").exists()

    forced = cli("export", str(run), "--variant", "adapter", "--force")
    assert forced.exit_code == 0, forced.output
    assert (run / "adapter" / WEIGHTS).read_bytes() == (run / "output" / WEIGHTS).read_bytes()
    assert cli("export", str(run), "--verify").exit_code == 0


def test_verify_holds_the_manifest_to_output(tiny_model: Path, tmp_path: Path, cli: Cli) -> None:
    run = make_run(tmp_path, tiny_model)
    assert cli("export", str(run), "--variant", "adapter").exit_code == 0
    (run / "adapter" / "extra.txt").write_text("not exported")
    _flip_last_byte(run / "output" / WEIGHTS)  # retrained (or damaged) after the export
    res = cli("export", str(run), "--verify")
    assert res.exit_code == 1
    assert f"output/{WEIGHTS}: changed since the export" in res.stderr
    assert "adapter/extra.txt: not in the manifest" in res.stderr
    never = cli("export", str(tmp_path / "other"), "--verify")
    assert never.exit_code == 2 and "does not exist" in never.stderr


def test_an_interrupted_run_is_not_exported_silently(
    tiny_model: Path, tmp_path: Path, cli: Cli
) -> None:
    run = make_run(tmp_path, tiny_model)
    rd = RunDir(run)
    record = rd.read_plan_record()
    assert record is not None
    rd.write_plan_record({**record, "status": "interrupted"})
    rd.metrics_summary.unlink()  # the plugin's summary is written at the end
    steps = [{"event": "step", "step": s, "max_steps": 150} for s in (46, 47)]
    rd.metrics_stream.write_text("".join(json.dumps(s) + "\n" for s in steps))

    res = cli("export", str(run), "--variant", "adapter")
    assert res.exit_code == 1, res.output
    assert "did not finish training" in res.stderr and "step 47 of 150" in res.stderr
    assert "run --resume" in res.stderr and "--unfinished" in res.stderr
    assert not (run / "adapter").exists()

    ok = cli("export", str(run), "--variant", "adapter", "--unfinished")
    assert ok.exit_code == 0, ok.output
    card = (run / "adapter" / "README.md").read_text()
    assert "47 of 150" in card and "did not finish" in card
    assert "trained without the plugin" not in card
