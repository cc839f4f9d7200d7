"""The hub: config.json from the huggingface_hub cache, offline mode, hub errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from model_fixtures import LLAMA_31_8B, http_response, write

from axo_helper.errors import ModelError
from axo_helper.model import inspect


def _fake_hub_cache(root: Path, repo: str, config: dict[str, Any]) -> None:
    """The layout huggingface_hub writes: models--org--name/{refs/main,snapshots/<sha>/}."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    write(repo_dir / "refs", "main", sha)
    write(repo_dir / "snapshots" / sha, "config.json", config)


def test_hub_config_resolves_from_the_cache_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import hf_hub_download

    cache = tmp_path / "hub"
    repo = "acme/Tiny-Llama-Test"
    _fake_hub_cache(cache, repo, {**LLAMA_31_8B, "num_hidden_layers": 2})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the real huggingface_hub resolves it from the cache without a network
    found = hf_hub_download(repo, "config.json", cache_dir=str(cache), local_files_only=True)
    assert Path(found).parent.parent.parent.name == "models--acme--Tiny-Llama-Test"

    s = inspect(repo)
    assert s.source == "hub" and s.hf_id == repo and s.name == repo
    assert s.num_layers == 2
    assert s.chat_template is False  # no tokenizer in the cache


def test_hub_cache_tokenizer_gives_chat_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    repo = "acme/chatty"
    _fake_hub_cache(cache, repo, LLAMA_31_8B)
    snapshot = next((cache / "models--acme--chatty" / "snapshots").iterdir())
    write(snapshot, "tokenizer_config.json", {"chat_template": "{{ messages }}"})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert inspect(repo).chat_template is True


def test_offline_unknown_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError) as err:
        inspect("acme/llama-3.1-8b-finetune-xyz")
    msg = err.value.message
    assert msg.startswith("unknown model 'acme/llama-3.1-8b-finetune-xyz': not a local directory")
    assert "offline" in msg
    hint = err.value.hint or ""
    assert "--model ./my-model" in hint
    assert "meta-llama/Llama-3.1-8B" in hint  # the closest preset


def test_offline_flag_overrides_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError, match="offline"):
        inspect("acme/nothing-here", offline=True)


def test_gated_repo_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    response = http_response(401, "https://huggingface.co/acme/gated")

    def gated(*args: Any, **kwargs: Any) -> str:
        raise GatedRepoError("401", response=response)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(ModelError) as err:
        inspect("acme/gated", offline=False)
    assert "gated" in err.value.message
    assert err.value.hint and "HF_TOKEN" in err.value.hint


def test_network_failure_reads_as_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def down(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", down)
    with pytest.raises(ModelError, match=r"unknown model 'acme/x'.*unreachable"):
        inspect("acme/x", offline=False)


def test_invalid_repo_id_is_unknown() -> None:
    with pytest.raises(ModelError, match="unknown model 'not a model!!'"):
        inspect("not a model!!")
