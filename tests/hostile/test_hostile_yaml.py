"""Hostile YAML: alias bombs, deep nesting and huge files are refused fast, never crash."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from axo_helper.errors import ConfigError
from axo_helper.validate.lines import parse_config
from axo_helper.yamlload import MAX_BYTES, MAX_DEPTH, load_yaml

CLI = Callable[..., Result]


def alias_bomb(levels: int) -> str:
    lines = ["base_model: x", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def deep_mapping(depth: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "leaf: 1\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (alias_bomb(9), "expands to more than"),
        (alias_bomb(7), "expands to more than"),
        (deep_mapping(3000), "nests more than"),
        ("[" * 100_000 + "]" * 100_000, "nests more than"),
        ("- " * 100_000 + "x\n", "nests more than"),
    ],
    ids=["bomb9", "bomb7", "deep3000", "flow100k", "dash100k"],
)
def test_hostile_yaml_is_refused_in_milliseconds(text: str, says: str) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError, match=says) as info:
        load_yaml(text, "train.yml")
    assert time.monotonic() - start < 2.0
    assert info.value.hint and len(str(info.value)) < 300


def test_validate_and_run_refuse_an_alias_bomb(cli: CLI, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(alias_bomb(9))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = cli("validate", str(bomb), "--json")
    assert res.exit_code == 1, res.output[:500]
    assert "expands to more than" in res.stdout and len(res.output) < 5000
    run = cli("run", "--config", str(bomb), "-o", str(tmp_path / "r"), "--dry-run")
    assert run.exit_code == 1 and "expands to more than" in run.stderr
    assert "internal error" not in run.output and len(run.output) < 5000
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200_000  # KiB on Linux: far from the gigabytes of the expansion


def test_deep_yaml_in_validate_is_a_message(cli: CLI, tmp_path: Path) -> None:
    deep = tmp_path / "deep.yml"
    deep.write_text("base_model: x\n" + deep_mapping(3000))
    res = cli("validate", str(deep))
    assert res.exit_code == 1
    assert f"nests more than {MAX_DEPTH} levels" in res.output
    assert "internal error" not in res.output and "RecursionError" not in res.output


def test_a_normal_config_parses_once_with_lines() -> None:
    text = "base_model: m\nlora_target_modules:\n  - q_proj\n  - v_proj\nx: &a {k: 1}\ny: *a\n"
    data, lines = parse_config(text)
    assert data["y"] == {"k": 1} and data["lora_target_modules"] == ["q_proj", "v_proj"]
    assert lines.line(("lora_target_modules", 1)) == 4
    assert lines.line(("y", "k")) == 5  # the alias's value is where the anchor wrote it


def test_a_huge_yaml_is_refused_before_parsing() -> None:
    text = "k: v\n" * (MAX_BYTES // 5 + 1)
    start = time.monotonic()
    with pytest.raises(ConfigError, match="MiB"):
        load_yaml(text)
    assert time.monotonic() - start < 1.0


def test_a_large_flat_yaml_below_the_cap_parses_with_libyaml_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    from axo_helper import yamlload

    # libyaml's C parser where PyYAML has it (the pure-Python one is ~20x slower)
    assert yamlload._LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    made: list[object] = []
    real = yamlload._LOADER

    def counting(stream: str) -> object:
        made.append(stream)
        return real(stream)

    monkeypatch.setattr(yamlload, "_LOADER", counting)
    text = "".join(f"key_{i}: value number {i}\n" for i in range(200_000))  # ~5.5 MB
    data, _ = load_yaml(text)
    assert len(data) == 200_000
    assert len(made) == 1  # one parse: data and line numbers come from it
