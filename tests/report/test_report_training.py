"""The run's own figures: metrics.jsonl and metrics.json as the plugin writes them, the
evaluation loss from the stream or the newest checkpoint, and what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_runs import record_metrics, write_checkpoint_evals

from axo_helper.report.training import read_training
from axo_helper.rundir import RunDir


def test_losses_rates_and_speed_come_from_the_plugin_stream(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    losses = [3.0, 2.5, 2.1, 1.8]
    record_metrics(run, losses, tokens=400)
    fig = read_training(run).to_json()
    assert fig["series"]["train_loss"] == [[i + 1, v] for i, v in enumerate(losses)]
    assert [lr for _, lr in fig["series"]["learning_rate"]] == pytest.approx(
        [1e-4 * s for s in range(1, 5)]
    )
    summary = json.loads(run.metrics_summary.read_text())
    assert fig["tokens_per_s"] == summary["tokens_per_s"]  # the recorder's own mean
    assert fig["step_time_s"] == summary["step_time_s"]
    assert fig["final_train_loss"] == losses[-1]
    assert fig["steps"] == 4 and fig["attempts"] == 1
    assert fig["missing"] == [msg for msg in fig["missing"] if "evaluation loss" in msg]


def test_a_retried_step_keeps_the_record_of_the_attempt_that_ran(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    record_metrics(run, [3.0, 2.9, 2.8], finish=False)  # died after step 3
    record_metrics(run, [3.1, 2.7])  # the retry: steps 1-2 again, then finished
    fig = read_training(run)
    assert fig.attempts == 2
    assert fig.series("loss") == [[1, 3.1], [2, 2.7], [3, 2.8]]


def test_eval_loss_comes_from_the_newest_checkpoint_when_the_stream_has_none(
    tmp_path: Path,
) -> None:
    run = RunDir(tmp_path)
    record_metrics(run, [3.0, 2.0, 1.5, 1.2])
    write_checkpoint_evals(run, 2, {2: 2.4})
    write_checkpoint_evals(run, 4, {2: 2.4, 4: 1.9})  # newer: the whole history so far
    fig = read_training(run)
    assert fig.eval_loss == [[2, 2.4], [4, 1.9]]
    assert fig.eval_source == "output/checkpoint-4/trainer_state.json"
    assert not any("evaluation loss" in m for m in fig.missing)


def test_eval_lines_in_the_stream_win_over_checkpoints(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    record_metrics(run, [3.0, 2.0])
    with run.metrics_stream.open("a") as fh:
        fh.write(json.dumps({"event": "eval", "step": 2, "eval_loss": 1.75}) + "\n")
    write_checkpoint_evals(run, 2, {2: 9.0})
    fig = read_training(run)
    assert fig.eval_loss == [[2, 1.75]] and fig.eval_source == "metrics.jsonl"


def test_a_run_without_the_plugin_says_what_is_missing(tmp_path: Path) -> None:
    fig = read_training(RunDir(tmp_path)).to_json()
    assert fig["steps"] == 0 and fig["series"]["train_loss"] == []
    assert any("no metrics.jsonl" in m and "plugin" in m for m in fig["missing"])


def test_an_unfinished_run_says_its_summary_is_missing(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    record_metrics(run, [3.0, 2.0, 1.0], finish=False)
    fig = read_training(run).to_json()
    assert fig["series"]["train_loss"][-1] == [3, 1.0]
    assert any("no metrics.json" in m and "did not finish" in m for m in fig["missing"])
    assert fig["step_time_s"]["min"] == pytest.approx(0.5)  # from the steps themselves
