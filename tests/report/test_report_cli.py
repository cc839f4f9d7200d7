"""`axo-helper report` through the real command group: errors, a run without metrics,
the documented --json keys, and no torch on the --no-eval path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from report_runs import (
    documented_keys,
    keys_under,
    planned,
    record_metrics,
    report_json,
    write_checkpoint_evals,
    write_config,
)

from axo_helper.rundir import RunDir


def test_a_path_that_does_not_exist_is_a_usage_error(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    res = cli("report", str(tmp_path / "nope"))
    assert res.exit_code == 2
    assert "error: run directory" in res.stderr and "does not exist" in res.stderr
    assert "hint: pass the directory `axo-helper run` created" in res.stderr
    assert "Traceback" not in res.output


def test_a_directory_that_is_not_a_run_says_so(cli: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    res = cli("report", str(tmp_path))
    assert res.exit_code == 1
    assert "has no axolotl.yml, so it is not a run directory" in res.stderr
    assert not RunDir(tmp_path).report_html.exists()


def test_a_run_without_metrics_gets_a_report_that_says_what_is_missing(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    run = RunDir(tmp_path / "run")
    write_config(run, base_model="HuggingFaceTB/SmolLM2-135M", val_set_size=0.0, adapter="lora")
    res = cli("report", str(run.path), "--json")
    assert res.exit_code == 0, res.output
    report = report_json(res.stdout)
    assert any("no metrics.jsonl" in m and "plugin" in m for m in report["missing"])
    assert "evaluation: no fine-tuned model to evaluate" in "\n".join(report["missing"])
    page = run.report_html.read_text(encoding="utf-8")
    assert 'id="loss-plot-missing"' in page and 'id="loss-plot"' not in page
    assert "no metrics.jsonl: the run did not use axo-helper" in page
    assert 'id="answers-missing"' in page
    # The page is self-contained: nothing is fetched when it opens.
    assert "http://" not in page and "https://" not in page and "<script" not in page

    text = cli("report", str(run.path), "--no-eval")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0] == f"report: {run.report_html}"
    assert "warning: training: no metrics.jsonl" in text.stderr


def metrics_run(root: Path) -> RunDir:
    """A planned run with the plugin's metrics and a checkpoint's eval losses."""
    run = RunDir(root / "run")
    planned(run, rows=20, gpu_spec="a10g", model="HuggingFaceTB/SmolLM2-135M", method="lora")
    write_config(
        run, base_model="HuggingFaceTB/SmolLM2-135M", adapter="lora", lora_r=16, val_set_size=0.05
    )
    record_metrics(run, [3.0, 2.6, 2.2, 2.0, 1.9, 1.85])
    write_checkpoint_evals(run, 6, {3: 2.4, 6: 2.1})
    return run


def test_json_keys_are_the_documented_ones(cli: Callable[..., Result], tmp_path: Path) -> None:
    run = metrics_run(tmp_path)
    res = cli("report", str(run.path), "--json", "--no-eval")
    assert res.exit_code == 0, res.output
    report = report_json(res.stdout)
    docs = documented_keys()
    assert set(report) == keys_under(docs, "")
    for section in ("training", "memory", "plan"):
        assert set(report[section]) == keys_under(docs, section), section
    assert set(report["options"]) == docs["options"]
    assert set(report["training"]["series"]) == docs["training.series"]
    assert set(report["training"]["step_time_s"]) == docs["training.step_time_s"]
    assert set(report["memory"]["components_gib"]) == docs["memory.components_gib"]
    assert set(report["evaluation"]) == {"status", "reason"}  # documented for `missing`
    # The figures are the run's: its losses, its checkpoint's evaluations, its plan.
    assert report["training"]["series"]["eval_loss"] == [[3, 2.4], [6, 2.1]]
    assert report["training"]["final_train_loss"] == 1.85
    assert report["plan"]["method"] == "lora" and report["plan"]["settings"]["lora_r"] == 16
    assert report["plan"]["reproduce"] == f"axo-helper run --config {run.config}"


def test_the_page_holds_every_drawn_figure_inline(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    run = metrics_run(tmp_path)
    assert cli("report", str(run.path), "--no-eval").exit_code == 0
    page = run.report_html.read_text(encoding="utf-8")
    for figure in ("loss-plot", "speed-plot", "memory-plot"):
        assert f'<figure id="{figure}"><img src="data:image/png;base64,' in page, figure
    assert 'id="eval-plot-missing"' in page and "not asked for (--no-eval)" in page


_PROBE = """
import json, sys
from axo_helper.cli import main
code = None
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = ("torch", "transformers", "peft", "axolotl", "datasets")
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}),
      file=sys.stderr)
"""


def test_report_without_evaluation_imports_no_torch(tmp_path: Path) -> None:
    run = metrics_run(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "AXO_HELPER_HOME": str(tmp_path), "NO_COLOR": "1"}
    for args in (["report", "--help"], ["report", str(run.path), "--no-eval", "--json"]):
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        probe = json.loads(proc.stderr.strip().splitlines()[-1])
        assert probe["code"] in (0, None), proc.stderr
        assert probe["loaded"] == [], f"{args}: imported {probe['loaded']}"


def test_run_warns_instead_of_failing_when_its_report_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from axo_helper.cli.run import write_run_report

    write_run_report(tmp_path / "gone", quiet=True)
    err = capsys.readouterr().err
    assert "warning: report.html not written" in err
    assert f"axo-helper report {tmp_path / 'gone'}" in err


def test_without_matplotlib_the_page_says_how_to_get_the_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from axo_helper.report import ReportOptions, write_report

    run = metrics_run(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    report = write_report(run.path, ReportOptions(evaluate=False))
    gaps = [m for m in report["missing"] if "matplotlib is not installed" in m]
    assert gaps and all('pip install "axo-helper[report]"' in m for m in gaps)
    page = run.report_html.read_text(encoding="utf-8")
    assert 'id="loss-plot-missing"' in page and "<img" not in page
    assert "matplotlib is not installed" in page


def test_an_eval_data_file_that_does_not_exist_is_a_usage_error(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    run = metrics_run(tmp_path)
    res = cli("report", str(run.path), "--eval-data", str(tmp_path / "held.jsonl"))
    assert res.exit_code == 2
    assert "--eval-data" in res.stderr and "does not exist" in res.stderr
    assert not run.report_html.exists()
