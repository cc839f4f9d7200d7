"""Counting live tensor storage op by op, on fake tensors.

A `TorchDispatchMode` sees every tensor an op returns. Storages, not tensors, hold
memory, and many tensors (views, `.grad` aliases, autograd's saved copies) share one
storage: each storage is keyed by `StorageWeakRef(...).cdata` (the key
torch.distributed._tools.mem_tracker uses) and dropped when its weak reference expires.
Keying on `id(t.untyped_storage())` double-counts: the Python storage object is made
anew on every call.

Each entry remembers the phase and the module scope it was allocated in, and a tag
set later (a parameter's gradient, an optimizer state), so the peak can be broken down.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

# "backward" is the loss and the head; then the blocks, then the embeddings' own backward.
PHASES = ("forward", "loss", "backward", "backward:blocks", "backward:embeddings", "optimizer")


@dataclass
class Entry:
    ref: StorageWeakRef
    nbytes: int
    phase: str
    scope: str
    op: str = ""
    tag: str = ""  # "weight", "gradient", "optimizer" once known; "" = the step's own


@dataclass
class Snapshot:
    """What was live at a peak: bytes by tag, by scope and by allocation phase."""

    total: int = 0
    by_tag: dict[str, int] = field(default_factory=dict)
    by_scope: dict[str, int] = field(default_factory=dict)
    by_phase: dict[str, int] = field(default_factory=dict)
    by_op: dict[str, int] = field(default_factory=dict)  # "scope:op" -> bytes


class StorageCounter(TorchDispatchMode):
    """Live bytes of every storage created while active (and those `adopt`ed)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, Entry] = {}
        self.total = 0
        self.untagged = 0  # the step's own bytes: not weights, gradients or states
        self.step_peak: dict[str, int] = {}  # phase -> peak of `untagged`
        self._step_entries: dict[str, list[Entry]] = {}
        self.phase = "setup"
        self.scope = "model"
        self.phase_peak: dict[str, int] = {}
        self.peak = 0
        self._peak_entries: list[Entry] = []
        self._phase_entries: dict[str, list[Entry]] = {}
        self.marks: dict[str, int] = {}  # tag -> bytes, recorded by `mark` while alive

    # -- registration ---------------------------------------------------------
    def adopt(self, t: torch.Tensor, tag: str, scope: str = "model") -> None:
        """Count a tensor made before tracing began (parameters, buffers)."""
        entry = self._add(t)
        if entry is not None:
            entry.scope = scope
            self._retag(entry, tag)

    def resize(self, t: torch.Tensor, nbytes: int) -> None:
        """Count `t` as `nbytes` (a 16-bit stand-in for a quantized weight)."""
        entry = self.live.get(StorageWeakRef(t.untyped_storage()).cdata)
        if entry is not None:
            self.total += nbytes - entry.nbytes
            if not entry.tag:
                self.untagged += nbytes - entry.nbytes
            entry.nbytes = nbytes

    def tag(self, t: torch.Tensor | None, tag: str) -> None:
        """Mark the storage of `t` (a gradient, an optimizer state) once it is known."""
        if t is None:
            return
        entry = self.live.get(StorageWeakRef(t.untyped_storage()).cdata)
        if entry is None:
            entry = self._add(t)
        if entry is not None:
            self._retag(entry, tag)

    def _retag(self, entry: Entry, tag: str) -> None:
        if not entry.tag and tag:
            self.untagged -= entry.nbytes
        elif entry.tag and not tag:
            self.untagged += entry.nbytes
        entry.tag = tag

    def _add(self, t: torch.Tensor, op: str = "") -> Entry | None:
        storage = t.untyped_storage()
        ref = StorageWeakRef(storage)
        if ref.cdata in self.live:
            return None
        entry = Entry(ref, storage.nbytes(), self.phase, self.scope, op)
        self.live[ref.cdata] = entry
        self.total += entry.nbytes
        self.untagged += entry.nbytes
        return entry

    def _sweep(self) -> None:
        dead = [k for k, e in self.live.items() if e.ref.expired()]
        for k in dead:
            e = self.live.pop(k)
            self.total -= e.nbytes
            if not e.tag:
                self.untagged -= e.nbytes

    # -- the mode ---------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        flat, _ = tree_flatten(out)
        added = False
        op = str(getattr(func, "__name__", func))
        for t in flat:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                added = self._add(t, op) is not None or added
        if added:
            self._sweep()
            self._note_peak()
        return out

    def _note_peak(self) -> None:
        if self.total > self.phase_peak.get(self.phase, -1):
            self.phase_peak[self.phase] = self.total
            self._phase_entries[self.phase] = list(self.live.values())
        if self.total > self.peak:
            self.peak = self.total
            self._peak_entries = self._phase_entries[self.phase]
        if self.untagged > self.step_peak.get(self.phase, -1):
            self.step_peak[self.phase] = self.untagged
            self._step_entries[self.phase] = [e for e in self.live.values() if not e.tag]

    # -- results ----------------------------------------------------------------
    def mark(self, tag: str) -> None:
        """Remember how many bytes are tagged `tag` now (gradients before zero_grad)."""
        self._sweep()
        self.marks[tag] = sum(e.nbytes for e in self.live.values() if e.tag == tag)

    def snapshot(self, phase: str | None = None, *, step: bool = False) -> Snapshot:
        """The breakdown at the overall peak, or at one phase's peak (`step`: the peak of
        the step's own bytes in that phase rather than of everything live)."""
        if step and phase is not None:
            entries = self._step_entries.get(phase, [])
        else:
            entries = self._peak_entries if phase is None else self._phase_entries.get(phase, [])
        tags: Counter[str] = Counter()
        scopes: Counter[str] = Counter()
        phases: Counter[str] = Counter()
        ops: Counter[str] = Counter()
        for e in entries:
            # At a step peak every entry was the step's own then (a new gradient is
            # tagged only once autograd has added it into .grad).
            tags["step" if step else (e.tag or "step")] += e.nbytes
            if step or not e.tag:
                scopes[e.scope] += e.nbytes
                phases[e.phase] += e.nbytes
                ops[f"{e.scope}:{e.op}"] += e.nbytes
        return Snapshot(sum(tags.values()), dict(tags), dict(scopes), dict(phases), dict(ops))
