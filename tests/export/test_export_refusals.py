"""export refuses, before writing anything: an adapter trained on another base, a
directory that is not a run, a run without training output or adapter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from axo_helper.errors import EXIT_USAGE

Cli = Callable[..., Result]


def _other_base(tmp_path: Path) -> Path:
    from axo_helper.tinymodel import build_tiny_model

    return build_tiny_model(tmp_path / "other", hidden_size=96, heads=4, kv_heads=2)


@pytest.mark.axolotl
@pytest.mark.parametrize("check", ["config", "shapes"])
def test_mismatched_adapter_is_refused(
    tiny_model: Path, tmp_path: Path, cli: Cli, check: str
) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("axolotl")
    from fake_runs import make_run

    from axo_helper.export.check import AdapterMismatchError
    from axo_helper.export.exporter import export_run

    run = make_run(tmp_path, tiny_model)
    if check == "shapes":  # without Axolotl's config.json only the tensor shapes can tell
        (run / "output" / "config.json").unlink()
    cfg = yaml.safe_load((run / "axolotl.yml").read_text())
    cfg["base_model"] = str(_other_base(tmp_path))
    (run / "axolotl.yml").write_text(yaml.safe_dump(cfg))

    with pytest.raises(
        AdapterMismatchError, match=r"hidden_size: trained 64, base 96|does not fit the base"
    ):
        export_run(run)
    assert not any((run / n).exists() for n in ("adapter", "merged", "manifest.json"))
    res = cli("export", str(run))
    assert res.exit_code == 1
    assert "does not fit" in res.output or "different model" in res.output


def test_missing_output_and_bad_run_dir(tmp_path: Path, cli: Cli) -> None:
    res = cli("export", str(tmp_path / "nope"))
    assert res.exit_code == EXIT_USAGE and "does not exist" in res.output
    (tmp_path / "run").mkdir()
    res = cli("export", str(tmp_path / "run"))
    assert res.exit_code == 1 and "no axolotl.yml" in res.output
    (tmp_path / "run" / "axolotl.yml").write_text("base_model: x\nadapter: lora\n")
    (tmp_path / "run" / "output").mkdir()
    res = cli("export", str(tmp_path / "run"))
    assert res.exit_code == 1 and "has no adapter" in res.output
