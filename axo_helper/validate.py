"""Check an Axolotl config: YAML, JSON Schema, Axolotl's own validation, memory.

Every problem is collected and reported at once, each as `key.path (line N):
message`; warnings (a key close to a known one, deprecated flags) are kept apart
from errors. Steps:

1. parse (YAML errors with line and column; compose nodes give each key its line)
2. JSON Schema (axo_helper/schema/axolotl-config.schema.json, Draft 2020-12)
3. Axolotl's `validate_config` when Axolotl is installed (imported only here: ~10 s)
4. memory: the estimate for this config on the given GPU, and whether it fits

`render` uses steps 1-2 on every config before writing it.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from axo_helper.errors import (
    EXIT_DOES_NOT_FIT,
    EXIT_FAILURE,
    EXIT_OK,
    AxoHelperError,
    ConfigError,
    MissingExtraError,
)
from axo_helper.specs import Hardware, MemoryBreakdown, ModelSpec, TrainSetup

Source = Literal["yaml", "schema", "axolotl", "keys", "file", "memory"]
KeyPath = tuple[str | int, ...]

SCHEMA_FILE = "axolotl-config.schema.json"
KEYS_FILE = "axolotl-keys.json"


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Issue:
    """One error or warning, located in the file where possible."""

    path: str  # "datasets.0.type"; "" for the config as a whole
    line: int | None
    message: str
    source: Source = "schema"

    def format(self) -> str:
        where = self.path or "(config)"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "message": self.message,
            "source": self.source,
        }


@dataclass(frozen=True)
class MemoryCheck:
    gpu: str  # Hardware.describe()
    breakdown: MemoryBreakdown
    budget_gib: float  # per GPU, after the policy's headroom
    fits: bool
    suggestion: str | None = None  # "micro_batch_size 2 would fit"
    setup: TrainSetup | None = None

    def summary(self) -> str:
        total = self.breakdown.total_gib
        if self.fits:
            return f"fits: {total:.1f} / {self.budget_gib:.1f} GiB"
        tail = f"; {self.suggestion}" if self.suggestion else ""
        return f"does not fit: needs {total:.1f} GiB of {self.budget_gib:.1f} GiB{tail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.breakdown.as_dict(),
            "budget_gib": round(self.budget_gib, 2),
            "trainable_params": self.breakdown.trainable_params,
            "gpu": self.gpu,
            "fits": self.fits,
            "suggestion": self.suggestion,
            "notes": list(self.breakdown.notes),
        }


@dataclass
class ValidationReport:
    path: str
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped and why
    axolotl: str = "not run"  # "checked (Axolotl 0.19.0)", "skipped: ..."
    memory: MemoryCheck | None = None
    config: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def fits(self) -> bool | None:
        return None if self.memory is None else self.memory.fits

    @property
    def exit_code(self) -> int:
        """0 valid and fits (or fit unchecked), 1 invalid, 3 valid but does not fit."""
        if self.errors:
            return EXIT_FAILURE
        if self.fits is False:
            return EXIT_DOES_NOT_FIT
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.path,
            "valid": self.valid,
            "errors": [e.as_dict() for e in self.errors],
            "warnings": [w.as_dict() for w in self.warnings],
            "notes": list(self.notes),
            "axolotl": self.axolotl,
            "memory": self.memory.as_dict() if self.memory else None,
            "fits": self.fits,
        }


# --------------------------------------------------------------------------- step 1: parse
class LineMap:
    """Key path -> 1-based line, from the YAML compose tree (safe_load loses lines)."""

    def __init__(self, text: str):
        self._lines: dict[KeyPath, int] = {}
        # (path, earlier line, later line): YAML loaders keep the later value silently.
        self.duplicates: list[tuple[KeyPath, int, int]] = []
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key: str | int = key_node.value
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag.endswith(":int"):
                    with contextlib.suppress(ValueError):
                        key = int(key_node.value)
                child = (*path, key)
                line = key_node.start_mark.line + 1
                if child in self._lines:
                    self.duplicates.append((child, self._lines[child], line))
                self._lines[child] = line  # the later one is the value that counts
                self._walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, i)
                self._lines.setdefault(child, item.start_mark.line + 1)
                self._walk(item, child)

    def line(self, path: KeyPath) -> int | None:
        """The line of `path`, else of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self._lines:
                return self._lines[p]
            p = p[:-1]
        return None


def dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def parse_config(text: str, source: str = "config") -> tuple[dict[str, Any], LineMap]:
    """Parse YAML text into a mapping; ConfigError (with line and column) otherwise."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{source} is not valid YAML{where}: {problem}",
            hint="fix the syntax there (indentation, an unquoted ': ' or '#', a tab)",
        ) from None
    if data is None:
        raise ConfigError(f"{source} is empty", hint="an Axolotl config is a YAML mapping of keys")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} is a YAML {type(data).__name__}, not a mapping of keys",
            hint="an Axolotl config starts with lines such as `base_model: ...`",
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(
            f"{source} has non-text keys: {bad!r}", hint="quote them or fix the indentation"
        )
    return data, LineMap(text)


# --------------------------------------------------------------------------- step 2: schema
def _schema_node(name: str) -> Any:
    return resources.files("axo_helper") / "schema" / name


@functools.cache
def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema (Draft 2020-12)."""
    return json.loads(_schema_node(SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.cache
def known_keys() -> dict[str, Any]:
    """Axolotl's config key names, extracted by scripts/extract_axolotl_keys.py."""
    return json.loads(_schema_node(KEYS_FILE).read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _rule_keys(rule: Mapping[str, Any]) -> list[str]:
    """Top-level property names a cross-field rule talks about, in order."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for name in node.get("properties", {}) or {}:
                if name not in found:
                    found.append(name)
            for k in ("if", "then", "not"):
                if k in node:
                    walk(node[k])
            for k in ("anyOf", "allOf", "oneOf"):
                for sub in node.get(k, []):
                    walk(sub)
            for name in node.get("required", []) or []:
                if name not in found:
                    found.append(name)

    walk(rule)
    return found


def _message(error: Any) -> str:
    from jsonschema.exceptions import best_match

    if error.validator in ("oneOf", "anyOf") and error.context:
        # "x is not valid under any of the given schemas" says nothing: report the
        # branch whose type matched (-1 for a number-or-string: "less than 0").
        typed = [e for e in error.context if e.validator != "type"]
        return _message(best_match(typed or error.context))
    if error.validator == "enum" and isinstance(error.instance, str):
        options = [str(o) for o in error.validator_value]
        close = difflib.get_close_matches(error.instance, options, n=1, cutoff=0.5) or [
            o for o in options if o.startswith(error.instance)
        ]
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{error.instance!r} is not one of {', '.join(options)}{hint}"
    return str(error.message)


def schema_errors(
    data: Mapping[str, Any], text: str | None = None, lines: LineMap | None = None
) -> list[Issue]:
    """Every JSON Schema error of a parsed config, located by line, in file order."""
    if lines is None:
        lines = LineMap(text) if text is not None else LineMap("")
    schema = load_schema()
    issues: list[Issue] = []
    seen: set[tuple[str, str]] = set()
    for error in _validator().iter_errors(data):
        path: KeyPath = tuple(error.absolute_path)
        message = _message(error)
        schema_path = list(error.absolute_schema_path)
        if schema_path[:1] == ["allOf"] and len(schema_path) > 1:
            # A cross-field rule: its description is the message a person understands,
            # and the first key it names is where to look.
            rule = schema["allOf"][schema_path[1]]
            message = rule.get("description", message)
            if not path:
                present = [k for k in _rule_keys(rule) if k in data]
                if present:
                    path = (present[0],)
        key = (dotted(path), message)
        if key in seen:
            continue
        seen.add(key)
        issues.append(Issue(dotted(path), lines.line(path), message, "schema"))
    issues.sort(key=lambda i: (i.line or 0, i.path))
    return issues


# --------------------------------------------------------------------------- warnings
_DEPRECATED_ATTENTION = {
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "xformers_attention": "xformers",
    "flex_attention": "flex_attention",
    "eager_attention": "eager",
    "sage_attention": "sage",
}


def _did_you_mean(key: str, known: set[str]) -> str | None:
    if key in known:
        return None
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
    return close[0] if close else None


def key_warnings(data: Mapping[str, Any], lines: LineMap) -> list[Issue]:
    """Unknown keys close to known ones, deprecated flags, unknown optimizer names."""
    keys = known_keys()
    schema = load_schema()
    top = set(keys["config"]) | set(schema["properties"])
    dataset_keys = set(keys["dataset"]) | set(schema["$defs"]["dataset"]["properties"])
    fsdp_keys = set(keys["fsdp_config"])
    out: list[Issue] = []

    def check(mapping: Mapping[str, Any], known: set[str], prefix: KeyPath) -> None:
        for key in mapping:
            guess = _did_you_mean(str(key), known)
            if guess:
                path = (*prefix, key)
                out.append(
                    Issue(
                        dotted(path),
                        lines.line(path),
                        f"unknown key (Axolotl ignores it); did you mean {guess}?",
                        "keys",
                    )
                )

    for path, first, later in lines.duplicates:
        out.append(
            Issue(
                dotted(path),
                later,
                f"duplicate key: this value replaces the one on line {first} (YAML keeps the last)",
                "keys",
            )
        )
    check(data, top, ())
    datasets = data.get("datasets")
    # A non-list `datasets` is a schema error reported elsewhere; nothing to spell-check.
    for i, entry in enumerate(datasets if isinstance(datasets, list) else []):
        if isinstance(entry, Mapping):
            check(entry, dataset_keys, ("datasets", i))
    if isinstance(data.get("fsdp_config"), Mapping):
        check(data["fsdp_config"], fsdp_keys | {"fsdp_version"}, ("fsdp_config",))

    for flag, impl in _DEPRECATED_ATTENTION.items():
        if data.get(flag) is True:
            out.append(
                Issue(
                    flag,
                    lines.line((flag,)),
                    f"deprecated in Axolotl 0.19; use attn_implementation: {impl}",
                    "keys",
                )
            )
    optimizer = data.get("optimizer")
    if isinstance(optimizer, str) and optimizer not in keys["optimizers"]:
        guess = difflib.get_close_matches(optimizer, keys["optimizers"], n=1, cutoff=0.75)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        out.append(
            Issue(
                "optimizer",
                lines.line(("optimizer",)),
                f"unknown optimizer {optimizer!r}{hint}",
                "keys",
            )
        )
    if isinstance(data.get("fsdp_config"), Mapping) and data.get("fsdp_version") is None:
        out.append(
            Issue(
                "fsdp_config",
                lines.line(("fsdp_config",)),
                "no fsdp_version: Axolotl falls back to the deprecated FSDP1; add fsdp_version: 2",
                "keys",
            )
        )
    return sorted(out, key=lambda i: (i.line or 0, i.path))


def file_errors(
    data: Mapping[str, Any], lines: LineMap, config_dir: str | Path | None
) -> list[Issue]:
    """Files the config points to that must exist before training: the DeepSpeed JSON."""
    from axo_helper.axolotl_config import distributed_of

    if not isinstance(data.get("deepspeed"), str) or not data["deepspeed"]:
        return []
    try:
        distributed_of(data, 1, Path(config_dir) if config_dir else None)
    except ConfigError as exc:
        return [Issue("deepspeed", lines.line(("deepspeed",)), exc.message, "file")]
    return []


# --------------------------------------------------------------------------- step 3: Axolotl
def axolotl_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("axolotl") is not None
    except (ImportError, ValueError):
        return False


def _capabilities(hardware: Hardware | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Axolotl's GPU capability dicts for the target GPU (not this machine's)."""
    if hardware is None or hardware.gpu is None:
        return None
    import torch

    g = hardware.gpu
    cc = g.compute_capability
    return (
        {
            "bf16": bool(g.bf16),
            "fp8": bool(cc and cc >= (9, 0)),
            "tf32": bool(cc and cc >= (8, 0)),
            "n_gpu": hardware.world_size,
            "compute_capability": f"sm_{cc[0]}{cc[1]}" if cc else None,
        },
        {"torch_version": str(torch.__version__).split("+", maxsplit=1)[0]},
    )


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage().strip()
        if msg and msg not in self.messages:
            self.messages.append(msg)


@contextlib.contextmanager
def _axolotl_warnings() -> Iterator[_Collect]:
    """Collect what Axolotl's validators log as warnings, instead of printing it."""
    handler = _Collect()
    logger = logging.getLogger("axolotl")
    old_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


_VALUE_ERROR = re.compile(r"^(Value|Assertion) error, ")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hide what importing Axolotl prints (torchao kernel probes, torch deprecation
    lines, written straight to file descriptor 2); replay it if the import fails."""
    import os
    import sys
    import tempfile
    import warnings

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        ok = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
            ok = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not ok:
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))


def _locate(message: str, data: Mapping[str, Any], lines: LineMap) -> tuple[str, int | None]:
    """The first top-level key an unlocated Axolotl message names, and its line."""
    best: tuple[int, str] | None = None
    for key in data:
        m = re.search(rf"(?<![A-Za-z0-9_]){re.escape(str(key))}(?![A-Za-z0-9_])", message)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), str(key))
    if best is None:
        return "", None
    return best[1], lines.line((best[1],))


def axolotl_check(
    data: Mapping[str, Any], lines: LineMap, hardware: Hardware | None = None
) -> tuple[list[Issue], list[Issue], str]:
    """(errors, warnings, version) from Axolotl's own `validate_config`.

    Runs on CPU. With a target GPU its capabilities are passed, so GPU-dependent rules
    (bf16 support, n_gpu) are checked for that GPU rather than for this machine.
    Raises MissingExtraError when Axolotl is not installed.
    """
    try:
        with _quiet_stderr():
            import axolotl
            from axolotl.integrations.base import PluginManager
            from axolotl.utils.config import validate_config
            from axolotl.utils.dict import DictDefault
            from pydantic import ValidationError
    except ImportError as exc:
        raise MissingExtraError("Axolotl's own validation") from exc

    errors: list[Issue] = []
    warnings: list[Issue] = []
    cfg = DictDefault(copy.deepcopy(dict(data)))
    # Plugins add their own keys to the pydantic model; load the ones that import
    # (not their register(): that may have side effects meant for training).
    manager = PluginManager.get_instance()
    for i, name in enumerate(cfg.get("plugins") or []):
        if not isinstance(name, str):
            continue
        try:
            module, _, attr = name.rpartition(".")
            import importlib

            getattr(importlib.import_module(module), attr)
        except Exception as exc:
            warnings.append(
                Issue(
                    f"plugins.{i}",
                    lines.line(("plugins", i)),
                    f"plugin cannot be loaded here: {exc}",
                    "axolotl",
                )
            )
            continue
        if name not in manager.plugins:
            with _axolotl_warnings():
                manager.register(name)
    caps = _capabilities(hardware)
    with _axolotl_warnings() as logged:
        try:
            if caps is None:
                validate_config(cfg)
            else:
                validate_config(cfg, capabilities=caps[0], env_capabilities=caps[1])
        except ValidationError as exc:
            # Axolotl builds each dataset entry on its own (SFTDataset(**entry)): its
            # errors come without the "datasets.N" prefix.
            prefix: KeyPath = ("datasets",) if exc.title.endswith("Dataset") else ()
            for err in exc.errors():
                path: KeyPath = prefix + tuple(
                    p for p in err.get("loc", ()) if isinstance(p, (str, int))
                )
                # The pydantic loc of a dataset error names the model class first.
                path = tuple(p for p in path if not (isinstance(p, str) and p[:1].isupper()))
                message = _VALUE_ERROR.sub("", str(err.get("msg", ""))).strip()
                if path:
                    errors.append(Issue(dotted(path), lines.line(path), message, "axolotl"))
                else:
                    # A model-level rule: point at the key it talks about.
                    key, line = _locate(message, data, lines)
                    errors.append(Issue(key, line, message, "axolotl"))
        except Exception as exc:  # a validator that crashes on odd input is still a finding
            message = _VALUE_ERROR.sub("", str(exc))
            key, line = _locate(message, data, lines)
            errors.append(Issue(key, line, message, "axolotl"))
    for msg in logged.messages:
        warnings.append(Issue("", None, msg.splitlines()[0], "axolotl"))
    return errors, warnings, str(getattr(axolotl, "__version__", "?"))


# --------------------------------------------------------------------------- step 4: memory
def budget_gib(hardware: Hardware) -> float:
    """Per-GPU memory the planner would plan against: memory minus the policy's headroom."""
    from axo_helper.planner import load_policy

    return max(0.0, load_policy().budget(hardware.budget_gib))


def memory_check(
    data: Mapping[str, Any],
    hardware: Hardware,
    *,
    model: ModelSpec | None = None,
    config_dir: str | Path | None = None,
) -> MemoryCheck:
    """The estimate of `data` on `hardware`, and the smallest change that fits if it does not."""

    from axo_helper import memory
    from axo_helper.axolotl_config import setup_from_config

    if model is None:
        from axo_helper import model as model_mod

        base = data.get("base_model")
        if not isinstance(base, str) or not base:
            raise ConfigError("base_model is missing; the memory estimate needs the model")
        model = model_mod.inspect(base)
    setup = setup_from_config(data, model, hardware.world_size, config_dir=config_dir)
    budget = budget_gib(hardware)
    est = memory.estimate(setup)
    fits = est.total_gib <= budget
    suggestion: str | None = None
    if not fits:
        suggestion = _suggest(setup, budget)
    return MemoryCheck(hardware.describe(), est, budget, fits, suggestion, setup)


def _suggest(setup: TrainSetup, budget: float) -> str:
    """The smallest edit that fits, in the order an operator would try them."""
    from dataclasses import replace

    from axo_helper import memory

    def fits(s: TrainSetup) -> bool:
        return memory.estimate(s).total_gib <= budget

    for mb in range(setup.micro_batch_size - 1, 0, -1):
        if fits(replace(setup, micro_batch_size=mb)):
            return f"micro_batch_size {mb} would fit (raise gradient_accumulation_steps to keep the batch)"
    if not setup.gradient_checkpointing:
        for mb in range(setup.micro_batch_size, 0, -1):
            if fits(replace(setup, micro_batch_size=mb, gradient_checkpointing=True)):
                return f"gradient_checkpointing: true with micro_batch_size {mb} would fit"
    one = replace(setup, micro_batch_size=1, gradient_checkpointing=True)
    for seq in (setup.sequence_len // 2, setup.sequence_len // 4):
        if seq >= 256 and fits(replace(one, sequence_len=seq)):
            return f"micro_batch_size 1, gradient checkpointing and sequence_len {seq} would fit"
    if setup.method == "full":
        return "no simple edit fits; try adapter: lora (or qlora), or more GPUs"
    if setup.method == "lora":
        return "no simple edit fits; try adapter: qlora with load_in_4bit: true, or a larger GPU"
    return "no simple edit fits; a larger GPU or several GPUs are needed"


# --------------------------------------------------------------------------- all steps
def validate_text(
    text: str,
    *,
    source: str = "config",
    config_dir: str | Path | None = None,
    hardware: Hardware | None = None,
    run_axolotl: bool = True,
    model: ModelSpec | None = None,
) -> ValidationReport:
    """Run every step on YAML text. A YAML syntax error is reported as the only error."""
    report = ValidationReport(path=source)
    try:
        data, lines = parse_config(text, source)
    except ConfigError as exc:
        report.errors.append(Issue("", _line_of(exc.message), exc.message, "yaml"))
        report.notes.append("the schema, Axolotl and memory checks need a parsable file")
        return report
    report.config = data
    report.errors.extend(schema_errors(data, lines=lines))
    report.errors.extend(file_errors(data, lines, config_dir))
    report.warnings.extend(key_warnings(data, lines))

    if not run_axolotl:
        report.axolotl = "skipped (--no-axolotl)"
    elif not axolotl_available():
        report.axolotl = "skipped: Axolotl is not installed (pip install 'axo-helper[train]')"
    else:
        try:
            errors, warnings, version = axolotl_check(data, lines, hardware)
        except MissingExtraError as exc:
            report.axolotl = f"skipped: {exc.message}"
        else:
            schema_keys = {str(e.path).split(".")[0] for e in report.errors}
            if schema_keys:
                # With the schema already failing, Axolotl's errors about the same keys
                # (or crashes on their odd types) repeat them less clearly: keep the rest.
                errors = [
                    e
                    for e in errors
                    if e.path
                    and e.path.split(".")[0] in data
                    and e.path.split(".")[0] not in schema_keys
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
    report.notes.append(f"axolotl: {report.axolotl}")

    if hardware is None:
        report.notes.append("memory: not checked (no GPU given or detected; pass --gpu)")
    elif hardware.is_cpu:
        report.notes.append("memory: not checked on CPU")
    elif any(e.source == "schema" for e in report.errors):
        report.notes.append("memory: not checked (fix the errors above first)")
    else:
        try:
            report.memory = memory_check(data, hardware, model=model, config_dir=config_dir)
        except ConfigError as exc:
            path = "deepspeed" if "deepspeed" in exc.message else ""
            report.errors.append(
                Issue(path, lines.line((path,)) if path else None, exc.message, "file")
            )
        except AxoHelperError as exc:
            report.notes.append(f"memory: not checked ({exc})")
    report.errors.sort(key=lambda i: (i.line is None, i.line or 0, i.path))
    return report


def validate_file(
    path: str | Path,
    *,
    hardware: Hardware | None = None,
    run_axolotl: bool = True,
    model: ModelSpec | None = None,
) -> ValidationReport:
    """Validate a config file; a relative `deepspeed:` path is looked up beside it first."""
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
    )


def _line_of(message: str) -> int | None:
    m = re.search(r"at line (\d+)", message)
    return int(m.group(1)) if m else None
