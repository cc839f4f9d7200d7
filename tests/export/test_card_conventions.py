"""The model card merges the card PEFT/the Trainer/Axolotl wrote in output/README.md
(front matter, Axolotl's badge, the "See axolotl config" block, the training
procedure), names the base by its hub id only, and leaks no host path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from axo_helper.export.card import model_card
from axo_helper.export.hub_card import base_hub_id, front_matter
from axo_helper.export.source import load_run
from axo_helper.rundir import RunDir

BADGE = (
    '[<img src="https://raw.githubusercontent.com/axolotl-ai-cloud/axolotl/main/image/'
    'axolotl-badge-web.png" alt="Built with Axolotl" width="200" height="32"/>]'
    "(https://github.com/axolotl-ai-cloud/axolotl)"
)


def trainer_card(run: Path, base: str, data: str, axolotl_yml: str) -> str:
    """output/README.md laid out the way PEFT's model card, the Trainer's
    create_model_card and Axolotl's setup_model_card write it (Axolotl 0.19)."""
    front = {
        "library_name": "peft",
        "license": "apache-2.0",
        "tags": ["axolotl", f"base_model:adapter:{base}", "lora", "transformers"],
        "datasets": [data, "tatsu-lab/alpaca"],
        "base_model": base,
        "pipeline_tag": "text-generation",
        "model-index": [{"name": str(run / "output").lstrip("./"), "results": []}],
    }
    return (
        f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n\n"
        "<!-- This model card has been generated automatically -->\n\n"
        f"{BADGE}\n<details><summary>See axolotl config</summary>\n\n"
        f"axolotl version: `0.19.0`\n```yaml\n{axolotl_yml}\n```\n\n</details><br>\n\n"
        f"# {str(run / 'output').lstrip('./')}\n\n"
        f"This model was trained from scratch on the {data} dataset.\n\n"
        "## Model description\n\nMore information needed\n\n"
        "## Training procedure\n\n### Training hyperparameters\n\n- learning_rate: 0.001\n\n"
        "### Framework versions\n\n- PEFT 0.20.0\n"
    )


def axolotl_run(tmp_path: Path, *, origin: str | None) -> Path:
    """A run directory whose base model and data are local absolute paths."""
    base = tmp_path / "models" / "my-base"
    base.mkdir(parents=True)
    (base / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "_name_or_path": origin})
    )
    data = tmp_path / "data" / "qa.jsonl"
    run = RunDir(tmp_path / "runs" / "qa")
    run.output.mkdir(parents=True)
    cfg = {
        "base_model": str(base),
        "adapter": "lora",
        "datasets": [
            {"path": str(data), "type": "chat_template"},
            {"path": "tatsu-lab/alpaca", "type": "alpaca"},
        ],
        "output_dir": str(run.output),
        "dataset_prepared_path": str(run.path / "prepared"),
    }
    text = f"# Check it: axo-helper validate {run.config}\n" + yaml.safe_dump(cfg)
    run.config.write_text(text, encoding="utf-8")
    (run.output / "README.md").write_text(
        trainer_card(run.path, str(base), str(data), text), encoding="utf-8"
    )
    return run.path


def card_of(run: Path, variant: str) -> tuple[dict[str, object], str]:
    card = model_card(load_run(run), variant)
    return front_matter(card)


def test_the_card_keeps_the_trainer_cards_front_matter(tmp_path: Path) -> None:
    run = axolotl_run(tmp_path, origin="org/my-base-7b")
    front, body = card_of(run, "adapter")
    assert front == {
        # a local base: the hub id its config.json records
        "base_model": "org/my-base-7b",
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "license": "apache-2.0",
        "datasets": ["tatsu-lab/alpaca"],  # the local file is no Hub dataset
        "tags": ["axolotl", "axo-helper", "lora", "transformers"],
        "model-index": [{"name": "qa", "results": []}],
    }
    assert body.startswith("\n# qa: LoRA adapter of org/my-base-7b\n")
    # The Hub's own parser reads the same metadata.
    from huggingface_hub import ModelCard

    data = ModelCard(model_card(load_run(run), "adapter")).data.to_dict()
    assert (data["base_model"], data["license"], data["datasets"]) == (
        "org/my-base-7b", "apache-2.0", ["tatsu-lab/alpaca"],
    )  # fmt: skip
    merged, _ = card_of(run, "merged")
    assert merged["library_name"] == "transformers" and merged["license"] == "apache-2.0"


def test_the_card_keeps_axolotls_badge_config_and_training_procedure(tmp_path: Path) -> None:
    run = axolotl_run(tmp_path, origin=None)
    _, body = card_of(run, "merged")
    assert BADGE in body
    config = body.split("<details><summary>See axolotl config</summary>")[1]
    assert "axolotl version: `0.19.0`" in config
    assert "adapter: lora\n" in config and "type: chat_template\n" in config
    assert "## Training procedure\n\n### Training hyperparameters\n\n- learning_rate: 0.001" in body
    assert "More information needed" not in body and "trained from scratch" not in body


@pytest.mark.parametrize("variant", ["adapter", "merged"])
def test_the_card_names_no_host_path(tmp_path: Path, variant: str) -> None:
    run = axolotl_run(tmp_path, origin=None)
    card = model_card(load_run(run), variant)
    assert str(tmp_path) not in card and str(tmp_path).lstrip("/") not in card
    front, body = front_matter(card)
    assert "base_model" not in front  # a local path is no hub id
    assert all("base_model:" not in str(t) for t in front["tags"])
    assert "The base model `my-base` is a local checkpoint" in body
    assert "- `qa.jsonl` (type `chat_template`)\n- `tatsu-lab/alpaca` (type `alpaca`)\n" in body
    # The config keeps its paths' names: under the run directory relative to its parent.
    assert "base_model: my-base\n" in body and "path: qa.jsonl\n" in body
    assert "output_dir: qa/output\n" in body and "axo-helper validate qa/axolotl.yml" in body


def test_a_card_without_a_trainer_card_still_shows_the_config(tmp_path: Path) -> None:
    run = axolotl_run(tmp_path, origin=None)
    (run / "output" / "README.md").unlink()
    front, body = card_of(run, "adapter")
    assert front["tags"] == ["axolotl", "axo-helper", "lora"]
    assert "Built with Axolotl" not in body
    assert "<details><summary>See axolotl config</summary>" in body
    assert "dataset_prepared_path: qa/prepared\n" in body and str(tmp_path) not in body


def test_the_license_comes_from_the_base_models_card(tmp_path: Path) -> None:
    run = axolotl_run(tmp_path, origin=None)
    (run / "output" / "README.md").unlink()
    base = tmp_path / "models" / "my-base"
    (base / "README.md").write_text("---\nlicense: other\nlicense_name: my-licence\n---\n# b\n")
    front, _ = card_of(run, "merged")
    assert front["license"] == "other" and front["license_name"] == "my-licence"


def test_base_hub_id(tmp_path: Path) -> None:
    snapshot = tmp_path / "hub" / "models--org--name" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    assert base_hub_id("org/name") == "org/name"
    assert base_hub_id(str(snapshot)) == "org/name"
    assert base_hub_id(str(tmp_path)) is None
    assert base_hub_id("./org/name") is None


def test_a_copied_run_names_no_path_of_the_old_directory(tmp_path: Path) -> None:
    """axolotl.yml and the Trainer's card still name the directory the run was made in."""
    old = axolotl_run(tmp_path, origin=None)
    run = tmp_path / "elsewhere" / "qa-copy"
    shutil.copytree(old, run)
    card = model_card(load_run(run), "adapter")
    assert str(tmp_path) not in card and str(tmp_path).lstrip("/") not in card
    assert "axo-helper validate axolotl.yml" in card  # the old path's file name
