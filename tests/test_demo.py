"""`axo-helper demo`: without training (refusing an earlier demo, the CPU thread cap,
the plan), then the real demo once (slow): its report, and its page in a browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result


def test_demo_refuses_an_earlier_demo_without_force(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    (tmp_path / "d" / "run").mkdir(parents=True)
    (tmp_path / "d" / "run" / "plan.json").write_text("{}")
    res = cli("demo", "-o", str(tmp_path / "d"))
    assert res.exit_code == 2 and "--force" in res.stderr
    assert not (tmp_path / "d" / "tiny-model").exists()


@pytest.mark.parametrize(
    ("load", "cores", "expected"),
    [(0.4, 2, None), (1.1, 2, 1), (1.9, 2, 1), (3.0, 2, 1), (3.5, 16, 12)],
)
def test_demo_uses_the_free_cores_on_a_busy_cpu(
    monkeypatch: pytest.MonkeyPatch, load: float, cores: int, expected: int | None
) -> None:
    import os

    from axo_helper import demo

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert demo.busy_cpu_threads() == expected

    with demo._child_threads(expected):  # what the Axolotl processes inherit
        assert os.environ.get("OMP_NUM_THREADS") == (None if expected is None else str(expected))
    assert "OMP_NUM_THREADS" not in os.environ

    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's setting wins
    assert demo.busy_cpu_threads() is None
    with demo._child_threads(1):
        assert os.environ["OMP_NUM_THREADS"] == "4"


def test_demo_detects_the_hardware_once_and_plans_with_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Training stubbed as a dry run: what is left is detect -> plan -> run directory.
    from dataclasses import replace

    from axo_helper import demo, hardware
    from axo_helper.errors import TrainingError
    from axo_helper.run.request import RunRequest, RunResult
    from axo_helper.run.start import start_run
    from axo_helper.tinymodel import demo_data_path

    rtx4090 = hardware.resolve("rtx4090")
    calls: list[str] = []

    def detect(spec: str, **kwargs: object) -> object:
        calls.append(spec)
        return rtx4090

    def dry(req: RunRequest, display: object = None) -> RunResult:
        assert req.hardware is rtx4090 and req.plan is not None and req.plan.allow_cpu
        return start_run(replace(req, dry_run=True))

    monkeypatch.setattr(hardware, "resolve", detect)
    monkeypatch.setattr(
        demo,
        "_build_inputs",
        lambda *a: (Path("Qwen/Qwen2.5-0.5B"), demo_data_path("qa.jsonl"), None),
    )
    monkeypatch.setattr(demo, "start_run", dry)
    with pytest.raises(TrainingError) as caught:
        demo.run_demo(tmp_path / "d", quiet=True)
    assert calls == ["auto"]  # once, by the demo; the plan reused it
    assert "the demo's training dry-run" in caught.value.message
    assert caught.value.exit_code == 1
    record = demo.demo_run_dir(tmp_path / "d").read_plan_record()
    assert record is not None and record["hardware"] == rtx4090.describe()


def test_demo_training_failure_passes_the_exit_code_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from axo_helper import demo
    from axo_helper.errors import TrainingError
    from axo_helper.run.request import RunResult

    failed = RunResult(tmp_path, tmp_path / "axolotl.yml", "failed", 7, [], message="boom")
    monkeypatch.setattr(demo, "_build_inputs", lambda *a: (tmp_path, tmp_path / "qa.jsonl", None))
    monkeypatch.setattr(demo, "start_run", lambda req, display=None: failed)
    with pytest.raises(TrainingError) as caught:
        demo.run_demo(tmp_path / "d", quiet=True)
    assert caught.value.exit_code == 7
    assert caught.value.message == "the demo's training failed: boom"


# --------------------------------------------------------------------------- the real demo
# Slow: the whole demo (pretraining, Axolotl preprocess and LoRA training on CPU, the
# export, the report), once for the tests below; 1-2 minutes on 2 idle CPU cores.


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("axolotl", reason="needs the [train] extra")
    pytest.importorskip("matplotlib", reason="needs the [report] extra")
    from axo_helper.demo import run_demo

    with pytest.MonkeyPatch.context() as mp:  # the autouse isolation is per test
        mp.setenv("AXO_HELPER_HOME", str(tmp_path_factory.mktemp("axo-home")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("AXOLOTL_DO_NOT_TRACK", "1")
        return run_demo(tmp_path_factory.mktemp("demo") / "d", quiet=True)


@pytest.mark.slow
@pytest.mark.axolotl
def test_the_demo_ends_with_a_report_where_the_fine_tune_beats_the_base(demo_run: Any) -> None:
    from axo_helper.rundir import RunDir

    report = demo_run.report
    run = RunDir(demo_run.run.run_dir)
    assert report is not None and report["report_html"] == str(run.report_html)
    assert run.report_html.is_file()
    ev = report["evaluation"]
    assert ev["status"] == "ok", ev
    assert ev["split"]["source"] == "val_set_size" and ev["split"]["rows_scored"] > 0
    assert ev["fine_tuned"]["loss"] < ev["base"]["loss"]
    assert ev["fine_tuned"]["model"] == f"{run.merged} (merged)"
    # Axolotl evaluated on the same held-out split during training: the plot has it.
    assert len(report["training"]["series"]["eval_loss"]) >= 2
    assert report["training"]["steps"] == report["training"]["series"]["train_loss"][-1][0]
    assert len(report["samples"]) == 4 and all(s["reference"] for s in report["samples"])


def _dark_share(image: Any) -> float:
    """Share of pixels darker than mid-grey: text and lines on a light page."""
    grey = image.convert("L")
    return sum(1 for v in grey.getdata() if v < 128) / (grey.width * grey.height)


@pytest.mark.slow
@pytest.mark.axolotl
def test_the_report_page_draws_the_loss_plot_and_the_answer_table(
    demo_run: Any, tmp_path: Path
) -> None:
    import base64
    import io

    from headless_chromium import find_chromium, layout, screenshot
    from PIL import Image, ImageChops, ImageStat

    from axo_helper.rundir import RunDir

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    page = RunDir(demo_run.run.run_dir).report_html
    boxes = layout(
        chromium,
        page,
        {
            "plot": "#loss-plot img",
            "table": "#answers",
            "answer": "#answers tr:nth-of-type(2) td:nth-of-type(3)",
        },
    )
    plot, table, answer = boxes["plot"], boxes["table"], boxes["answer"]
    assert plot and table and answer, boxes
    assert plot["decoded"] and table["rows"] == 1 + len(demo_run.report["samples"])
    shot = Image.open(screenshot(chromium, page, tmp_path / "report.png", boxes["height"]))

    def crop(box: dict[str, float]) -> Any:
        x, y = round(box["x"]), round(box["y"])
        return shot.crop((x, y, x + round(box["width"]), y + round(box["height"]))).convert("RGB")

    # The loss plot is on screen as drawn: the pixels are the embedded PNG's.
    uri = re.search(r'id="loss-plot"><img src="data:image/png;base64,([^"]+)"', page.read_text())
    assert uri is not None
    png = Image.open(io.BytesIO(base64.b64decode(uri.group(1)))).convert("RGB")
    seen = crop(plot)
    assert seen.size == png.size
    assert max(ImageStat.Stat(ImageChops.difference(seen, png)).mean) < 3
    assert _dark_share(seen) > 0.01  # axes, ticks and the curves, not a blank box
    # The answer table is drawn: its cells hold text, the fine-tuned answer too.
    assert _dark_share(crop(table)) > 0.01
    assert _dark_share(crop(answer)) > 0.005


@pytest.mark.slow
@pytest.mark.axolotl
def test_eval_data_is_tokenized_by_axolotl_in_the_training_format(
    demo_run: Any, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    import json

    from axo_helper.tinymodel import demo_data_path

    lines = demo_data_path("qa.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    data = tmp_path / "held.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = cli("report", str(demo_run.run.run_dir), "--eval-data", str(data), "--json", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    ev = report["evaluation"]
    assert ev["status"] == "ok" and ev["split"]["source"] == "eval_data"
    assert ev["split"]["rows"] == len(lines) and ev["split"]["prepared_dataset"] is None
    first_answers = {
        next(m["content"] for m in json.loads(line)["messages"] if m["role"] == "assistant")
        for line in lines
    }
    assert {s["reference"] for s in report["samples"]} <= first_answers
    assert len(report["samples"]) == 4
