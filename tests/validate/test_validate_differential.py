"""The shipped schema is never stricter than Axolotl: a differential test.

Every config here is judged twice: by `schema_errors` (what `validate --no-axolotl`
reports) and by `axolotl_check` (the same `validate_config` call `validate` makes).
A config Axolotl accepts and the schema rejects is a false rejection, and fails the
test. The reverse (Axolotl rejects, the schema accepts) is a missed rejection: the
schema is only a laptop approximation of Axolotl, so those are listed as a warning
(and printed under `-s`), never failed on.

Two sources of configs: tests/validate/differential_corpus.yaml (realistic hand-edits
on a few valid bases) and hypothesis, which sets 1-3 of the schema's top-level
properties to values drawn from each property's own schema, plus the near-misses
people type (null, integral floats, numeric and boolean strings).

Axolotl "accepts" when any target GPU validate may be given accepts (one H100, eight
H100s: rules such as bf16 support or n_gpu differ between them). Not the no-GPU call:
without capabilities Axolotl skips the rules of its capability model (for example
quantize_moe_experts with lora_target_linear), which `axolotl train` always applies,
so a config that passes only that way is not one Axolotl trains.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import string
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("axolotl")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axo_helper.hardware import resolve
from axo_helper.specs import Hardware
from axo_helper.validate.axolotl import axolotl_check
from axo_helper.validate.lines import LineMap
from axo_helper.validate.report import Issue
from axo_helper.validate.schema import load_schema, schema_errors

pytestmark = pytest.mark.axolotl

CORPUS = Path(__file__).with_name("differential_corpus.yaml")
# `--gpu` targets whose capabilities validate passes to Axolotl.
GPU_SPECS = ("h100", "8xh100")
# `plugins` names modules that axolotl_check imports and registers in Axolotl's
# process-wide PluginManager: random names would leak state into later tests.
UNGENERATED_KEYS = frozenset({"plugins"})


class MissedRejections(UserWarning):
    """Configs Axolotl rejects that the schema lets through (informational)."""


@dataclass(frozen=True)
class Case:
    name: str
    base: str
    set: Mapping[str, Any]
    drop: tuple[str, ...] = ()

    def config(self, bases: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        cfg = base_config(bases, self.base)
        cfg.update(copy.deepcopy(dict(self.set)))
        for key in self.drop:
            cfg.pop(key, None)
        return cfg


def base_config(bases: Mapping[str, Mapping[str, Any]], name: str) -> dict[str, Any]:
    return copy.deepcopy(dict(bases[name]))  # the corpus is read once: never edit it


@functools.cache
def load_corpus() -> tuple[dict[str, dict[str, Any]], list[Case]]:
    data = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    cases = [
        Case(c["name"], c["base"], c.get("set") or {}, tuple(c.get("drop") or ()))
        for c in data["cases"]
    ]
    return data["bases"], cases


class Judge:
    """Both verdicts on one config; keeps the missed rejections for the summary.

    A plain class, not a dataclass: hypothesis prints a failing test's arguments, and
    would spell out every GPU field of a dataclass.
    """

    def __init__(self, hardware: tuple[Hardware, ...]) -> None:
        self.hardware = hardware
        self.seen = 0
        self.missed: list[str] = []

    def __repr__(self) -> str:
        return f"Judge({len(self.hardware)} targets)"

    def schema(self, cfg: Mapping[str, Any]) -> list[Issue]:
        return schema_errors(cfg, lines=LineMap(""))

    def axolotl(self, cfg: Mapping[str, Any]) -> list[Issue]:
        """[] when any target accepts; else the errors of the last target."""
        errors: list[Issue] = []
        for hw in self.hardware:
            with _environ_kept():
                errors, _, _ = axolotl_check(cfg, LineMap(""), hw)
            if not errors:
                return []
        return errors

    def false_rejections(self, cfg: Mapping[str, Any], label: str) -> list[str]:
        """'label: key: message' for each schema error on a config Axolotl accepts."""
        self.seen += 1
        try:
            ours = self.schema(cfg)
        except Exception as exc:  # validate would print a traceback: always a failure
            return [f"{label}: schema_errors crashed: {type(exc).__name__}: {exc}"]
        theirs = self.axolotl(cfg)
        if theirs and not ours:
            self.missed.append(f"{label}: Axolotl says {_brief(theirs)}")
        if theirs or not ours:
            return []
        return [f"{label}: {i.path or '(top)'}: {i.message}" for i in ours]


def _brief(issues: list[Issue]) -> str:
    first = issues[0]
    return f"{first.path or '(top)'}: {first.message.splitlines()[0][:160]}"


@contextlib.contextmanager
def _environ_kept() -> Iterator[None]:
    """Undo any environment variable a validator sets, so tests stay independent."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Judge]:
    # Some validators open `deepspeed:` relative to the working directory: give them
    # an empty one, so a generated path never reads a file of the checkout.
    old = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("differential-cwd"))
    try:
        yield Judge(tuple(resolve(s) for s in GPU_SPECS))
    finally:
        os.chdir(old)


def _report_missed(judge: Judge, source: str) -> None:
    if not judge.missed:
        return
    listing = "\n  ".join(judge.missed)
    print(f"\n{source}: {len(judge.missed)} missed rejections of {judge.seen}:\n  {listing}")
    warnings.warn(
        MissedRejections(f"{source}: {len(judge.missed)} missed rejections:\n  {listing}"),
        stacklevel=2,
    )


# --- the corpus -------------------------------------------------------------------


def test_corpus_bases_are_accepted_by_axolotl(judge: Judge) -> None:
    # Each edit is judged on its own only if the base it changes is valid.
    bases, _ = load_corpus()
    for name, base in bases.items():
        assert judge.axolotl(base) == [], name


def test_corpus_is_large_and_mostly_accepted(judge: Judge) -> None:
    # A corpus Axolotl rejects wholesale could never catch a false rejection.
    bases, cases = load_corpus()
    assert len(cases) >= 60
    assert len({c.name for c in cases}) == len(cases), "case names must be unique"
    accepted = sum(not judge.axolotl(c.config(bases)) for c in cases)
    assert accepted >= len(cases) * 2 // 3, f"only {accepted} of {len(cases)} accepted"


def test_schema_never_rejects_a_hand_edit_axolotl_accepts(judge: Judge) -> None:
    bases, cases = load_corpus()
    judge.missed.clear()
    failures: list[str] = []
    for base_name, base in bases.items():
        failures += judge.false_rejections(base, f"base {base_name}")
    for case in cases:
        failures += judge.false_rejections(case.config(bases), case.name)
    _report_missed(judge, "corpus")
    assert not failures, (
        f"{len(failures)} schema errors on configs Axolotl accepts:\n  " + "\n  ".join(failures)
    )


# --- configs generated from the schema ---------------------------------------------

_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "_-./:", max_size=12)
_NUMERIC_TEXT = st.sampled_from(["0", "1", "2", "16", "-1", "0.5", "2e-4", "1.0", "1e3"])
_BOOL_TEXT = st.sampled_from(["true", "false", "True", "yes", "no"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 100), _TEXT, _NUMERIC_TEXT)


def _resolve(node: Any, root: Mapping[str, Any]) -> Any:
    """Follow local `$ref`s (`#/$defs/Name`, or any JSON pointer into the schema)."""
    hops = 0
    while isinstance(node, Mapping) and "$ref" in node and hops < 20:
        target: Any = root
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node, hops = target, hops + 1
    return node


def _integers(node: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    lo, hi = node.get("minimum", 0), node.get("maximum", 4096)
    edges = st.sampled_from(sorted({lo, lo - 1, hi, hi + 1, 0, 1}))
    ints = st.one_of(edges, st.integers(min_value=-2, max_value=5000))
    # An integral float (10.0) and a numeric string ("10") are what hand-edits hold.
    return st.one_of(ints, ints.map(float), ints.map(str))


def _numbers(node: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    floats = st.floats(min_value=-1.0, max_value=1e4, allow_nan=False, allow_infinity=False)
    small = st.sampled_from([0.0, 1e-5, 2e-4, 0.05, 0.5, 1.0, 2.0])
    return st.one_of(floats, small, _integers(node), _NUMERIC_TEXT)


def _typed(kind: str, node: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.one_of(st.booleans(), _BOOL_TEXT)
    if kind == "integer":
        return _integers(node)
    if kind == "number":
        return _numbers(node)
    if kind == "string":
        return st.one_of(_TEXT, _NUMERIC_TEXT, st.sampled_from(["", "auto", "true"]))
    if kind == "array":
        items = values(node.get("items", {}), root, depth + 1) if depth < 2 else _SCALARS
        return st.lists(items, max_size=3)
    if kind == "object":
        return _objects(node, root, depth)
    return _SCALARS


def _objects(node: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    """A few simple shapes: {}, up to 3 declared properties, or free-form pairs."""
    if depth >= 2:
        return st.just({})
    props: Mapping[str, Any] = node.get("properties") or {}
    shapes: list[st.SearchStrategy[Any]] = [st.just({})]
    if props:
        names = st.lists(st.sampled_from(sorted(props)), max_size=3, unique=True)
        shapes.append(
            names.flatmap(
                lambda ns: st.fixed_dictionaries({n: values(props[n], root, depth + 1) for n in ns})
            )
        )
    extra = node.get("additionalProperties")
    if extra not in (None, False):
        inner = values(extra if isinstance(extra, Mapping) else {}, root, depth + 1)
        shapes.append(st.dictionaries(_TEXT, inner, max_size=2))
    return st.one_of(shapes)


def values(node: Any, root: Mapping[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for one property, drawn from its schema (and the near-misses around it)."""
    node = _resolve(node, root)
    if not isinstance(node, Mapping) or not node:
        return _SCALARS  # `true` or `{}`: the schema allows anything
    branches: list[st.SearchStrategy[Any]] = []
    if "const" in node:
        branches.append(st.just(node["const"]))
    if node.get("enum"):
        branches.append(st.sampled_from(list(node["enum"])))
    for key in ("anyOf", "oneOf", "allOf"):
        branches += [values(sub, root, depth) for sub in node.get(key) or ()]
    kinds = node.get("type") or ([] if branches else ["any"])
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind == "string" and node.get("enum"):
            continue  # the enum already stands for the strings this property takes
        branches.append(_typed(kind, node, root, depth))
    branches.append(st.none())  # `key:` left empty
    return st.one_of(branches)


@functools.cache
def _schema() -> dict[str, Any]:
    return load_schema()


def _top_properties() -> Mapping[str, Any]:
    return _resolve(_schema(), _schema()).get("properties") or {}


@functools.cache
def _property_values(name: str) -> st.SearchStrategy[Any]:
    # Built once per property: the shipped schema is large, and does not change mid-run.
    return values(_top_properties()[name], _schema())


def changes_for(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Values for the named top-level properties, each drawn from its own schema."""
    return st.fixed_dictionaries({k: _property_values(k) for k in names})


@functools.cache
def generated_keys() -> list[str]:
    return sorted(set(_top_properties()) - UNGENERATED_KEYS)


@settings(
    max_examples=800,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_schema_never_rejects_a_generated_config_axolotl_accepts(
    judge: Judge, data: st.DataObject
) -> None:
    # Drawn in steps (not one mapped strategy) so a failure prints the plain values.
    bases, _ = load_corpus()
    base = data.draw(st.sampled_from(sorted(bases)), label="base")
    keys = data.draw(
        st.lists(st.sampled_from(generated_keys()), min_size=1, max_size=3, unique=True),
        label="keys",
    )
    changes = data.draw(changes_for(keys), label="changes")
    cfg = {**base_config(bases, base), **changes}
    failures = judge.false_rejections(cfg, f"{base} + {changes!r}")
    assert not failures, "schema rejects what Axolotl accepts:\n  " + "\n  ".join(failures)
