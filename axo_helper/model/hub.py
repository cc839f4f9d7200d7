"""The Hugging Face hub: only a repository's config.json, through huggingface_hub's
cache (HF_HUB_OFFLINE honoured), at a pinned revision when one is given (--revision).
huggingface_hub is imported when called, not before."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from axo_helper.errors import HubUnavailableError, ModelError
from axo_helper.model.facts import from_config
from axo_helper.model.local import has_chat_template, read_config
from axo_helper.model.presets import closest_presets
from axo_helper.specs import ModelSpec


def is_offline(offline: bool | None) -> bool:
    """The caller's choice, else HF_HUB_OFFLINE read now (not at import)."""
    if offline is not None:
        return offline
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return value in ("1", "true", "yes", "on")


def _hub_cache_dir() -> str | None:
    # huggingface_hub reads these once at import; read them per call so a changed
    # environment (tests, long-lived processes) is honoured.
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _unavailable(name: str, why: str) -> HubUnavailableError:
    plain = _unknown(name, why)
    err = HubUnavailableError(plain.message, plain.hint)
    err.reason = why
    return err


def _unknown(name: str, why: str) -> ModelError:
    return ModelError(
        f"unknown model '{name}': not a local directory, not a shipped preset, and {why}",
        hint="pass a local directory containing config.json (e.g. --model ./my-model) "
        f"or one of: {', '.join(closest_presets(name))}",
    )


def _no_such_revision(name: str, revision: str | None) -> ModelError:
    if revision is None:
        return _unknown(name, "the hub has no main revision for it")
    return ModelError(
        f"hub repository '{name}' has no revision '{revision}'",
        hint="pass a branch, a tag or a commit hash listed at "
        f"https://huggingface.co/{name}/commits/main, or drop --revision for main",
    )


def from_hub(name: str, offline: bool, *, revision: str | None = None) -> ModelSpec:
    """The hub repository's config.json (cached) at `revision` (None: main); every hub
    failure is a ModelError. The spec carries the revision for the rendered config."""
    # Imported here: huggingface_hub costs start-up time the preset path does not need.
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache_dir = _hub_cache_dir()
    try:
        path = hf_hub_download(
            repo_id=name,
            filename="config.json",
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=offline,
        )
    except HFValidationError:
        raise _unknown(name, "it is not a valid Hugging Face repo id") from None
    except GatedRepoError:
        raise ModelError(
            f"model '{name}' is gated on the Hugging Face hub",
            hint=f"accept its licence at https://huggingface.co/{name} and set HF_TOKEN "
            "(or run `hf auth login`), or pass a local directory containing config.json",
        ) from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        why = "the hub is offline (HF_HUB_OFFLINE)" if offline else "the hub is unreachable"
        what = f"its config.json at revision {revision}" if revision else "its config.json"
        raise _unavailable(name, f"{why} and {what} is not cached") from None
    except RepositoryNotFoundError:
        err = _unknown(name, "the hub has no such repository")
        err.hint = (err.hint or "") + "; for a private repository set HF_TOKEN"
        raise err from None
    except RevisionNotFoundError:
        raise _no_such_revision(name, revision) from None
    except EntryNotFoundError:
        raise ModelError(
            f"hub repository '{name}' has no config.json",
            hint="it may hold GGUF or adapter files only; pass the base Hugging Face "
            "checkpoint it was made from",
        ) from None
    except Exception as exc:  # network stack errors vary (httpx, OSError, timeouts)
        raise _unavailable(name, f"the hub is unreachable ({type(exc).__name__})") from None

    config = read_config(Path(path), f"config.json of {name}")
    # The tokenizer is not downloaded; if an earlier run cached it, use what it says.
    chat = False
    for filename in ("chat_template.jinja", "tokenizer_config.json"):
        cached = try_to_load_from_cache(name, filename, cache_dir=cache_dir, revision=revision)
        if isinstance(cached, str):
            chat = chat or has_chat_template(Path(cached).parent)
    spec = from_config(config, name=name, source="hub", hf_id=name, chat_template=chat)
    return replace(spec, revision=revision)
