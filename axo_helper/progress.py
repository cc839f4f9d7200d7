"""Training progress: what `run` knows about a running Axolotl, and how it shows it.

Two sources feed one `ProgressState`:
- the plugin's `metrics.jsonl` in the run directory (one JSON object per step),
  read incrementally whenever output arrives; preferred when present;
- Axolotl's own output: the HF Trainer's log dicts
  (`{'loss': '6.93', ..., 'tokens/train_per_sec_per_gpu': '2844', 'epoch': '0.01'}`)
  and the training tqdm bar (` 33%|███▎      | 1/3 [00:01<00:02,  1.5it/s]`).

`ProgressDisplay` turns the state into one live line (rich) on a terminal, a plain
line every few seconds otherwise (no colour then, or with NO_COLOR), or nothing
(--quiet / --json). --verbose echoes Axolotl's raw output as well.
rich is imported only when a live display is shown.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import click

# The training bar has no label; dataset bars ("Tokenizing Prompts (num_proc=2): 50%|")
# do, and are skipped by anchoring at the start of the segment.
_TQDM = re.compile(
    r"^\s*(\d+)%\|[^|]*\|\s*(\d+)/(\d+)\s*\[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:?]+)"
)
_DICT = re.compile(r"\{'[^{}]*\}")

# Keys the plugin's metrics.jsonl may use (first found wins). See docs/run.md.
_M_STEP = ("step", "global_step")
_M_TOTAL = ("total_steps", "max_steps")
_M_LOSS = ("loss", "train_loss")
_M_TOKS = ("tokens_per_second", "tokens_per_sec", "tokens_per_s")
_M_PEAK_GIB = ("peak_memory_gib", "peak_mem_gib", "peak_gib")
_M_PEAK_BYTES = ("peak_memory_bytes", "peak_bytes")
_M_ETA = ("eta_seconds", "eta_s")
_M_LR = ("learning_rate", "lr")


@dataclass
class ProgressState:
    step: int | None = None
    total: int | None = None
    loss: float | None = None
    tokens_per_second: float | None = None
    peak_memory_gib: float | None = None
    eta_seconds: float | None = None
    learning_rate: float | None = None
    epoch: float | None = None
    train_loss: float | None = None  # the Trainer's final average
    train_runtime: float | None = None
    source: Literal["none", "log", "metrics"] = "none"
    started: float | None = None  # monotonic time of the first step seen
    first_step: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("started")
        d.pop("first_step")
        return d

    # ------------------------------------------------------------------ updates
    def _saw_step(self, step: int) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started, self.first_step = now, step
        self.step = step
        # Our own ETA from the observed rate; a source that gives one overrides it.
        if self.total and self.first_step is not None and step > self.first_step:
            rate = (now - self.started) / (step - self.first_step)
            self.eta_seconds = max(0.0, (self.total - step) * rate)

    def feed_line(self, line: str) -> bool:
        """Update from one line of Axolotl output; True when something changed."""
        changed = False
        m = _TQDM.match(line)
        if m and self.source != "metrics":
            done, total = int(m.group(2)), int(m.group(3))
            # The first unlabelled bar is training; eval bars (other totals) are ignored.
            if self.total is None or total == self.total:
                self.total = total
                self._saw_step(done)
                remaining = _clock_seconds(m.group("remaining"))
                if remaining is not None:
                    self.eta_seconds = remaining
                self.source = "log"
                changed = True
        for text in _DICT.findall(line):
            record = _literal_dict(text)
            if record is not None and self._feed_log_dict(record):
                changed = True
        return changed

    def _feed_log_dict(self, d: dict[str, Any]) -> bool:
        if "train_runtime" in d:
            self.train_runtime = _num(d.get("train_runtime"))
            self.train_loss = _num(d.get("train_loss"))
            return True
        if "loss" not in d:
            return False
        if self.source == "metrics":
            return False
        self.loss = _num(d.get("loss"))
        self.learning_rate = _num(d.get("learning_rate"))
        self.epoch = _num(d.get("epoch"))
        toks = _num(d.get("tokens/train_per_sec_per_gpu"))
        if toks is not None:
            self.tokens_per_second = toks
        peaks = [
            _num(d.get(k))
            for k in (
                "memory/device_reserved (GiB)",
                "memory/max_allocated (GiB)",
                "memory/max_active (GiB)",
            )
        ]
        peak = max((p for p in peaks if p is not None), default=None)
        if peak:  # 0 on CPU: Axolotl measures CUDA memory only
            self.peak_memory_gib = max(peak, self.peak_memory_gib or 0.0)
        self.source = "log"
        return True

    def feed_metrics(self, record: dict[str, Any]) -> bool:
        """Update from one metrics.jsonl record written by the plugin."""
        step = _first(record, _M_STEP)
        if step is None:
            return False
        self.source = "metrics"
        total = _first(record, _M_TOTAL)
        if total:
            self.total = int(total)
        self._saw_step(int(step))
        for attr, keys in (
            ("loss", _M_LOSS),
            ("tokens_per_second", _M_TOKS),
            ("learning_rate", _M_LR),
            ("eta_seconds", _M_ETA),
        ):
            value = _first(record, keys)
            if value is not None:
                setattr(self, attr, float(value))
        peak = _first(record, _M_PEAK_GIB)
        if peak is None:
            raw = _first(record, _M_PEAK_BYTES)
            peak = raw / 2**30 if raw is not None else None
        if peak is not None:
            self.peak_memory_gib = max(float(peak), self.peak_memory_gib or 0.0)
        epoch = _first(record, ("epoch",))
        if epoch is not None:
            self.epoch = float(epoch)
        return True

    # ------------------------------------------------------------------ text
    def line(self) -> str:
        parts = []
        if self.step is not None:
            parts.append(f"step {self.step}/{self.total}" if self.total else f"step {self.step}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:,.0f} tokens/s")
        if self.eta_seconds is not None and self.step != self.total:
            parts.append(f"ETA {format_seconds(self.eta_seconds)}")
        if self.peak_memory_gib is not None:
            parts.append(f"peak {self.peak_memory_gib:.1f} GiB")
        return " | ".join(parts)


class MetricsReader:
    """Reads new complete lines of metrics.jsonl since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.buffer = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        self.offset += len(data)
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        records = []
        for raw in complete:
            try:
                obj = json.loads(raw)
            except ValueError:
                continue  # a partial or foreign line: skip, never fail the run
            if isinstance(obj, dict):
                records.append(obj)
        return records


Mode = Literal["live", "lines", "quiet"]


class ProgressDisplay:
    """Shows a ProgressState while Axolotl runs. Diagnostics go to stderr."""

    def __init__(
        self,
        *,
        mode: Mode,
        verbose: bool = False,
        metrics_path: Path | None = None,
        line_interval: float = 10.0,
    ):
        self.mode = mode
        self.verbose = verbose
        self.state = ProgressState()
        self.metrics = MetricsReader(metrics_path) if metrics_path is not None else None
        self.line_interval = line_interval
        self._last_print = 0.0
        self._last_text = ""
        self._live: Any = None
        self._phase = ""

    def watch_metrics(self, path: Path) -> None:
        """Read the plugin's metrics stream at `path` (once the run directory is known)."""
        if self.metrics is None or self.metrics.path != path:
            self.metrics = MetricsReader(path)

    @staticmethod
    def default_mode(*, quiet: bool) -> Mode:
        from axo_helper.output import use_colour

        if quiet:
            return "quiet"
        return "live" if use_colour(sys.stderr) else "lines"

    def start(self, phase: str) -> None:
        """A new phase (preprocess, train attempt N): fresh state, a heading."""
        self.stop()
        self._phase = phase
        self.state = ProgressState()
        if self.metrics is not None:
            # Records from an earlier attempt are already consumed; start after them.
            self.metrics.read()
        if self.mode == "quiet":
            return
        click.echo(phase, err=True)
        if self.mode == "live":
            from rich.live import Live
            from rich.text import Text

            from axo_helper.output import console

            self._live = Live(
                Text(""), console=console(stderr=True), refresh_per_second=4, transient=True
            )
            self._live.start()

    def on_line(self, line: str) -> None:
        changed = self.state.feed_line(line)
        if self.metrics is not None:
            for record in self.metrics.read():
                changed = self.state.feed_metrics(record) or changed
        if self.verbose and self.mode != "quiet":
            if self._live is not None:
                self._live.console.print(line, markup=False, highlight=False)
            else:
                click.echo(line, err=True)
        if changed:
            self._show()

    def _show(self, force: bool = False) -> None:
        text = self.state.line()
        if not text or self.mode == "quiet":
            return
        if self._live is not None:
            from rich.text import Text

            self._live.update(Text(text))
            return
        now = time.monotonic()
        if text != self._last_text and (force or now - self._last_print >= self.line_interval):
            click.echo(f"  {text}", err=True)
            self._last_print, self._last_text = now, text

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            text = self.state.line()
            if text:
                click.echo(f"  {text}", err=True)
        elif self.mode == "lines":
            self._show(force=True)


# --------------------------------------------------------------------------- helpers
def format_seconds(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _clock_seconds(text: str) -> float | None:
    if "?" in text:
        return None
    total = 0
    for part in text.split(":"):
        if not part.isdigit():
            return None
        total = total * 60 + int(part)
    return float(total)


def _literal_dict(text: str) -> dict[str, Any] | None:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = _num(record.get(key))
        if value is not None:
            return value
    return None
