"""`export --gguf`: the tiny merged model converted by llama.cpp's real converter and read
back with gguf's GGUFReader; the manifest and `export --verify` cover the file; the
refusals (no converter, adapter only, a quantization without llama-quantize) and a
failing converter say what is wrong and what to do."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from gguf_models import cached_llama_cpp, fake_llama_cpp, llama2_style_base

from axo_helper.errors import EXIT_FAILURE, EXIT_USAGE
from axo_helper.export.gguf import (
    GGUFConversionError,
    GGUFUnsupportedModelError,
    convert_merged,
    steps_for,
)
from axo_helper.export.llama_cpp import ENV_VAR, LLAMA_CPP_PYTHON, find_llama_cpp
from axo_helper.rundir import RunDir

Cli = Callable[..., Result]
Q8 = "gguf/model-q8_0.gguf"
# A converter that writes a (header-only) GGUF where --outfile says, like the real one.
WRITES_GGUF = (
    "import sys\nout = sys.argv[sys.argv.index('--outfile') + 1]\n"
    "open(out, 'wb').write(b'GGUF' + b'\\0' * 20)\n"
)


@pytest.fixture(autouse=True)
def _no_llama_cpp_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


# --------------------------------------------------------------------------- refusals (fast)
def test_no_converter_says_how_to_get_one(cli: Cli, tmp_path: Path) -> None:
    res = cli("export", str(tmp_path), "--gguf", "q8_0")
    assert res.exit_code == EXIT_FAILURE, res.output
    assert "convert_hf_to_gguf.py" in res.stderr and ENV_VAR in res.stderr
    assert f"pip download --no-binary :all: --no-deps llama-cpp-python=={LLAMA_CPP_PYTHON}" in (
        res.stderr
    )
    assert "git clone https://github.com/ggml-org/llama.cpp" in res.stderr
    assert "Traceback" not in res.output

    (tmp_path / "empty").mkdir()
    res = cli("export", str(tmp_path), "--gguf", "q8_0", "--llama-cpp", str(tmp_path / "empty"))
    assert res.exit_code == EXIT_FAILURE and "has no convert_hf_to_gguf.py" in res.stderr
    res = cli("export", str(tmp_path), "--gguf", "q8_0", "--llama-cpp", str(tmp_path / "nope"))
    assert res.exit_code == EXIT_USAGE and "not a directory" in res.stderr


def test_an_adapter_only_export_has_nothing_to_convert(cli: Cli, tmp_path: Path) -> None:
    tools = fake_llama_cpp(tmp_path)
    res = cli(
        "export", str(tmp_path), "--variant", "adapter", "--gguf", "q8_0", "--llama-cpp", str(tools)
    )
    assert res.exit_code == EXIT_USAGE, res.output
    assert "converted from merged/" in res.stderr and "only the adapter" in res.stderr
    assert "--variant merged" in res.stderr


def test_a_quantization_the_converter_cannot_write(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no llama-quantize on PATH either
    monkeypatch.setenv(ENV_VAR, str(fake_llama_cpp(tmp_path)))
    res = cli("export", str(tmp_path), "--gguf", "Q4_K_M")
    assert res.exit_code == EXIT_FAILURE, res.output
    assert "q4_k_m needs llama.cpp's llama-quantize" in res.stderr
    assert "--target llama-quantize" in res.stderr and "q8_0" in res.stderr
    unknown = cli("export", str(tmp_path), "--gguf", "q9_x")
    assert unknown.exit_code == EXIT_USAGE and "unknown GGUF quantization 'q9_x'" in unknown.stderr


# --------------------------------------------------------------------------- conversion steps (fast)
def _merged(tmp_path: Path, arch: str = "LlamaForCausalLM", dtype: str = "float32") -> Path:
    merged = tmp_path / "run" / "merged"
    merged.mkdir(parents=True)
    (merged / "config.json").write_text(json.dumps({"architectures": [arch], "dtype": dtype}))
    return merged


def test_small_quantizations_convert_to_16_bits_then_quantize(tmp_path: Path) -> None:
    root = fake_llama_cpp(tmp_path, quantize="")
    tools = find_llama_cpp(root)
    assert tools.quantize == root.resolve() / "build" / "bin" / "llama-quantize"
    out = tmp_path / "model-q4_k_m.gguf"
    steps = steps_for(tools, tmp_path / "merged", "q4_k_m", out, name="run", sixteen_bit="bf16")
    wide = f"{out}.bf16"
    assert [s.argv for s in steps] == [
        (
            sys.executable,
            str(root.resolve() / "convert_hf_to_gguf.py"),
            str(tmp_path / "merged"),
            "--model-name",
            "run",
            "--outtype",
            "bf16",
            "--outfile",
            wide,
        ),
        (str(tools.quantize), wide, str(out), "Q4_K_M"),
    ]
    # The converter imports the gguf-py it was released with, whatever is installed.
    pythonpath = steps[0].env["PYTHONPATH"].split(os.pathsep)
    assert pythonpath[0] == str(root.resolve() / "gguf-py")
    (direct,) = steps_for(tools, tmp_path / "merged", "q8_0", out, name="run")
    assert direct.argv[-4:] == ("--outtype", "q8_0", "--outfile", str(out))


def test_convert_and_quantize_publish_one_file(tmp_path: Path) -> None:
    copy = "import shutil, sys\nshutil.copy(sys.argv[1], sys.argv[2])\n"
    tools = find_llama_cpp(fake_llama_cpp(tmp_path, WRITES_GGUF, quantize=copy))
    merged = _merged(tmp_path, dtype="bfloat16")
    dest = merged.parent / "gguf" / "model-q4_k_m.gguf"
    assert convert_merged(tools, merged, "q4_k_m", dest, name="run") == dest
    assert dest.read_bytes().startswith(b"GGUF")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model-q4_k_m.gguf"]  # no temps


def test_a_failing_converter_shows_its_last_lines(tmp_path: Path) -> None:
    script = "import sys\nfor i in range(40): print('line', i)\nsys.exit(3)\n"
    tools = find_llama_cpp(fake_llama_cpp(tmp_path, script))
    merged = _merged(tmp_path)
    dest = merged.parent / "gguf" / "model-q8_0.gguf"
    with pytest.raises(GGUFConversionError) as err:
        convert_merged(tools, merged, "q8_0", dest, name="run")
    message = err.value.message
    assert "convert_hf_to_gguf.py failed (exit 3)" in message
    assert "line 39" in message and "line 25" in message and "line 24" not in message
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_an_unknown_tokenizer_or_architecture_is_named(tmp_path: Path) -> None:
    script = (
        "import sys\nprint('WARNING:hf-to-gguf:** WARNING: The BPE pre-tokenizer was not"
        " recognized!')\nprint('WARNING:hf-to-gguf:** chkhsh:  d0914')\nprint('  File x')\n"
        "print('NotImplementedError: BPE pre-tokenizer was not recognized"
        " - update get_vocab_base_pre()')\nsys.exit(1)\n"
        '# @ModelBase.register("LlamaForCausalLM", "Qwen2ForCausalLM")\n'
    )
    tools = find_llama_cpp(fake_llama_cpp(tmp_path, script))
    dest = tmp_path / "run" / "gguf" / "model-q8_0.gguf"
    with pytest.raises(GGUFUnsupportedModelError, match="recognise the model's tokenizer") as err:
        convert_merged(tools, _merged(tmp_path), "q8_0", dest, name="run")
    assert "chkhsh:  d0914" in str(err.value) and "File x" not in str(err.value)
    shutil.rmtree(tmp_path / "run")
    # An architecture the converter registers no class for is refused before it runs.
    with pytest.raises(GGUFUnsupportedModelError, match="does not support the architecture Foo"):
        convert_merged(tools, _merged(tmp_path, arch="FooForCausalLM"), "q8_0", dest, name="run")


# --------------------------------------------------------------------------- the real converter (slow)
def _gguf_reader() -> Any:
    try:
        import gguf
    except ImportError:
        why = 'the gguf package is not installed: pip install -e ".[dev]"'
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return gguf


@pytest.fixture(scope="module")
def exported(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA run exported with --gguf q8_0 by the real converter (once for the module)."""
    pytest.importorskip("peft")
    pytest.importorskip("axolotl")
    from click.testing import CliRunner
    from fake_runs import make_run

    from axo_helper.cli import cli as group

    llama_cpp = cached_llama_cpp()
    root = tmp_path_factory.mktemp("gguf")
    run = make_run(root, llama2_style_base(root, tiny_model))
    # Module-scoped, so outside conftest's per-test isolation: the same settings here.
    env = {ENV_VAR: str(llama_cpp), "HF_HUB_OFFLINE": "1", "AXO_HELPER_HOME": str(root / "home")}
    res = CliRunner().invoke(group, ["export", str(run), "--gguf", "q8_0"], env=env)
    assert res.exit_code == 0, res.output
    assert f"{run / Q8}" in res.stdout
    return run


@pytest.mark.slow
@pytest.mark.axolotl
def test_the_gguf_file_holds_the_merged_model(exported: Path) -> None:
    gguf = _gguf_reader()
    import numpy as np
    from safetensors.numpy import load_file

    reader = gguf.GGUFReader(str(exported / Q8))
    merged = load_file(str(exported / "merged" / "model.safetensors"))
    cfg = json.loads((exported / "merged" / "config.json").read_text())
    fields = {
        k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.t")
    }

    assert fields["general.architecture"] == "llama" and fields["general.name"] == exported.name
    assert fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q8_0
    assert fields["llama.context_length"] == cfg["max_position_embeddings"]
    assert fields["llama.block_count"] == cfg["num_hidden_layers"]
    assert fields["llama.embedding_length"] == cfg["hidden_size"]
    assert fields["llama.attention.head_count_kv"] == cfg["num_key_value_heads"]

    # Every merged tensor under its llama.cpp name, same shape (ggml lists dims reversed).
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg["num_hidden_layers"])
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == len(merged)
    for hf_name, weights in merged.items():
        t = tensors[names.get_name(hf_name, try_suffixes=(".weight",))]
        assert tuple(int(d) for d in reversed(t.shape)) == weights.shape, hf_name
    embd = tensors["token_embd.weight"]
    assert embd.tensor_type == gguf.GGMLQuantizationType.Q8_0
    values = gguf.quants.dequantize(embd.data, embd.tensor_type)
    scale = np.abs(merged["model.embed_tokens.weight"]).max()
    assert np.abs(values - merged["model.embed_tokens.weight"]).max() < scale / 100  # 8 bits

    # The trained tokenizer: its vocabulary, special ids and chat template (with its mark).
    tokenizer = json.loads((exported / "merged" / "tokenizer.json").read_text())
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert len(tokens) == cfg["vocab_size"]
    assert all(tokens[i] == tok for tok, i in tokenizer["model"]["vocab"].items())
    assert fields["tokenizer.ggml.eos_token_id"] == tokens.index("<|im_end|>")
    template = (exported / "merged" / "chat_template.jinja").read_text()
    assert fields["tokenizer.chat_template"] == template and "{# trained #}" in template

    # The Modelfile runs the GGUF: FROM names it, no ADAPTER beside it.
    import ollama_modelfile

    commands = ollama_modelfile.parse((exported / "Modelfile").read_text())
    assert ("model", f"./{Q8}") in commands
    assert "adapter" not in [name for name, _ in commands]


@pytest.mark.slow
@pytest.mark.axolotl
def test_the_manifest_covers_the_gguf_file(exported: Path, tmp_path: Path, cli: Cli) -> None:
    run = tmp_path / exported.name
    shutil.copytree(exported, run)
    manifest = json.loads(RunDir(run).manifest.read_text())
    (entry,) = [f for f in manifest["files"] if f["path"].startswith("gguf/")]
    assert entry["path"] == Q8 and entry["size"] == (run / Q8).stat().st_size
    assert cli("export", str(run), "--verify").exit_code == 0
    stray = run / "gguf" / "model-extra.gguf"
    stray.write_bytes(b"GGUF")  # a file the manifest does not list
    res = cli("export", str(run), "--verify", "--json")
    assert res.exit_code == EXIT_FAILURE and any(
        "gguf/model-extra.gguf" in p for p in json.loads(res.stdout)["problems"]
    )
    stray.unlink()

    tools = cached_llama_cpp()
    again = cli("export", str(run), "--gguf", "q8_0", "--llama-cpp", str(tools))
    assert again.exit_code == EXIT_USAGE, again.output
    assert "already has a complete export" in again.stderr and Q8 in again.stderr

    data = bytearray((run / Q8).read_bytes())
    data[-1] ^= 0xFF
    (run / Q8).write_bytes(bytes(data))
    res = cli("export", str(run), "--verify", "--json")
    assert res.exit_code == EXIT_FAILURE
    assert f"{Q8}: sha256 differs from the manifest" in json.loads(res.stdout)["problems"]

    # Adding a quantization keeps q8_0 only while it matches: refused before converting.
    more = cli("export", str(run), "--gguf", "q8_0", "--gguf", "f16", "--llama-cpp", str(tools))
    assert more.exit_code == EXIT_FAILURE, more.output
    assert "is not the conversion this run's export recorded" in more.stderr
    assert "--gguf q8_0 --force" in more.stderr
    assert not (run / "gguf" / "model-f16.gguf").exists()
