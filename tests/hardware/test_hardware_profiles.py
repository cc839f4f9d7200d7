"""The shipped GPU profiles (presets/gpus.yaml) and what naming one imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from axo_helper import hardware
from axo_helper.resources import load_preset

REPO = Path(__file__).resolve().parents[2]


REQUIRED = [
    "rtx3060-12gb", "rtx3070", "rtx3080-10gb", "rtx3080-12gb", "rtx3090", "rtx3090-ti",
    "rtx4060-ti-16gb", "rtx4070-ti-super", "rtx4080", "rtx4090", "rtx5080", "rtx5090",
    "rtx-a4000", "rtx-a4500", "rtx-a5000", "rtx-a6000", "rtx4000-ada", "rtx5000-ada",
    "rtx6000-ada", "t4", "v100-16gb", "v100-32gb", "a10", "a10g", "l4", "l40", "l40s",
    "a100-40gb", "a100-80gb", "h100-pcie", "h100-sxm", "h100-nvl", "h200", "b200",
    "mi210", "mi250", "mi300x",
]  # fmt: skip


def test_every_profile_is_well_formed() -> None:
    raw = load_preset("gpus.yaml")["profiles"]
    rows = hardware.list_profiles()
    assert len(rows) == len(raw) >= 30
    keys = [r["key"] for r in rows]
    assert sorted(set(keys)) == sorted(keys)
    assert set(REQUIRED) <= set(keys)
    allowed = {"key", "name", "aliases", "memory_gib", "compute_capability", "bf16",
               "flash_attention_2", "tflops_bf16", "vendor", "arch", "notes",
               "link_gbps"}  # fmt: skip
    for entry in raw:
        assert set(entry) <= allowed, f"{entry['key']}: unknown fields {set(entry) - allowed}"
    for r in rows:
        where = r["key"]
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", where)
        assert isinstance(r["name"], str) and r["name"]
        assert all(isinstance(a, str) and a for a in r["aliases"]), where
        assert isinstance(r["memory_gib"], float) and 4 <= r["memory_gib"] <= 300, where
        assert isinstance(r["tflops_bf16"], float) and 10 <= r["tflops_bf16"] <= 5000, where
        assert isinstance(r["bf16"], bool) and isinstance(r["flash_attention_2"], bool)
        assert r["vendor"] in ("nvidia", "amd")
        if r["vendor"] == "nvidia":
            cc = r["compute_capability"]
            assert isinstance(cc, str) and re.fullmatch(r"\d{1,2}\.\d", cc), where
            modern = tuple(int(x) for x in cc.split(".")) >= (8, 0)
            # bf16 and FlashAttention-2 both start at Ampere (cc 8.0).
            assert r["bf16"] == modern and r["flash_attention_2"] == modern, where
        else:
            assert r["compute_capability"] is None and r["arch"], where
            assert r["bf16"] and r["flash_attention_2"], where


def test_profile_memory_is_the_driver_figure_not_the_marketing_one() -> None:
    rows = {r["key"]: r["memory_gib"] for r in hardware.list_profiles()}
    assert rows["rtx4090"] == 23.99
    assert rows["h100-sxm"] == 79.65
    # the usable figure is never above what the card is sold as
    for key, sold in {"rtx4090": 24, "a100-80gb": 80, "h100-sxm": 80, "l4": 24, "t4": 16}.items():
        assert rows[key] <= sold


@pytest.mark.parametrize("key", REQUIRED)
def test_every_profile_resolves_by_key_and_by_name(key: str) -> None:
    by_key = hardware.resolve(key)
    assert by_key.gpus[0].profile == key and by_key.warnings == ()
    name = by_key.gpus[0].name
    assert hardware.resolve(name).gpus[0].profile == key


def test_docs_list_every_profile() -> None:
    text = (REPO / "docs" / "gpus.md").read_text(encoding="utf-8")
    missing = [r["key"] for r in hardware.list_profiles() if f"`{r['key']}`" not in text]
    assert missing == []


def test_naming_a_gpu_imports_neither_nvml_nor_torch() -> None:
    code = (
        "import sys; from axo_helper import hardware; hardware.resolve('2xrtx4090'); "
        "hardware.resolve('24GB'); "
        "print(sorted(m for m in ('pynvml', 'torch', 'transformers', 'axolotl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
