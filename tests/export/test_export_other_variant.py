"""`export --variant adapter` on a run whose merged/ is on disk: merged/ stays exported
(listed in the manifest, used by the Modelfile) when it verifies, and the export is
refused when it does not, so the manifest never disagrees with the disk."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

pytestmark = pytest.mark.axolotl

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("axolotl")

from fake_runs import make_run  # noqa: E402

from axo_helper.errors import EXIT_FAILURE  # noqa: E402
from axo_helper.export.exporter import export_run  # noqa: E402

Cli = Callable[..., Result]


def listed(run: Path, prefix: str) -> set[str]:
    manifest = json.loads((run / "manifest.json").read_text())
    return {f["path"] for f in manifest["files"] if f["path"].startswith(prefix)}


def test_adapter_only_export_keeps_the_merged_model_listed(
    tiny_model: Path, tmp_path: Path, cli: Cli
) -> None:
    run = make_run(tmp_path, tiny_model)
    export_run(run)
    merged_files = listed(run, "merged/")
    assert merged_files and "FROM ./merged" in (run / "Modelfile").read_text()

    res = cli("export", str(run), "--variant", "adapter", "--force", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["variants"]["adapter"]["status"] == "built"
    assert out["variants"]["merged"]["status"] == "kept"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["variants"] == ["adapter", "merged"]
    assert listed(run, "merged/") == merged_files
    assert "FROM ./merged" in (run / "Modelfile").read_text()
    assert cli("export", str(run), "--verify").exit_code == 0


def test_adapter_only_export_refuses_a_merged_model_that_does_not_verify(
    tiny_model: Path, tmp_path: Path, cli: Cli
) -> None:
    run = make_run(tmp_path, tiny_model)
    export_run(run)
    (run / "merged" / "config.json").write_text("{}")
    before = (run / "manifest.json").read_text()

    res = cli("export", str(run), "--variant", "adapter", "--force")
    assert res.exit_code == EXIT_FAILURE
    assert "merged is not the export of this run" in res.output
    assert "config.json: size" in res.output
    assert (run / "manifest.json").read_text() == before  # nothing written
