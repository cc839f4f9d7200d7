"""Config builders and file helpers for the model-inspection tests (tests/model/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axo_helper.resources import iter_preset_files, load_preset

LLAMA_31_8B: dict[str, Any] = dict(load_preset("models/llama-3.1-8b.yaml")["config"])


def preset_files() -> list[str]:
    return iter_preset_files("models")


def write(folder: Path, name: str, data: Any) -> Path:
    """`data` (text, or JSON for anything else) as folder/name, folders created."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def http_response(status: int, url: str) -> Any:
    """A response of the HTTP library huggingface_hub is built on: httpx from 1.0,
    requests before (the floor check runs 0.x)."""
    import huggingface_hub
    import pytest

    if int(huggingface_hub.__version__.split(".")[0]) >= 1:
        httpx = pytest.importorskip("httpx")
        return httpx.Response(status, request=httpx.Request("GET", url))
    requests = pytest.importorskip("requests")
    response = requests.Response()
    response.status_code = status
    response.url = url
    response.request = requests.Request("GET", url).prepare()
    return response
