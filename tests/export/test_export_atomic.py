"""export is atomic and resumable: refusing to overwrite, a merge failing after it
wrote, a SIGKILLed export completed by a re-run, verify_export catching changes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from axo_helper.errors import EXIT_USAGE, OutputExistsError

pytestmark = pytest.mark.axolotl

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("axolotl")

from fake_runs import make_run, merged_logits, reference_logits  # noqa: E402

from axo_helper.export import merge as merge_mod  # noqa: E402
from axo_helper.export.exporter import export_run  # noqa: E402
from axo_helper.export.manifest import verify_export  # noqa: E402

Cli = Callable[..., Result]


def test_refuses_to_overwrite_without_force(tiny_model: Path, tmp_path: Path, cli: Cli) -> None:
    run = make_run(tmp_path, tiny_model)
    export_run(run)
    before = (run / "manifest.json").read_text()

    with pytest.raises(OutputExistsError, match="complete export"):
        export_run(run)
    res = cli("export", str(run))
    assert res.exit_code == EXIT_USAGE and "--force" in res.output
    assert (run / "manifest.json").read_text() == before

    res = cli("export", str(run), "--force", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["verified"] and out["variants"]["merged"]["status"] == "built"
    assert verify_export(run) == []
    assert not list(run.glob(".merged.*")) and not list(run.glob(".adapter.*"))


def test_failed_merge_leaves_no_partial_variant_and_rerun_completes(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path, tiny_model)
    real_merge = merge_mod.merge_lora

    def merge_then_die(base: Path, adapter: Path, out: Path, **kw: Any) -> dict[str, Any]:
        real_merge(base, adapter, out, **kw)
        raise OSError("No space left on device")  # after writing the shards

    monkeypatch.setattr(merge_mod, "merge_lora", merge_then_die)
    with pytest.raises(OSError, match="No space"):
        export_run(run)
    assert (run / "adapter").is_dir()  # finished before the merge started
    assert not (run / "merged").exists() and not (run / "manifest.json").exists()
    assert not list(run.glob(".merged.tmp-*"))

    monkeypatch.setattr(merge_mod, "merge_lora", real_merge)
    result = export_run(run)  # no --force needed: the export was incomplete
    assert result.kept == ("adapter",) and result.built == ("merged",)
    assert verify_export(run) == []


def _stalling_export(run: Path, ready: Path) -> subprocess.Popen[bytes]:
    """A child process that exports run and stops, forever, once merged/'s shards are
    written in the temp directory (it writes that directory's path to `ready`)."""
    child = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        import axo_helper.export.shards as shards
        from axo_helper.export.exporter import export_run

        real = shards.reshard
        def stall(folder, **kw):
            real(folder, **kw)                    # merged shards written in the temp dir...
            Path({str(ready)!r}).write_text(str(folder))
            time.sleep(600)                       # ...and killed before it is published
        shards.reshard = stall
        export_run(Path({str(run)!r}))
        """
    )
    return subprocess.Popen([sys.executable, "-c", child], env={**os.environ})


def test_killed_export_reruns_to_a_verified_export(
    tiny_model: Path, tmp_path: Path, cli: Cli
) -> None:
    """SIGKILL in the middle of writing merged/, then `axo-helper export` again."""
    run = make_run(tmp_path, tiny_model)
    ready = tmp_path / "merging"
    proc = _stalling_export(run, ready)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert proc.poll() is None, "the export child exited early"
            assert time.monotonic() < deadline, "the export child never reached the merge"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    tmp_dir = Path(ready.read_text())
    assert tmp_dir.name.startswith(".merged.tmp-") and tmp_dir.is_dir()
    assert (run / "adapter").is_dir() and not (run / "merged").exists()
    assert not (run / "manifest.json").exists()

    res = cli("export", str(run), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["variants"]["adapter"]["status"] == "kept"
    assert not tmp_dir.exists()
    assert verify_export(run) == []
    ref = reference_logits(tiny_model, run / "output")
    assert (ref - merged_logits(run / "merged")).abs().max().item() < 1e-5


def test_verify_reports_changed_and_missing_files(tiny_model: Path, tmp_path: Path) -> None:
    run = make_run(tmp_path, tiny_model)
    export_run(run, variants=["adapter"])
    assert "ADAPTER ./adapter" in (run / "Modelfile").read_text()
    weights = run / "adapter" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    (run / "adapter" / "README.md").unlink()
    problems = verify_export(run)
    assert any("adapter_model.safetensors: sha256" in p for p in problems)
    assert any("README.md: missing" in p for p in problems)
