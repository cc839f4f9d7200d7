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
from axo_helper.export.gguf_step import (
    GGUFRequest,
    build_gguf,
    gguf_present,
    gguf_request,
    modelfile_gguf,
)
from axo_helper.export.kept import check_kept
from axo_helper.export.manifest import (
    files_of,
    previous_merge,
    sources_of,
    verify_export,
    write_manifest,
)
from axo_helper.export.ollama import modelfile
from axo_helper.export.result import ExportResult
from axo_helper.export.source import RunInfo, adapter_source, base_dir, load_run, steps_done
from axo_helper.export.stops import terminator_warnings, turn_terminator
from axo_helper.export.variants import build_adapter, build_merged
from axo_helper.rundir import (
    ADAPTER,
    EXPORT_VARIANTS,
    GGUF_DIR,
    MANIFEST,
    MERGED,
    MODELFILE,
    RunDir,
    gguf_name,
)
from axo_helper.shell import command
from axo_helper.specs.base import FULL_WEIGHT_METHODS


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
    if method not in FULL_WEIGHT_METHODS or ADAPTER not in wanted:
        return wanted
    wanted = tuple(v for v in wanted if v != ADAPTER)
    if not wanted:
        raise ExportUsageError(
            "a full fine-tune has no adapter to export", hint="export merged/ instead"
        )
    return wanted


def _to_build(
    info: RunInfo, wanted: tuple[str, ...], force: bool, gguf: GGUFRequest | None = None
) -> list[str]:
    """The variants to build; refuses a complete export (the requested GGUF files too)
    without force, and a variant that would be kept but does not verify (kept.py)."""
    run_dir = info.run_dir
    run = RunDir(run_dir)
    present = [v for v in wanted if (run_dir / v).is_dir()]
    if force:
        return list(wanted)
    complete = len(present) == len(wanted) and run.manifest.is_file() and run.modelfile.is_file()
    if complete and gguf_present(run_dir, gguf):
        problems = verify_export(run_dir)
        if problems:
            raise AxoHelperError(
                f"{run_dir} has an export that does not verify against its {MANIFEST}: "
                + "; ".join(problems[:5]),
                hint="rebuild it from output/ with: "
                + command("axo-helper", "export", run_dir, "--force"),
            )
        raise OutputExistsError(
            f"{run_dir} already has a complete export ({', '.join(f'{v}/' for v in wanted)}, "
            f"{_gguf_listing(gguf)}{MODELFILE}, {MANIFEST}; verified)",
            hint="pass --force to rebuild it",
        )
    for v in present:
        check_kept(info, v)
    return [v for v in wanted if v not in present]


def _kept_others(info: RunInfo, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Variants not asked for this time but exported before: kept and listed when they
    verify, refused when not, so the manifest never disagrees with the disk."""
    others = tuple(
        v for v in EXPORT_VARIANTS if v not in wanted and (info.run_dir / v).is_dir()
    )
    for v in others:
        check_kept(info, v)
    return others


def _gguf_listing(gguf: GGUFRequest | None) -> str:
    if gguf is None:
        return ""
    return "".join(f"{GGUF_DIR}/{gguf_name(q)}, " for q in gguf.quants)


def _check_finished(info: RunInfo, unfinished: bool) -> list[str]:
    """Refuse a run whose training did not finish, unless asked; the warning if asked."""
    if info.status in (None, "finished"):
        return []
    steps = steps_done(info)
    what = f"{info.run_dir} did not finish training (status {info.status!r}{steps})"
    if not unfinished:
        raise AxoHelperError(
            what,
            hint="finish it with: "
            + command("axo-helper", "run", "--resume", info.run_dir)
            + "; or export the weights it saved anyway with --unfinished",
        )
    return [f"{what}: exporting the weights it saved; the model card says so"]


def _require_packages(info: RunInfo, todo: Sequence[str], adapter: Path | None) -> None:
    """Refuse, before anything is written, a variant whose packages are not installed."""
    if MERGED in todo:
        also = None if info.method in FULL_WEIGHT_METHODS else "or export only the adapter (--variant adapter)"
        deps.require("exporting merged/", deps.MERGE_MODULES[info.method], also=also)
    if ADAPTER in todo and adapter and not (adapter / "adapter_model.safetensors").is_file():
        deps.require("converting adapter_model.bin for adapter/", deps.BIN_ADAPTER_MODULES)


def _preflight(info: RunInfo, todo: Sequence[str]) -> tuple[list[str], int | None]:
    """Checks before building anything: (warnings, the adapter's LoRA rank)."""
    if info.method in FULL_WEIGHT_METHODS:
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
    unfinished: bool = False,
    gguf: Iterable[str] = (),
    llama_cpp: Path | None = None,
) -> ExportResult:
    """Export a run directory's trained model (see the package docstring).

    variants: "adapter" and/or "merged" ("adapter" is skipped for a full fine-tune).
    Variants that already exist are kept unless force; a complete export (every
    requested variant, GGUF file, Modelfile and manifest) is refused without force. A
    run whose training did not finish (plan.json's status) is refused unless unfinished.
    gguf: quantizations to convert merged/ to (gguf/model-QUANT.gguf) with the llama.cpp
    in llama_cpp, else in $AXO_HELPER_LLAMA_CPP (gguf_step).
    """
    wanted = _chosen_variants(variants)
    shard_bytes = parse_size(max_shard_size)
    # The converter is found (or refused) before the run is read or a merge started.
    gguf_req = gguf_request(wanted, gguf, llama_cpp)
    info = load_run(Path(run_dir))
    run_dir = info.run_dir
    modelfile_path = RunDir(run_dir).modelfile
    wanted = _for_method(wanted, info.method)
    notes = _check_finished(info, unfinished)
    if info.rebound:
        notes.append(
            f"{RunDir(run_dir).config.name} names another run directory (copied or moved): "
            f"read {', '.join(info.rebound)} as this directory's own"
        )

    with export_lock(run_dir):
        clean_stale(run_dir)
        todo = _to_build(info, wanted, force, gguf_req)
        others = _kept_others(info, wanted)
        kept = tuple(v for v in wanted if v not in todo) + others
        warnings, lora_r = _preflight(info, todo)
        warnings = notes + warnings
        warnings += terminator_warnings(turn_terminator(info.config, info.output_dir))
        merge_details: dict[str, Any] = {}
        for v in todo:
            merge_details = _build(info, v, lora_r, shard_bytes) or merge_details
        warnings += build_gguf(run_dir, gguf_req, force=force, merged_rebuilt=MERGED in todo)
        exported = [v for v in EXPORT_VARIANTS if (run_dir / v).is_dir() and v in wanted + others]
        text = modelfile(
            info,
            merged=MERGED in exported,
            adapter=ADAPTER in exported,
            gguf=modelfile_gguf(run_dir, gguf_req),
        )
        atomic_write_text(modelfile_path, text)
        shareable(modelfile_path)
        files = files_of(run_dir, [*exported, GGUF_DIR, MODELFILE])
        merge_details = merge_details or previous_merge(run_dir)
        manifest = write_manifest(info, exported, files, merge_details, sources_of(info))
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


def verify_run(run_dir: Path) -> list[str]:
    """`export --verify`: the export's problems against its manifest and output/ ([] = ok).

    Reads only; a directory without an export is a usage error.
    """
    run = RunDir(Path(run_dir).expanduser())
    if not run.path.is_dir():
        raise ExportUsageError(
            f"run directory {run.path} does not exist",
            hint="pass the directory `axo-helper run` created (runs/NAME)",
        )
    if not run.manifest.exists():
        raise ExportUsageError(
            f"{run.path} has no {MANIFEST}: it was never exported",
            hint="export it first: " + command("axo-helper", "export", run.path),
        )
    return verify_export(run.path)
