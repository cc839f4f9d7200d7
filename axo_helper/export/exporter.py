"""export_run: one export of a run directory, from choosing the variants to the
verified manifest (the steps are in the package docstring).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from axo_helper.atomic import atomic_write_text
from axo_helper.errors import AxoHelperError, ExportUsageError, OutputExistsError
from axo_helper.export import deps
from axo_helper.export.card import model_card
from axo_helper.export.check import check_adapter_matches_base
from axo_helper.export.defaults import DEFAULT_MAX_SHARD_SIZE
from axo_helper.export.files import (
    clean_stale,
    export_lock,
    parse_size,
    publish,
    read_json,
    shareable,
    temp_dir_for,
)
from axo_helper.export.manifest import files_of, previous_merge, verify_export, write_manifest
from axo_helper.export.ollama import modelfile
from axo_helper.export.result import ExportResult
from axo_helper.export.source import RunInfo, adapter_source, base_dir, load_run
from axo_helper.export.stops import terminator_warnings, turn_terminator
from axo_helper.export.variants import build_adapter, build_merged
from axo_helper.rundir import ADAPTER, EXPORT_VARIANTS, MANIFEST, MERGED, MODELFILE, RunDir


def _chosen_variants(variants: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(variants))
    unknown = [v for v in wanted if v not in EXPORT_VARIANTS]
    if unknown or not wanted:
        raise ExportUsageError(
            f"unknown export variant(s) {unknown}" if unknown else "no export variant chosen",
            hint=f"choose from {', '.join(EXPORT_VARIANTS)}",
        )
    return wanted


def _for_method(wanted: tuple[str, ...], method: str) -> tuple[str, ...]:
    """A full fine-tune has no adapter: drop it, or refuse when it was all that was asked."""
    if method != "full" or ADAPTER not in wanted:
        return wanted
    wanted = tuple(v for v in wanted if v != ADAPTER)
    if not wanted:
        raise ExportUsageError(
            "a full fine-tune has no adapter to export", hint="export merged/ instead"
        )
    return wanted


def _to_build(run_dir: Path, wanted: tuple[str, ...], force: bool) -> list[str]:
    """The variants to build; refuses a complete export without force."""
    run = RunDir(run_dir)
    present = [v for v in wanted if (run_dir / v).is_dir()]
    complete = len(present) == len(wanted) and run.manifest.is_file() and run.modelfile.is_file()
    if complete and not force:
        raise OutputExistsError(
            f"{run_dir} already has a complete export ({', '.join(f'{v}/' for v in wanted)}, "
            f"{MODELFILE}, {MANIFEST})",
            hint="pass --force to rebuild it",
        )
    return [v for v in wanted if force or v not in present]


def _require_packages(info: RunInfo, todo: Sequence[str], adapter: Path | None) -> None:
    """Refuse, before anything is written, a variant whose packages are not installed."""
    if MERGED in todo:
        also = None if info.method == "full" else "or export only the adapter (--variant adapter)"
        deps.require("exporting merged/", deps.MERGE_MODULES[info.method], also=also)
    if ADAPTER in todo and adapter and not (adapter / "adapter_model.safetensors").is_file():
        deps.require("converting adapter_model.bin for adapter/", deps.BIN_ADAPTER_MODULES)


def _preflight(info: RunInfo, todo: Sequence[str]) -> tuple[list[str], int | None]:
    """Checks before building anything: (warnings, the adapter's LoRA rank)."""
    if info.method == "full":
        _require_packages(info, todo, None)
        return [], None
    adapter = adapter_source(info)
    _require_packages(info, todo, adapter)
    warnings: list[str] = []
    if MERGED in todo:
        # Check before building anything: a wrong base must not cost a merge.
        warnings = check_adapter_matches_base(adapter, base_dir(info), info.base_model)
    acfg = read_json(adapter / "adapter_config.json") or {}
    return warnings, acfg.get("r")


def _build(info: RunInfo, variant: str, lora_r: int | None, shard_bytes: int) -> dict[str, Any]:
    """Build one variant in a hidden temp directory and publish it; its merge details."""
    final = info.run_dir / variant
    tmp = temp_dir_for(final)
    details: dict[str, Any] = {}
    try:
        card = model_card(info, variant, lora_r=lora_r)
        if variant == ADAPTER:
            build_adapter(info, tmp, card)
        else:
            details = build_merged(info, tmp, card, max_shard_size=shard_bytes)
        publish(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return details


def _verify(run_dir: Path) -> None:
    problems = verify_export(run_dir)
    if problems:
        raise AxoHelperError(
            "the export does not verify against its manifest: " + "; ".join(problems[:5]),
            hint="check the disk, then run `axo-helper export --force`",
        )


def export_run(
    run_dir: Path,
    *,
    force: bool = False,
    variants: Iterable[str] = EXPORT_VARIANTS,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    verify: bool = True,
) -> ExportResult:
    """Export a run directory's trained model (see the package docstring).

    variants: "adapter" and/or "merged" ("adapter" is skipped for a full fine-tune).
    Variants that already exist are kept unless force; a complete export (every
    requested variant, Modelfile and manifest) is refused without force.
    """
    wanted = _chosen_variants(variants)
    shard_bytes = parse_size(max_shard_size)
    info = load_run(Path(run_dir))
    run_dir = info.run_dir
    modelfile_path = RunDir(run_dir).modelfile
    wanted = _for_method(wanted, info.method)

    with export_lock(run_dir):
        clean_stale(run_dir)
        todo = _to_build(run_dir, wanted, force)
        kept = tuple(v for v in wanted if v not in todo)
        warnings, lora_r = _preflight(info, todo)
        warnings += terminator_warnings(turn_terminator(info.config, info.output_dir))
        merge_details: dict[str, Any] = {}
        for v in todo:
            merge_details = _build(info, v, lora_r, shard_bytes) or merge_details
        exported = [v for v in EXPORT_VARIANTS if (run_dir / v).is_dir() and v in wanted]
        text = modelfile(info, merged=MERGED in exported, adapter=ADAPTER in exported)
        atomic_write_text(modelfile_path, text)
        shareable(modelfile_path)
        files = files_of(run_dir, [*exported, MODELFILE])
        merge_details = merge_details or previous_merge(run_dir)
        manifest = write_manifest(info, exported, files, merge_details)
        if verify:
            _verify(run_dir)

    return ExportResult(
        run_dir=run_dir,
        method=info.method,
        built=tuple(todo),
        kept=kept,
        modelfile=modelfile_path,
        manifest=manifest,
        files=tuple(files),
        merge=merge_details,
        warnings=tuple(warnings),
        verified=verify,
    )
