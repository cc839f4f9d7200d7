"""All steps on one config, every problem collected into one ValidationReport."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from axo_helper.errors import AxoHelperError, ConfigError, MissingExtraError
from axo_helper.model.facts import generic_note
from axo_helper.specs import Hardware, ModelSpec
from axo_helper.validate.axolotl import axolotl_check
from axo_helper.validate.files import file_checks, missing_plugins
from axo_helper.validate.lines import LineMap, parse_config
from axo_helper.validate.memory import choose_model, memory_check
from axo_helper.validate.report import Issue, ValidationReport
from axo_helper.validate.schema import key_warnings, schema_errors, schema_note
from axo_helper.versions import axolotl_installed


def validate_text(
    text: str,
    *,
    source: str = "config",
    config_dir: str | Path | None = None,
    hardware: Hardware | None = None,
    run_axolotl: bool = True,
    model: ModelSpec | None = None,
    fallback_model: ModelSpec | None = None,
) -> ValidationReport:
    """Run every step on YAML text. A YAML syntax error is reported as the only error.

    model: the architecture of the memory estimate, whatever base_model says (a plan's
    model). fallback_model (`validate --model`): used only when base_model does not
    resolve; the memory note says which was used.
    """
    report = ValidationReport(path=source)
    try:
        data, lines = parse_config(text, source)
    except ConfigError as exc:
        report.errors.append(Issue("", _line_of(exc.message), exc.message, "yaml"))
        report.notes.append("the schema, Axolotl and memory checks need a parsable file")
        return report
    report.config = data
    report.errors.extend(schema_errors(data, lines=lines))
    report.notes.append(schema_note())
    file_errors, file_notes = file_checks(data, lines, config_dir)
    report.errors.extend(file_errors)
    report.warnings.extend(key_warnings(data, lines))
    _axolotl_step(report, data, lines, hardware, run_axolotl)
    report.notes.append(f"axolotl: {report.axolotl}")
    report.notes.extend(file_notes)
    report.notes.extend(missing_plugins(data))
    _memory_step(report, data, lines, hardware, (model, fallback_model), config_dir)
    report.errors.sort(key=lambda i: (i.line is None, i.line or 0, i.path))
    return report


def _axolotl_step(
    report: ValidationReport,
    data: dict[str, Any],
    lines: LineMap,
    hardware: Hardware | None,
    run_axolotl: bool,
) -> None:
    if not run_axolotl:
        report.axolotl = "skipped (--no-axolotl)"
        return
    if not axolotl_installed():
        report.axolotl = "skipped: Axolotl is not installed (pip install 'axo-helper[train]')"
        return
    try:
        errors, warnings, version = axolotl_check(data, lines, hardware)
    except MissingExtraError as exc:
        report.axolotl = f"skipped: {exc.message}"
        return
    schema_keys = {str(e.path).split(".")[0] for e in report.errors}
    if schema_keys:
        # With the schema already failing, Axolotl's errors about the same keys
        # (or crashes on their odd types) repeat them less clearly: keep the rest.
        errors = [
            e
            for e in errors
            if e.path and e.path.split(".")[0] in data and e.path.split(".")[0] not in schema_keys
        ]
    report.errors.extend(errors)
    # Axolotl repeats the deprecation warnings for legacy flags; keep ours (located).
    ours = {w.path for w in report.warnings if "deprecated" in w.message}
    report.warnings.extend(
        w
        for w in warnings
        if not ("deprecated" in w.message and any(f"`{k}" in w.message for k in ours))
    )
    report.axolotl = f"checked with Axolotl {version}" + (
        f" for {hardware.describe()}" if hardware is not None and hardware.gpu else ""
    )


def _memory_step(
    report: ValidationReport,
    data: dict[str, Any],
    lines: LineMap,
    hardware: Hardware | None,
    models: tuple[ModelSpec | None, ModelSpec | None],
    config_dir: str | Path | None,
) -> None:
    """The estimate, or a note saying why there is none. models: (model, fallback_model)."""
    if hardware is None:
        report.notes.append("memory: not checked (no GPU given or detected; pass --gpu)")
        return
    if hardware.is_cpu:
        report.notes.append("memory: not checked on CPU")
        return
    if any(e.source in ("schema", "file") for e in report.errors):
        report.notes.append("memory: not checked (fix the errors above first)")
        return
    model, fallback = models
    if model is None:
        try:
            model, why = choose_model(data, fallback)
        except AxoHelperError as exc:
            report.notes.append(f"memory: not checked ({exc})")
            return
        report.notes.append(why)
    try:
        report.memory = memory_check(data, hardware, model=model, config_dir=config_dir)
        generic = generic_note(model)
        if generic:
            report.notes.append(f"memory: {generic}")
    except ConfigError as exc:  # a value the estimate cannot read (micro_batch_size: 0)
        key = exc.message.split(" ", 1)[0]
        path = key if key in data else ""
        report.errors.append(
            Issue(path, lines.line((path,)) if path else None, exc.message, "memory")
        )
    except AxoHelperError as exc:
        report.notes.append(f"memory: not checked ({exc})")


def validate_file(
    path: str | Path,
    *,
    hardware: Hardware | None = None,
    run_axolotl: bool = True,
    model: ModelSpec | None = None,
    fallback_model: ModelSpec | None = None,
) -> ValidationReport:
    """Validate a config file; a relative `deepspeed:` path is looked up beside it first.

    model, fallback_model: as for validate_text."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not UTF-8 text", hint="is this the right file?") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    return validate_text(
        text,
        source=str(p),
        config_dir=p.parent,
        hardware=hardware,
        run_axolotl=run_axolotl,
        model=model,
        fallback_model=fallback_model,
    )


def _line_of(message: str) -> int | None:
    m = re.search(r"at line (\d+)", message)
    return int(m.group(1)) if m else None
