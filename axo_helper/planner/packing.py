"""Sample packing and the batch in tokens: whether to pack, and how many micro batches to accumulate.

Packing is decided from what Axolotl trains at a sequence_len (planner.lengths.row_fate):
samples are packed when the mean training sequence is at most
`sample_packing.max_mean_fraction` of the packed length (two or more samples per
sequence). Short samples are packed into at least `sample_packing.min_sequence_len`
tokens, so the same content packs whether its p99 rounds to 256 or to 512; a longer packed length drops no more rows than the shorter one.

The optimizer step is sized in tokens, not sequences: accumulation is chosen so that
micro batch x tokens per sequence x accumulation x GPUs comes closest to
`batch.target_tokens_per_step`, whatever the packing decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.planner.lengths import row_fate
from axo_helper.planner.policy import Policy
from axo_helper.specs import DataSpec


@dataclass(frozen=True)
class Packing:
    """The packing decision at one candidate sequence_len."""

    on: bool
    seq_len: int  # the length to train at: the candidate, or longer to hold several samples
    reason: str


def mean_sequence(data: DataSpec, seq: int) -> float:
    """The mean training sequence at `seq`: whole rows kept, or completion chunks."""
    return row_fate(data, seq).mean_len if data.rows > 0 else float(data.tokens.mean)


def choose(
    data: DataSpec | None,
    seq: int,
    policy: Policy,
    *,
    cpu: bool,
    limit: int,
    explicit: bool,
) -> Packing:
    """Pack when samples are short against the packed length (see the module docstring).

    `limit`: the model's positions; `explicit`: --seq-len was given, so the length stays.
    """
    if data is None or data.rows <= 0:
        return Packing(False, seq, "no --data: sample lengths unknown, packing off")
    if cpu and not policy.cpu_sample_packing:
        return Packing(
            False, seq, "off on CPU: the multipack sampler costs more time than tiny samples save"
        )
    frac = policy.packing_max_mean_fraction
    packed = seq if explicit else min(limit, max(seq, policy.packing_min_seq_len))
    mean = mean_sequence(data, packed)
    rule = f"mean sample {mean:,.0f} tokens"
    if mean > frac * packed:
        return Packing(
            False,
            seq,
            f"{rule} > {frac:g} x sequence_len {packed:,}: fewer than "
            f"{1 / frac:.0f} samples per sequence, little to pack",
        )
    why = (
        f"{rule} <= {frac:g} x sequence_len {packed:,}: about {packed / max(1.0, mean):.0f} "
        "samples per sequence instead of padding"
    )
    if packed > seq:
        why += f" (packed into {packed:,} rather than {seq:,}: short samples always pack)"
    return Packing(True, packed, why)


def sequence_tokens(data: DataSpec | None, seq: int, packing: bool, policy: Policy) -> float:
    """Real tokens (padding excluded) in one sequence of a micro batch."""
    if packing:
        return seq * policy.packing_efficiency
    if data is None or data.rows <= 0:
        return float(seq)  # no data: assume full sequences, as the memory model does
    return max(1.0, min(float(seq), mean_sequence(data, seq)))


def accumulation(policy: Policy, tokens_per_sequence: float, micro_batch: int, world: int) -> int:
    """Accumulation steps whose tokens per optimizer step come closest to the target."""
    per_micro_step = max(1.0, tokens_per_sequence) * micro_batch * world
    return max(1, round(policy.target_tokens_per_step / per_micro_step))


class StepTokens:
    """Tokens per sequence at each (sequence_len, packing) of one plan, computed once each."""

    def __init__(self, data: DataSpec | None, policy: Policy):
        self.data = data
        self.policy = policy
        self._memo: dict[tuple[int, bool], float] = {}
        self._sequences: dict[tuple[int, bool], float] = {}

    def per_sequence(self, seq: int, packing: bool) -> float:
        key = (seq, packing)
        if key not in self._memo:
            self._memo[key] = sequence_tokens(self.data, seq, packing, self.policy)
        return self._memo[key]

    def sequences(self, seq: int, packing: bool) -> float | None:
        """Sequences in one epoch (packed: the kept tokens in full sequences); None
        without data."""
        if self.data is None or self.data.rows <= 0:
            return None
        key = (seq, packing)
        if key not in self._sequences:
            fate = row_fate(self.data, seq)
            packed = fate.tokens_kept / self.per_sequence(seq, True)
            self._sequences[key] = packed if packing else float(fate.sequences)
        return self._sequences[key]

    def step_cap(self, seq: int, packing: bool, micro_batch: int, world: int) -> int | None:
        """The most accumulation that still gives an epoch min_steps_per_epoch steps."""
        seqs = self.sequences(seq, packing)
        if seqs is None:
            return None
        per_step = micro_batch * world * self.policy.min_steps_per_epoch
        return max(1, int(seqs // per_step))

    def accumulation(self, seq: int, packing: bool, micro_batch: int, world: int) -> int:
        ga = accumulation(self.policy, self.per_sequence(seq, packing), micro_batch, world)
        cap = self.step_cap(seq, packing, micro_batch, world)
        return ga if cap is None else min(ga, cap)

    def reason(self, seq: int, packing: bool, micro_batch: int, ga: int, world: int) -> str:
        """The gradient_accumulation_steps comment: the step in tokens, against the target."""
        per_seq = self.per_sequence(seq, packing)
        step = per_seq * micro_batch * ga * world
        kind = "packed sequence" if packing else "sample"
        gpus = f" x {world} GPUs" if world > 1 else ""
        text = (
            f"{micro_batch} x {ga}{gpus} sequences of ~{per_seq:,.0f} tokens ({kind}) = "
            f"~{step:,.0f} tokens per optimizer step "
            f"(target {self.policy.target_tokens_per_step:,})"
        )
        cap = self.step_cap(seq, packing, micro_batch, world)
        wanted = accumulation(self.policy, per_seq, micro_batch, world)
        if cap is not None and cap < wanted:
            text += f"; capped so an epoch keeps {self.policy.min_steps_per_epoch} steps"
        return text
