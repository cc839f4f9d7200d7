"""Shell completion (docs/cli.md): Click's, under the variable named after the command."""

from __future__ import annotations

from click.testing import CliRunner


def _complete(words: str) -> list[str]:
    from axo_helper.cli import cli as group

    env = {
        "_AXO_HELPER_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    result = CliRunner().invoke(group, [], prog_name="axo-helper", env=env)
    assert result.exit_code == 0, result.output
    return [line.split(",", 1)[1] for line in result.output.splitlines() if "," in line]


def test_commands_options_and_choices_complete() -> None:
    assert {"plan", "render", "validate", "run"} <= set(_complete("axo-helper "))
    assert _complete("axo-helper plan --revi") == ["--revision"]
    assert _complete("axo-helper plan --method ") == ["full", "lora", "qlora", "freeze"]


def test_the_documented_bash_line_prints_a_script() -> None:
    from axo_helper.cli import cli as group

    env = {"_AXO_HELPER_COMPLETE": "bash_source"}
    result = CliRunner().invoke(group, [], prog_name="axo-helper", env=env)
    assert result.exit_code == 0
    assert "_axo_helper_completion()" in result.output
    assert "complete -o nosort -F _axo_helper_completion axo-helper" in result.output
