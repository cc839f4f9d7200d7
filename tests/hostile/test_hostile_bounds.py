"""Option values past any real job are usage errors, with the usual two lines."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("option", "value"),
    [("--nodes", "100000000"), ("--epochs", "100000"), ("--micro-batch", "100000")],
)
def test_absurd_option_values_are_usage_errors(cli, option: str, value: str) -> None:
    result = cli("plan", "--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B", option, value)
    assert result.exit_code == 2
    assert f"invalid value for '{option}'" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.output


def test_config_with_model_says_what_to_drop(cli, tmp_path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("base_model: meta-llama/Llama-3.1-8B\nadapter: lora\n")
    result = cli("run", "--config", str(cfg), "--model", "meta-llama/Llama-3.1-8B", "--dry-run")
    assert result.exit_code == 2
    assert "pass only one of --model" in result.stderr
    assert "hint: --config trains the file as written" in result.stderr


def test_render_to_stdout_writes_no_file(cli, tmp_path, monkeypatch) -> None:
    import yaml

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "qa.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n' * 40)
    result = cli(
        "render", "--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B", "--data", str(data),
        "-o", "-",
    )
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(result.stdout)
    assert cfg["base_model"] == "meta-llama/Llama-3.1-8B"
    assert not (tmp_path / "-").exists() and not (tmp_path / "train.yml").exists()


def test_a_plugin_that_is_not_installed_is_named_before_launch(cli, tmp_path, monkeypatch) -> None:
    import yaml

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "qa.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n' * 40)
    out = tmp_path / "train.yml"
    args = ("--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B", "--data", str(data))
    assert cli("render", *args, "-o", str(out)).exit_code == 0
    cfg = yaml.safe_load(out.read_text())
    cfg["plugins"] = [*(cfg.get("plugins") or []), "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"]
    cfg["cut_cross_entropy"] = True
    out.write_text(yaml.safe_dump(cfg))
    checked = cli("validate", str(out), "--no-axolotl", "--gpu", "rtx4090")
    assert "needs cut_cross_entropy, not installed here" in checked.output
    run = cli("run", "--config", str(out), "--gpu", "rtx4090", "--dry-run")
    assert run.exit_code == 1, run.output
    assert "needs cut_cross_entropy" in run.stderr and "hint: install it first" in run.stderr
