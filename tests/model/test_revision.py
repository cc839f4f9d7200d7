"""--revision: the hub's config.json read at a pinned revision, carried to the rendered
config (revision_of_model) and to plan.json; refused for local directories.

The hub is replaced at the function huggingface_hub exposes (hf_hub_download), or is the
real huggingface_hub reading a fake cache offline: no network.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from model_fixtures import LLAMA_31_8B, http_response, write

from axo_helper.errors import ModelError, UsageError
from axo_helper.model import inspect

ROOT = Path(__file__).resolve().parents[2]
QA = ROOT / "axo_helper" / "demo_data" / "qa.jsonl"
REPO = "acme/Tiny-Llama-Rev"


class FakeHub:
    """hf_hub_download and try_to_load_from_cache that record their keyword arguments;
    config.json has `layers[revision]` blocks (main: 2)."""

    def __init__(self, root: Path, layers: dict[str | None, int]) -> None:
        self.root = root
        self.layers = layers
        self.downloads: list[dict[str, Any]] = []
        self.lookups: list[dict[str, Any]] = []

    def hf_hub_download(self, **kwargs: Any) -> str:
        self.downloads.append(kwargs)
        revision = kwargs.get("revision")
        folder = self.root / (revision or "main")
        config = {**LLAMA_31_8B, "num_hidden_layers": self.layers[revision]}
        return str(write(folder, kwargs["filename"], config))

    def try_to_load_from_cache(self, repo_id: str, filename: str, **kwargs: Any) -> None:
        self.lookups.append({"repo_id": repo_id, "filename": filename, **kwargs})


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    import huggingface_hub

    fake = FakeHub(tmp_path / "downloads", {None: 2, "v2": 6})
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", fake.try_to_load_from_cache)
    return fake


def test_the_revision_goes_to_the_download_and_into_the_spec(hub: FakeHub) -> None:
    spec = inspect(REPO, revision="v2")
    assert [d["revision"] for d in hub.downloads] == ["v2"]
    assert hub.downloads[0]["repo_id"] == REPO
    assert hub.downloads[0]["filename"] == "config.json"
    assert {lk["revision"] for lk in hub.lookups} == {"v2"}  # the cached tokenizer's too
    assert spec.source == "hub" and spec.revision == "v2"
    assert spec.num_layers == 6  # that revision's config.json, not main's


def test_without_a_revision_main_is_read(hub: FakeHub) -> None:
    spec = inspect(REPO)
    assert hub.downloads[0]["revision"] is None
    assert spec.revision is None and spec.num_layers == 2


def test_a_revision_the_hub_lacks_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import RevisionNotFoundError

    url = f"https://huggingface.co/{REPO}/resolve/nope/config.json"
    response = http_response(404, url)

    def missing(**kwargs: Any) -> str:
        raise RevisionNotFoundError("404", response=response)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", missing)
    with pytest.raises(ModelError) as err:
        inspect(REPO, offline=False, revision="nope")
    assert err.value.message == f"hub repository '{REPO}' has no revision 'nope'"
    assert err.value.hint and "drop --revision" in err.value.hint


def test_offline_the_real_hub_cache_is_read_at_the_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """huggingface_hub's own cache layout: refs/<branch> -> snapshots/<sha>/."""
    cache = tmp_path / "hub"
    repo_dir = cache / ("models--" + REPO.replace("/", "--"))
    for ref, sha, layers in (("main", "a" * 40, 2), ("v2", "b" * 40, 6)):
        write(repo_dir / "refs", ref, sha)
        write(
            repo_dir / "snapshots" / sha,
            "config.json",
            {**LLAMA_31_8B, "num_hidden_layers": layers},
        )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert inspect(REPO).num_layers == 2
    pinned = inspect(REPO, revision="v2")
    assert pinned.num_layers == 6 and pinned.revision == "v2"
    by_sha = inspect(REPO, revision="b" * 40)
    assert by_sha.num_layers == 6
    with pytest.raises(ModelError, match="at revision v3 is not cached"):
        inspect(REPO, revision="v3")


def test_a_preset_keeps_its_architecture_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def no_call(**kwargs: Any) -> str:
        raise AssertionError("a preset with a revision must not ask the hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_call)
    plain = inspect("meta-llama/Llama-3.1-8B")
    spec = inspect("meta-llama/Llama-3.1-8B", revision="abc123")
    assert spec.revision == "abc123" and spec.source == "preset"
    assert spec.num_layers == plain.num_layers
    assert spec.notes[0] == plain.notes[0]  # which preset, first as always
    assert "revision abc123" in spec.notes[-1] and "revision_of_model" in spec.notes[-1]


def test_a_local_directory_refuses_a_revision(tmp_path: Path) -> None:
    write(tmp_path / "m", "config.json", LLAMA_31_8B)
    assert inspect(str(tmp_path / "m")).revision is None
    for target in (tmp_path / "m", tmp_path / "m" / "config.json"):
        with pytest.raises(UsageError, match="is a local directory") as err:
            inspect(str(target), revision="v1")
        assert err.value.exit_code == 2
        assert err.value.hint and "drop --revision" in err.value.hint


def test_an_empty_revision_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--revision is empty"):
        inspect("meta-llama/Llama-3.1-8B", revision="  ")


def _render(cli: Callable[..., Result], out: Path, *extra: str) -> Result:
    return cli(
        "render", "--gpu", "rtx4090", "--model", REPO, "--data", str(QA), "-o", str(out), *extra
    )


def test_render_pins_revision_of_model_and_the_config_validates(
    hub: FakeHub, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    out = tmp_path / "train.yml"
    result = _render(cli, out, "--revision", "v2")
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(out.read_text())
    assert cfg["base_model"] == REPO
    assert cfg["revision_of_model"] == "v2"
    assert list(cfg).index("revision_of_model") == list(cfg).index("base_model") + 1
    checked = cli("validate", str(out), "--no-axolotl", "--gpu", "none")
    assert checked.exit_code == 0, checked.output  # Axolotl's schema knows the key


def test_render_without_a_revision_writes_no_key(
    hub: FakeHub, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    out = tmp_path / "train.yml"
    assert _render(cli, out).exit_code == 0
    assert "revision_of_model" not in yaml.safe_load(out.read_text())


def test_plan_json_and_the_run_record_carry_the_revision(
    hub: FakeHub, cli: Callable[..., Result]
) -> None:
    from axo_helper.core import PlanRequest, make_plan
    from axo_helper.run.record import plan_entries

    result = cli("plan", "--gpu", "rtx4090", "--model", REPO, "--revision", "v2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["revision"] == "v2"
    text = cli("plan", "--gpu", "rtx4090", "--model", REPO, "--revision", "v2")
    assert f"{REPO} at revision v2" in text.stdout
    unpinned = cli("plan", "--gpu", "rtx4090", "--model", REPO, "--json")
    assert json.loads(unpinned.stdout)["revision"] is None
    plan = make_plan(PlanRequest(gpu="rtx4090", model=REPO, data=str(QA), revision="v2"))
    assert plan_entries(plan)["plan"]["revision"] == "v2"  # what run writes to plan.json


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B", "--revision", "a b"),
        ("plan", "--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B", "--revision", ""),
        ("run", "--config", "train.yml", "--revision", "v1"),
    ],
)
def test_cli_usage_errors(args: tuple[str, ...], cli: Callable[..., Result]) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "--revision" in result.output
    assert "Traceback" not in result.output


def test_validate_takes_a_revision_with_model_only(
    hub: FakeHub, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    cfg = tmp_path / "train.yml"
    cfg.write_text(f"base_model: {REPO}\nadapter: lora\n")
    alone = cli("validate", str(cfg), "--no-axolotl", "--gpu", "none", "--revision", "v2")
    assert alone.exit_code == 2 and "pass --model too" in alone.output
    cli("validate", str(cfg), "--no-axolotl", "--gpu", "none", "--model", REPO, "--revision", "v2")
    assert [d["revision"] for d in hub.downloads] == ["v2"]


@pytest.mark.slow
@pytest.mark.axolotl
def test_axolotl_accepts_the_pinned_config(
    hub: FakeHub, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    pytest.importorskip("axolotl")
    out = tmp_path / "train.yml"
    assert _render(cli, out, "--revision", "v2").exit_code == 0
    checked = cli("validate", str(out), "--gpu", "none", "--json")
    report = json.loads(checked.stdout)
    assert checked.exit_code == 0 and report["valid"], checked.output
    assert "checked with Axolotl" in str(report["axolotl"])


def test_validate_reads_base_model_at_the_configs_revision_of_model(hub: FakeHub) -> None:
    """validate's estimate uses the architecture Axolotl will load: base_model at the
    config's own revision_of_model."""
    from axo_helper.validate.memory import choose_model

    spec, _ = choose_model({"base_model": REPO, "revision_of_model": "v2"}, None)
    assert spec.num_layers == 6 and spec.revision == "v2"
    assert hub.downloads[-1]["revision"] == "v2"
    spec, _ = choose_model({"base_model": REPO}, None)
    assert spec.num_layers == 2 and hub.downloads[-1].get("revision") is None
