"""Step 3: Axolotl's own `validate_config`, run on CPU for the target GPU.

Axolotl is imported only here, inside the functions (~10 s); what it logs as
warnings is captured and reported, what its import prints is hidden.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from axo_helper.errors import MissingExtraError
from axo_helper.specs import Hardware
from axo_helper.validate.lines import KeyPath, LineMap, dotted
from axo_helper.validate.report import Issue
from axo_helper.versions import axolotl_version_warning


def _capabilities(hardware: Hardware | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Axolotl's GPU capability dicts for the target GPU (not this machine's)."""
    if hardware is None or hardware.gpu is None:
        return None
    import torch

    g = hardware.gpu
    return (
        {
            "bf16": bool(g.bf16),
            "fp8": g.fp8,
            "tf32": g.tf32,
            "n_gpu": hardware.world_size,
            "compute_capability": g.sm,
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
    cfg = DictDefault(copy.deepcopy(dict(data)))
    warnings = _load_plugins(cfg, lines, PluginManager.get_instance())
    caps = _capabilities(hardware)
    with _axolotl_warnings() as logged:
        try:
            if caps is None:
                validate_config(cfg)
            else:
                validate_config(cfg, capabilities=caps[0], env_capabilities=caps[1])
        except ValidationError as exc:
            errors.extend(_pydantic_issues(exc, data, lines))
        except Exception as exc:  # a validator that crashes on odd input is still a finding
            message = _VALUE_ERROR.sub("", str(exc))
            key, line = _locate(message, data, lines)
            errors.append(Issue(key, line, message, "axolotl"))
    for msg in logged.messages:
        warnings.append(Issue("", None, msg.splitlines()[0], "axolotl"))
    found = str(getattr(axolotl, "__version__", "?"))
    outside = axolotl_version_warning(found)
    if outside:
        warnings.insert(0, Issue("", None, outside, "axolotl"))
    return errors, warnings, found


def _load_plugins(cfg: Mapping[str, Any], lines: LineMap, manager: Any) -> list[Issue]:
    """Register the config's plugins with Axolotl; a warning for each that cannot load.

    Plugins add their own keys to the pydantic model; load the ones that import
    (not their register(): that may have side effects meant for training).
    """
    import importlib

    warnings: list[Issue] = []
    for i, name in enumerate(cfg.get("plugins") or []):
        if not isinstance(name, str):
            continue
        try:
            module, _, attr = name.rpartition(".")
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
    return warnings


def _pydantic_issues(exc: Any, data: Mapping[str, Any], lines: LineMap) -> list[Issue]:
    """Axolotl's pydantic ValidationError as located issues."""
    issues: list[Issue] = []
    # Axolotl builds each dataset entry on its own (SFTDataset(**entry)): its
    # errors come without the "datasets.N" prefix.
    prefix: KeyPath = ("datasets",) if exc.title.endswith("Dataset") else ()
    for err in exc.errors():
        path: KeyPath = prefix + tuple(p for p in err.get("loc", ()) if isinstance(p, (str, int)))
        # The pydantic loc of a dataset error names the model class first.
        path = tuple(p for p in path if not (isinstance(p, str) and p[:1].isupper()))
        message = _VALUE_ERROR.sub("", str(err.get("msg", ""))).strip()
        if path:
            issues.append(Issue(dotted(path), lines.line(path), message, "axolotl"))
        else:
            # A model-level rule: point at the key it talks about.
            key, line = _locate(message, data, lines)
            issues.append(Issue(key, line, message, "axolotl"))
    return issues
