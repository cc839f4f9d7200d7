"""The calibration store: measured runs in an embedded SQLite database.

Every finished run (the plugin's metrics.json) adds one row: the setup, the
predicted and the measured peak memory, and tokens/s. The planner then corrects
its estimate for the same GPU model + architecture family + method, and uses
measured tokens/s instead of an assumed utilisation for its time estimate.

The planner gets the matching runs as a value (`CalibrationStore.calibration(...)` ->
`Calibration`), read once before it searches.

The database lives at $AXO_HELPER_HOME/calibration.sqlite3 (default: the
platform's user data directory). It is opened in WAL mode with a busy timeout,
so two runs that finish at once both land; every write is one transaction.

Correction rule (conservative on purpose, see docs/calibration.md):
- ratio = measured / predicted for each matching row;
- if any ratio is above 1, the estimate is scaled by the largest one (we under-
  predicted once: trust the worst case);
- if all are below 1, it is scaled by halfway between 1 and the largest ratio
  (we over-predicted: give back only half the margin);
- the factor is clamped to [MIN_FACTOR, MAX_FACTOR]: a wildly different ratio
  means a different setup or a broken measurement, not a calibration.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

from axo_helper.calibration_rows import (
    COLUMNS,
    SCHEMA_VERSION,
    Measurement,
    csv_cell,
    csv_uncell,
    parse_row,
)
from axo_helper.errors import AxoHelperError
from axo_helper.specs import MemoryBreakdown, TrainSetup

DB_NAME = "calibration.sqlite3"
MIN_FACTOR = 0.7
MAX_FACTOR = 2.0
__all__ = ["COLUMNS", "SCHEMA_VERSION", "Calibration", "CalibrationStore", "Measurement"]
BUSY_TIMEOUT_S = 30.0
_CLEAR_HINT = "run `axo-helper calibration clear --yes` (it moves the unreadable file aside)"


def home_dir() -> Path:
    """axo-helper's user data directory ($AXO_HELPER_HOME overrides)."""
    env = os.environ.get("AXO_HELPER_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("axo-helper", appauthor=False))


def default_db_path() -> Path:
    return home_dir() / DB_NAME


_VENDOR_WORDS = {"nvidia", "geforce", "tesla", "quadro", "amd", "instinct", "radeon"}


def gpu_key(name: str) -> str:
    """The GPU model a measurement belongs to.

    The GPU profile when the name matches one ("NVIDIA A100-SXM4-80GB" as NVML
    reports it and "a100-80gb" as the user typed it both give "a100-80gb"), else
    the name normalised ("NVIDIA GeForce Foo 9" -> "foo 9").
    """
    from axo_helper import hardware
    from axo_helper.errors import GPUSpecError

    try:
        profile = hardware.match_profile(name).profile
    except GPUSpecError:
        profile = None
    if profile:
        return profile
    cleaned = "".join(ch if ch.isalnum() else " " for ch in name.lower())
    return " ".join(w for w in cleaned.split() if w not in _VENDOR_WORDS)


_CREATE = f"""
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schema_version INTEGER NOT NULL,
    gpu_key TEXT NOT NULL,
    {", ".join(f"{c} {'REAL' if c in ('predicted_gib', 'measured_gib', 'tokens_per_s', 'created_at') else 'TEXT'}" for c in COLUMNS)}
);
CREATE INDEX IF NOT EXISTS runs_match ON runs (gpu_key, family, method);
"""


class CalibrationStore:
    """The SQLite store. Cheap to construct; connects per operation."""

    def __init__(self, path: Path | None = None):
        self.path = path or default_db_path()
        self.warnings: list[str] = []

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        existed = self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise AxoHelperError(
                f"cannot open the calibration store {self.path}: {exc}",
                hint="check the directory's permissions and free space, "
                "or set AXO_HELPER_HOME elsewhere",
            ) from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_CREATE)
            yield conn
        except sqlite3.DatabaseError as exc:
            conn.close()
            if not existed:  # a full disk: leave no empty database behind
                self._remove_new()
                raise AxoHelperError(
                    f"cannot create the calibration store {self.path} ({exc})",
                    hint="free some space, or set AXO_HELPER_HOME elsewhere",
                ) from None
            raise AxoHelperError(
                f"the calibration store {self.path} is not a readable SQLite database ({exc})",
                hint=_CLEAR_HINT,
            ) from None
        finally:
            conn.close()

    def _remove_new(self) -> None:
        """Remove the database this call created and could not set up (it holds no row)."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(OSError):
                self.path.with_name(self.path.name + suffix).unlink()

    # ------------------------------------------------------------------ writing
    def add(self, m: Measurement) -> None:
        self.add_many([m])

    def add_many(self, ms: Iterable[Measurement]) -> int:
        rows = [m for m in ms]
        if not rows:
            return 0
        cols = ("schema_version", "gpu_key", *COLUMNS)
        sql = f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    sql,
                    [
                        (SCHEMA_VERSION, gpu_key(m.gpu), *(_to_db(getattr(m, c)) for c in COLUMNS))
                        for m in rows
                    ],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(rows)

    def clear(self) -> int:
        """Delete every row; an unreadable store is moved aside (its name is in warnings)."""
        if not self.path.exists():
            return 0
        try:
            with self._connect() as conn:
                cur = conn.execute("DELETE FROM runs")
                return cur.rowcount
        except AxoHelperError:
            if not self.path.is_file():
                raise
        aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            raise AxoHelperError(
                f"cannot move the unreadable calibration store {self.path} aside: {exc}",
                hint="move or delete it yourself",
            ) from None
        self.warnings.append(f"the unreadable calibration store was moved to {aside}")
        return 0

    # ------------------------------------------------------------------ reading
    def measurements(
        self, *, gpu: str | None = None, family: str | None = None, method: str | None = None
    ) -> list[Measurement]:
        """Valid rows, oldest first; rows that cannot be read are skipped with a warning."""
        if not self.path.exists():
            return []
        where, args = [], []
        for col, val in (("gpu_key", gpu and gpu_key(gpu)), ("family", family), ("method", method)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = f"SELECT id, schema_version, {', '.join(COLUMNS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        with self._connect() as conn:
            raw = conn.execute(sql, args).fetchall()
        out: list[Measurement] = []
        for row in raw:
            row_id, version, *values = row
            parsed = parse_row(version, dict(zip(COLUMNS, values, strict=True)))
            if isinstance(parsed, str):
                self.warnings.append(f"calibration row {row_id} skipped: {parsed}")
            else:
                out.append(parsed)
        return out

    def export_csv(self, stream: IO[str]) -> int:
        rows = self.measurements()
        writer = csv.DictWriter(stream, fieldnames=list(COLUMNS))
        writer.writeheader()
        for m in rows:
            writer.writerow({k: csv_cell(v) for k, v in asdict(m).items()})
        return len(rows)

    def import_csv(self, stream: IO[str]) -> int:
        """Add rows from a CSV written by export_csv (sharing measurements)."""
        good: list[Measurement] = []
        try:
            records = list(csv.DictReader(stream))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AxoHelperError(
                f"the file is not a CSV of measurements ({exc})",
                hint="import a file written by `axo-helper calibration export`",
            ) from None
        for i, rec in enumerate(records, start=2):
            rec = {k: csv_uncell(v) for k, v in rec.items()}
            parsed = parse_row(SCHEMA_VERSION, {**rec, "source": "import"})
            if isinstance(parsed, str):
                self.warnings.append(f"CSV line {i} skipped: {parsed}")
            else:
                good.append(parsed)
        return self.add_many(good)

    # ------------------------------------------------------------------ using
    def calibration(
        self, gpu: str | None, family: str, methods: Iterable[str] = ("full", "lora", "qlora")
    ) -> Calibration:
        """The matching runs for this GPU and model family, read now, as a value.

        One query per method, as the planner would look them up; a store that cannot
        be read gives no rows and its warning (planning goes on uncalibrated).
        """
        if gpu is None:
            return Calibration(gpu=None)
        rows: list[Measurement] = []
        before = len(self.warnings)
        for method in methods:
            try:
                rows.extend(self.measurements(gpu=gpu, family=family, method=method))
            except AxoHelperError as exc:
                self.warnings.append(str(exc))
                break  # the store is unreadable: once is enough to say so
        return Calibration(gpu=gpu, rows=tuple(rows), warnings=tuple(self.warnings[before:]))


def _to_db(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def correction_factor(ratios: list[float]) -> float:
    """The conservative factor for a list of measured/predicted ratios (see module doc)."""
    if not ratios:
        return 1.0
    worst = max(ratios)
    factor = worst if worst >= 1.0 else 1.0 - (1.0 - worst) / 2
    return min(MAX_FACTOR, max(MIN_FACTOR, factor))


@dataclass(frozen=True)
class Calibration:
    """Measured runs for one GPU, read before planning: the planner's corrections.

    Immutable and without I/O, so planner.plan stays pure. `rows` are the runs of
    the GPU (and model family) the store was asked for; `warnings` what reading them
    reported (unreadable rows, an unreadable store).
    """

    gpu: str | None
    rows: tuple[Measurement, ...] = ()
    warnings: tuple[str, ...] = ()

    def matches(self, setup: TrainSetup) -> list[Measurement]:
        """Runs of the same architecture family and method."""
        if self.gpu is None:
            return []
        return [m for m in self.rows if m.family == setup.model.family and m.method == setup.method]

    def runs_for(self, setup: TrainSetup) -> int:
        """How many runs correct this setup's estimate ("calibrated from N runs")."""
        return len(self.matches(setup))

    def correct(self, setup: TrainSetup, estimate: MemoryBreakdown) -> MemoryBreakdown:
        """The estimate scaled by the conservative factor of the matching runs."""
        found = self.matches(setup)
        if not found:
            return estimate
        factor = correction_factor([m.ratio for m in found])
        return scale(estimate, factor, f"calibrated from {len(found)} run(s): x{factor:.2f}")

    def tokens_per_s(self, setup: TrainSetup) -> float | None:
        """Measured throughput of the same setup (seq len, micro batch, GC, GPUs), if any."""
        same = [
            m.tokens_per_s
            for m in self.matches(setup)
            if m.tokens_per_s
            and m.sequence_len == setup.sequence_len
            and m.micro_batch_size == setup.micro_batch_size
            and m.gradient_checkpointing == setup.gradient_checkpointing
            and m.num_gpus == setup.num_gpus
        ]
        if not same:
            return None
        same.sort()
        return same[len(same) // 2]


def scale(estimate: MemoryBreakdown, factor: float, note: str) -> MemoryBreakdown:
    """Scale every component, so the breakdown still adds up to the total."""
    if factor == 1.0:
        return replace(estimate, notes=(*estimate.notes, note))
    return replace(
        estimate,
        weights_gib=estimate.weights_gib * factor,
        trainable_state_gib=estimate.trainable_state_gib * factor,
        activations_gib=estimate.activations_gib * factor,
        logits_gib=estimate.logits_gib * factor,
        overhead_gib=estimate.overhead_gib * factor,
        total_gib=estimate.total_gib * factor,
        notes=(*estimate.notes, note),
    )
