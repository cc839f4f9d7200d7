"""The held-out rows: the split Axolotl made of the prepared dataset training loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_runs import write_config, write_prepared

from axo_helper.report.heldout import (
    IGNORE_INDEX,
    held_out_split,
    prompt_and_reference,
    val_set_size,
)
from axo_helper.report.missing import Missing
from axo_helper.rundir import RunDir

pytest.importorskip("datasets", reason="needs the [train] extra")


def rows(n: int) -> list[dict[str, list[int]]]:
    """Row i: input_ids [i, i+1, i+2], the last two trained."""
    return [
        {
            "input_ids": [i, i + 1, i + 2],
            "labels": [IGNORE_INDEX, i + 1, i + 2],
            "attention_mask": [1, 1, 1],
        }
        for i in range(n)
    ]


@pytest.mark.parametrize(("size", "held"), [(0.1, 4), (0.05, 2), (3, 3), (0.25, 10)])
def test_the_split_is_the_last_rows_of_the_prepared_dataset(
    tmp_path: Path, size: float, held: int
) -> None:
    run = RunDir(tmp_path)
    cfg = write_config(run, base_model="m", val_set_size=size, seed=42)
    write_prepared(run, rows(40))
    split = held_out_split(run, cfg)
    assert split.rows == held and split.source == "val_set_size"
    assert [r["input_ids"][0] for r in split.dataset] == list(range(40 - held, 40))
    assert f"{held} rows" in split.description


def test_the_dataset_named_in_train_log_wins_over_other_prepared_ones(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    cfg = write_config(run, base_model="m", val_set_size=2)
    old = write_prepared(run, rows(10), name="old")
    used = write_prepared(
        run, [{**r, "input_ids": [100 + r["input_ids"][0], 0, 0]} for r in rows(10)], name="new"
    )
    assert old != used
    split = held_out_split(run, cfg)
    assert split.prepared == used
    assert [r["input_ids"][0] for r in split.dataset] == [108, 109]


def test_several_prepared_datasets_and_no_log_line_is_missing(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    cfg = write_config(run, base_model="m", val_set_size=2)
    write_prepared(run, rows(10), name="a")
    write_prepared(run, rows(10), name="b")
    run.train_log.unlink()
    with pytest.raises(Missing, match=r"cannot tell which prepared dataset.*--eval-data"):
        held_out_split(run, cfg)


def test_sharding_happens_before_the_split_as_in_axolotl(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    cfg = write_config(
        run, base_model="m", val_set_size=2, dataset_shard_num=2, dataset_shard_idx=1
    )
    write_prepared(run, rows(20))
    split = held_out_split(run, cfg)
    # datasets' shard() is contiguous: index 1 of 2 is rows 10-19, of which the last 2.
    assert [r["input_ids"][0] for r in split.dataset] == [18, 19]


@pytest.mark.parametrize(
    "cfg", [{}, {"val_set_size": 0}, {"val_set_size": 0.0, "test_datasets": [{}]}]
)
def test_no_held_out_rows_says_to_pass_eval_data(tmp_path: Path, cfg: dict[str, object]) -> None:
    run = RunDir(tmp_path)
    with pytest.raises(Missing, match="--eval-data FILE") as caught:
        held_out_split(run, write_config(run, base_model="m", **cfg))
    assert ("test_datasets" in caught.value.reason) == ("test_datasets" in cfg)


def test_val_set_size_is_a_count_above_one_and_a_fraction_otherwise() -> None:
    assert val_set_size({"val_set_size": 0.05}) == 0.05
    assert val_set_size({"val_set_size": 1.0}) == 1.0
    assert val_set_size({"val_set_size": 12}) == 12 and isinstance(
        val_set_size({"val_set_size": 12.0}), int
    )
    assert val_set_size({}) == 0 and val_set_size({"val_set_size": "x"}) == 0


def test_prompt_and_reference_split_at_the_first_trained_span() -> None:
    ids = [1, 2, 3, 4, 5, 6, 7, 8]
    labels = [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 4, 5, IGNORE_INDEX, 7, 8]
    assert prompt_and_reference(ids, labels) == ([1, 2, 3], [4, 5])
    assert prompt_and_reference(ids, [IGNORE_INDEX] * 8) is None  # nothing trained
    assert prompt_and_reference(ids, ids) is None  # train_on_inputs: no prompt to give


@pytest.mark.slow
@pytest.mark.axolotl
@pytest.mark.parametrize("size", [0.05, 0.3, 7])
def test_the_split_is_the_one_axolotl_makes(tmp_path: Path, size: float) -> None:
    pytest.importorskip("axolotl", reason="needs the [train] extra")
    from axolotl.utils.data.shared import create_train_validation_split
    from axolotl.utils.dict import DictDefault
    from datasets import Dataset

    run = RunDir(tmp_path)
    cfg = write_config(run, base_model="m", val_set_size=size, seed=42)
    write_prepared(run, rows(37))
    ours = held_out_split(run, cfg).dataset
    _, theirs = create_train_validation_split(
        Dataset.from_list(rows(37)), DictDefault(cfg), val_set_size(cfg)
    )
    assert ours["input_ids"] == theirs["input_ids"]
