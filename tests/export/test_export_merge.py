"""export's merged/ (and adapter/) against PEFT: LoRA, QLoRA's NF4 round trip, bf16
shards, full fine-tunes; the files each variant holds and the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.axolotl

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("axolotl")

from fake_runs import (  # noqa: E402  (after the importorskips)
    TRAINED_TEMPLATE_MARK,
    make_run,
    merged_logits,
    reference_logits,
)

from axo_helper.export.exporter import export_run  # noqa: E402
from axo_helper.export.manifest import verify_export  # noqa: E402
from axo_helper.versions import DISTRIBUTIONS  # noqa: E402


@pytest.fixture(scope="module")
def tiny_base_192(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with intermediate_size 192: every in_features a multiple of 64.

    bitsandbytes 0.50's CPU 4-bit dequantize kernel lays blocks out differently from
    its own quantizer when in_features is not a multiple of the block size (the default
    tiny model's down_proj has 176), so a CPU 4-bit reference would be wrong there.
    Real models' widths are multiples of 64.
    """
    from axo_helper.tinymodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny192") / "model", intermediate_size=192)


def test_lora_export_merges_within_float_tolerance(tiny_model: Path, tmp_path: Path) -> None:
    run = make_run(tmp_path, tiny_model)
    result = export_run(run)

    assert result.built == ("adapter", "merged") and result.verified
    ref = reference_logits(tiny_model, run / "output")
    got = merged_logits(run / "merged")
    diff = (ref - got).abs().max().item()
    assert diff < 1e-5, f"LoRA merge differs from PEFT by {diff}"
    # ...and the adapter changes the model: the test would catch a no-op merge.
    assert (ref - merged_logits(tiny_model)).abs().max().item() > 1e-2

    for name in ("adapter_model.safetensors", "adapter_config.json", "README.md"):
        assert (run / "adapter" / name).is_file()
    for folder in (run / "adapter", run / "merged"):  # the trained tokenizer, not the base's
        assert TRAINED_TEMPLATE_MARK in (folder / "chat_template.jinja").read_text()
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        assert (run / "merged" / name).is_file()

    card = (run / "adapter" / "README.md").read_text()
    assert "PeftModelForCausalLM" in card and "--enable-lora" in card and "300.0 tokens/s" in card
    mf = (run / "Modelfile").read_text()
    assert "FROM ./merged" in mf and 'PARAMETER stop "<|im_end|>"' in mf and "<|im_start|>" in mf

    manifest = json.loads((run / "manifest.json").read_text())
    assert set(manifest["versions"]) >= {"axo-helper", "axolotl", "torch", "transformers", "peft"}
    # The one list of the stack (axo_helper.versions), the same as plan.json's.
    assert list(manifest["versions"]) == ["axo-helper", *DISTRIBUTIONS]
    assert manifest["plan"]["memory"]["total_gib"] == 1.5
    assert manifest["metrics"]["tokens_per_s"] == 300.0
    paths = {f["path"] for f in manifest["files"]}
    assert {"adapter/adapter_model.safetensors", "merged/model.safetensors", "Modelfile"} <= paths
    assert verify_export(run) == []


def test_qlora_merge_matches_the_4bit_model(tiny_base_192: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    run = make_run(tmp_path, tiny_base_192, method="qlora")
    export_run(run, variants=["merged"])
    try:
        ref = reference_logits(tiny_base_192, run / "output", four_bit=True)
    except Exception as exc:  # pragma: no cover - a bitsandbytes without a CPU backend
        pytest.skip(f"bitsandbytes cannot run 4-bit on this CPU: {exc}")
    got = merged_logits(run / "merged")
    diff = (ref - got).abs().max().item()
    # The NF4 round trip is replayed exactly, so only float summation order differs.
    assert diff < 1e-4, f"QLoRA merge differs from the 4-bit model + adapter by {diff}"
    # The round trip touched the quantized linears but not the embeddings / lm_head.
    from safetensors.torch import load_file

    base = load_file(str(tiny_base_192 / "model.safetensors"))
    merged = load_file(str(run / "merged" / "model.safetensors"))
    assert torch.equal(base["model.embed_tokens.weight"], merged["model.embed_tokens.weight"])
    assert torch.equal(base["lm_head.weight"], merged["lm_head.weight"])
    layer_norm = "model.layers.0.input_layernorm.weight"
    assert torch.equal(base[layer_norm], merged[layer_norm])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["merge"]["nf4_round_trip"] == "quantized linears only"


def test_bf16_run_exports_bf16_shards(tiny_model: Path, tmp_path: Path) -> None:
    run = make_run(tmp_path, tiny_model, bf16=True)
    export_run(run, variants=["merged"], max_shard_size="300KB")

    shards = sorted((run / "merged").glob("model-*.safetensors"))
    assert len(shards) >= 2 and all(s.stat().st_size <= 300_000 * 1.05 for s in shards)
    index = json.loads((run / "merged" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {s.name for s in shards}
    from safetensors import safe_open

    with safe_open(str(shards[0]), framework="pt") as st:
        assert {st.get_slice(k).get_dtype() for k in st.keys()} == {"BF16"}  # noqa: SIM118
    assert json.loads((run / "merged" / "config.json").read_text())["dtype"] == "bfloat16"
    ref = reference_logits(tiny_model, run / "output")
    # bf16 keeps 8 bits of mantissa: ~0.4% of each weight.
    assert (ref - merged_logits(run / "merged")).abs().max().item() < 0.05
    assert not (run / "adapter").exists()
    assert verify_export(run) == []


def test_full_finetune_exports_trained_weights(tiny_model: Path, tmp_path: Path) -> None:
    run = make_run(tmp_path, tiny_model, method="full")
    result = export_run(run)  # "adapter" is skipped: a full fine-tune has none

    assert result.built == ("merged",) and not (run / "adapter").exists()
    from safetensors.torch import load_file

    trained = load_file(str(run / "output" / "model.safetensors"))
    merged = load_file(str(run / "merged" / "model.safetensors"))
    assert trained.keys() == merged.keys()
    assert all(torch.equal(trained[k], merged[k]) for k in trained)
    assert TRAINED_TEMPLATE_MARK in (run / "merged" / "chat_template.jinja").read_text()
    assert "ADAPTER" not in (run / "Modelfile").read_text()
