"""A hub id that only shares a preset's name is not silently the preset, and whenever a
preset stands for the model, the ModelSpec says which."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_inputs import TINY_LLAMA
from model_fixtures import write

from axo_helper.model import inspect

SHA = "0123456789abcdef0123456789abcdef01234567"


def cache_config(root: Path, repo: str) -> None:
    """config.json of `repo` in the layout huggingface_hub's cache has."""
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    write(repo_dir / "refs", "main", SHA)
    write(repo_dir / "snapshots" / SHA, "config.json", TINY_LLAMA)


@pytest.mark.parametrize(
    ("repo", "preset"),
    [("acme/tiny-llama", "tinyllama-1.1b"), ("mlx-community/Qwen2.5-7B", "qwen2.5-7b")],
)
def test_another_orgs_cached_config_wins_over_a_preset_of_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo: str, preset: str
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    stand_in = inspect(repo)  # nothing cached, hub offline: the preset, and it says so
    assert stand_in.source == "preset" and stand_in.total_params > 100_000_000
    assert stand_in.notes[0].startswith(f"architecture from the shipped preset {preset} (")
    assert f"{repo} matches it by name only and the hub is offline" in stand_in.notes[0]
    cache_config(tmp_path / "hub", repo)
    own = inspect(repo)
    assert own.source == "hub" and own.hf_id == repo
    assert own.hidden_size == 256 and own.total_params < 2_000_000
    assert not any("shipped preset" in n for n in own.notes)


@pytest.mark.parametrize(
    ("typed", "preset"),
    [
        ("Qwen/Qwen2.5-7B", "qwen2.5-7b"),
        ("llama3.1-8b", "llama-3.1-8b"),
        ("meta-llama/Meta-Llama-3.1-8B", "llama-3.1-8b"),
        ("google/gemma-2-9b-it", "gemma-2-9b"),
    ],
)
def test_the_presets_own_names_use_it_and_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, typed: str, preset: str
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cache_config(tmp_path / "hub", typed)  # a cached copy does not replace the preset
    spec = inspect(typed)
    assert spec.source == "preset" and spec.total_params > 1_000_000_000
    assert spec.notes[0].startswith(f"architecture from the shipped preset {preset} (")
    assert "by name only" not in spec.notes[0]
