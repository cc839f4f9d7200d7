"""Progress parsing: Axolotl's log lines and tqdm bars, and the plugin's metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axo_helper.progress import MetricsReader, ProgressDisplay, ProgressState, format_seconds

# Real Axolotl 0.19 output on CPU (segments split at \r and \n, as run_launch does).
LOG = [
    "Tokenizing Prompts (num_proc=2):  50%|█████     | 160/320 [00:00<00:00, 1244.72 examples/s]",
    "  0%|          | 0/3 [00:00<?, ?it/s]",
    " 33%|███▎      | 1/3 [00:00<00:00,  6.63it/s]                                             "
    "{'loss': '6.93', 'grad_norm': '0.4603', 'learning_rate': '0.001', 'ppl': '1023', "
    "'memory/max_active (GiB)': '0', 'memory/max_allocated (GiB)': '0', "
    "'memory/device_reserved (GiB)': '0', 'tokens/trainable': 47, 'tokens/total': 256, "
    "'epoch': '0.0125'}",
    " 67%|██████▋   | 2/3 [00:01<00:02,  6.63it/s]                                             "
    "{'loss': '6.936', 'learning_rate': '0.00025', 'memory/max_allocated (GiB)': '12.5', "
    "'memory/device_reserved (GiB)': '14.25', 'tokens/train_per_sec_per_gpu': '1862', "
    "'epoch': '0.0375'}",
    "  0%|          | 0/12 [00:00<?, ?it/s]",  # an eval bar: another total, ignored
    "100%|██████████| 3/3 [00:01<00:00,  6.63it/s]",
    "{'train_runtime': '1.001', 'train_samples_per_second': '11.99', 'train_loss': '6.944', "
    "'epoch': '0.0375'}",
]


def test_log_lines() -> None:
    s = ProgressState()
    assert not s.feed_line(LOG[0])  # a dataset bar is not training
    for line in LOG[1:]:
        s.feed_line(line)
    assert (s.step, s.total) == (3, 3)
    assert s.loss == pytest.approx(6.936)
    assert s.tokens_per_second == 1862
    assert s.peak_memory_gib == pytest.approx(14.25)
    assert s.train_loss == pytest.approx(6.944) and s.train_runtime == pytest.approx(1.001)
    assert s.source == "log"
    assert s.line() == "step 3/3 | loss 6.936 | 1,862 tokens/s | peak 14.2 GiB"


def test_eta_from_tqdm() -> None:
    s = ProgressState()
    s.feed_line(" 10%|█         | 10/100 [00:05<01:30,  2.00it/s]")
    assert s.eta_seconds == 90
    assert "ETA 1m30s" in s.line()


def test_metrics_stream_wins_over_log(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    records = [
        {"event": "start", "max_steps": 10},
        {"event": "step", "step": 1, "max_steps": 10, "loss": 2.5, "tokens_per_s": 1000.0,
         "peak_memory_gib": 3.25, "learning_rate": 1e-4, "epoch": 0.1},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"event": "st')
    reader = MetricsReader(path)
    s = ProgressState()
    for record in reader.read():
        s.feed_metrics(record)
    assert (s.step, s.total, s.loss, s.tokens_per_second) == (1, 10, 2.5, 1000.0)
    assert s.peak_memory_gib == 3.25 and s.source == "metrics"
    # a log dict no longer overrides what the plugin measured
    s.feed_line("{'loss': '9.0', 'epoch': '0.2'}")
    assert s.loss == 2.5
    # the half-written line is completed later and read then, once
    with path.open("a") as fh:
        fh.write('ep", "step": 2, "loss": 2.0}\n')
    (rec,) = reader.read()
    assert rec["step"] == 2
    assert reader.read() == []


def test_display_lines_mode(capsys: pytest.CaptureFixture[str]) -> None:
    d = ProgressDisplay(mode="lines", line_interval=0)
    d.start("training ...")
    for line in LOG[1:]:
        d.on_line(line)
    d.stop()
    err = capsys.readouterr().err
    assert err.startswith("training ...\n")
    assert "step 3/3 | loss 6.936" in err
    assert "\x1b[" not in err  # no colour codes off a terminal


def test_display_quiet_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    d = ProgressDisplay(mode="quiet", verbose=True)
    d.start("training ...")
    for line in LOG:
        d.on_line(line)
    d.stop()
    assert capsys.readouterr() == ("", "")


def test_verbose_echoes_raw_lines(capsys: pytest.CaptureFixture[str]) -> None:
    d = ProgressDisplay(mode="lines", verbose=True)
    d.start("x")
    d.on_line("raw axolotl line")
    d.stop()
    assert "raw axolotl line" in capsys.readouterr().err


def test_format_seconds() -> None:
    assert [format_seconds(x) for x in (5, 65, 3725)] == ["5s", "1m05s", "1h02m"]
