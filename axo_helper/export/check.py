"""Refusing an adapter that was not trained on the base it would be merged into.

Three checks, cheapest first: the adapter's own config (a LoRA), the config.json
Axolotl saved beside the adapter against the base's, and every LoRA matrix's shape
against the base weight it modifies (safetensors headers only, no weights read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from axo_helper.errors import AxoHelperError
from axo_helper.export.files import read_json
from axo_helper.export.shards import weight_files

# Keys of config.json that must agree between the model an adapter was trained on and
# the base it is merged into.
ARCH_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)
_WRONG_BASE_HINT = "set base_model in axolotl.yml to the model the run trained on"
_PEFT_PREFIX = "base_model.model."
_LORA_A = ".lora_A.weight"


class AdapterMismatchError(AxoHelperError):
    """The adapter in output/ was not trained on this base model."""


def tensor_shapes(files: Iterable[Path]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from safetensors headers, without reading any weights."""
    from safetensors import safe_open

    from axo_helper.export.source import check_safetensors

    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        if f.suffix != ".safetensors":
            continue
        check_safetensors(f)  # a truncated or damaged file is a message, not a crash
        with safe_open(str(f), framework="pt") as st:
            for key in st.keys():  # noqa: SIM118 - safe_open is not a Mapping
                shapes[key] = tuple(st.get_slice(key).get_shape())
    return shapes


def _check_peft_config(adapter_dir: Path, base_model: str) -> list[str]:
    acfg = read_json(adapter_dir / "adapter_config.json")
    if not isinstance(acfg, dict):
        raise AxoHelperError(f"{adapter_dir}/adapter_config.json is missing or unreadable")
    if str(acfg.get("peft_type", "LORA")).upper() != "LORA":
        raise AdapterMismatchError(
            f"the adapter is a {acfg.get('peft_type')} adapter; export merges LoRA/QLoRA only",
            hint="export it with --variant adapter, or merge it with PEFT yourself",
        )
    trained_on = acfg.get("base_model_name_or_path")
    if (
        trained_on
        and str(trained_on) != base_model
        and Path(str(trained_on)).name != Path(base_model).name
    ):
        return [
            f"adapter_config.json names {trained_on} as its base, the run's config {base_model}; "
            "shapes match, so merging anyway"
        ]
    return []


def _check_architecture(adapter_dir: Path, base_dir: Path, base_model: str) -> None:
    base_cfg = read_json(base_dir / "config.json")
    if not isinstance(base_cfg, dict):
        raise AxoHelperError(f"the base model {base_dir} has no readable config.json")
    trained_cfg = read_json(adapter_dir / "config.json")
    if not isinstance(trained_cfg, dict):
        return
    diffs = [
        f"{k}: trained {trained_cfg.get(k)!r}, base {base_cfg.get(k)!r}"
        for k in ARCH_KEYS
        if k in trained_cfg
        and k in base_cfg
        and trained_cfg[k] != base_cfg[k]
        # a vocabulary resized by added tokens travels with the adapter
        and k != "vocab_size"
    ]
    if diffs:
        raise AdapterMismatchError(
            f"the adapter was trained on a different model than the base {base_model} "
            f"({'; '.join(diffs)})",
            hint=_WRONG_BASE_HINT,
        )


def _compare_shapes(
    lora: Mapping[str, tuple[int, ...]], base: Mapping[str, tuple[int, ...]]
) -> tuple[list[str], list[str], int]:
    """(shape mismatches, modules missing from the base, modules matched)."""
    bad: list[str] = []
    missing: list[str] = []
    matched = 0
    for key, shape in lora.items():
        if not key.endswith(_LORA_A):
            continue
        module = key[len(_PEFT_PREFIX) : -len(_LORA_A)] if key.startswith(_PEFT_PREFIX) else key
        b_shape = lora.get(key.replace(".lora_A.", ".lora_B."))
        target = base.get(module + ".weight")
        if target is None:
            missing.append(module)
            continue
        matched += 1
        if len(target) != 2 or b_shape is None:
            continue  # conv / fused experts: Axolotl's merge checks these itself
        if shape[1] != target[1] or b_shape[0] != target[0]:
            bad.append(f"{module}: adapter {b_shape[0]}x{shape[1]}, base {target[0]}x{target[1]}")
    return bad, missing, matched


def _check_shapes(adapter_dir: Path, base_dir: Path, base_model: str) -> list[str]:
    adapter_file = adapter_dir / "adapter_model.safetensors"
    if not adapter_file.is_file():
        return []  # a .bin adapter: Axolotl's merge reads it; shapes unchecked
    bad, missing, matched = _compare_shapes(
        tensor_shapes([adapter_file]), tensor_shapes(weight_files(base_dir))
    )
    if bad or (missing and not matched):
        detail = bad[:3] or [f"no {m}.weight in the base" for m in missing[:3]]
        more = len(bad) + len(missing) - len(detail)
        raise AdapterMismatchError(
            f"the adapter does not fit the base model {base_model}: "
            + "; ".join(detail)
            + (f" (and {more} more)" if len(bad) + len(missing) > 3 else ""),
            hint=_WRONG_BASE_HINT,
        )
    if missing:
        return [
            f"{len(missing)} adapter module(s) have no same-named base weight "
            f"(e.g. {missing[0]}); Axolotl's merge maps renamed weights itself"
        ]
    return []


def check_adapter_matches_base(adapter_dir: Path, base_dir: Path, base_model: str) -> list[str]:
    """Refuse an adapter trained on another architecture or size; return soft warnings."""
    warnings = _check_peft_config(adapter_dir, base_model)
    _check_architecture(adapter_dir, base_dir, base_model)
    return warnings + _check_shapes(adapter_dir, base_dir, base_model)
