"""Version reporting and the "is Axolotl installed" check (axo_helper.versions)."""

from __future__ import annotations

import importlib.util

import pytest

from axo_helper import __version__, versions


def test_versions_lists_the_whole_stack() -> None:
    got = versions.versions()
    assert got["axo-helper"] == __version__
    assert list(got)[1:] == list(versions.DISTRIBUTIONS)
    assert versions.version("no-such-distribution-xyz") is None


@pytest.mark.parametrize("error", [ValueError, ImportError, ModuleNotFoundError])
def test_installed_checks_never_raise(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    assert versions.plugin_available() is (
        importlib.util.find_spec("axo_helper.plugin") is not None
    )

    # A half-removed install: find_spec raises instead of returning None, as validate's
    # own axolotl check expects too.
    def broken(name: str) -> None:
        raise error(name)

    monkeypatch.setattr(importlib.util, "find_spec", broken)
    assert versions.axolotl_installed() is False
    assert versions.plugin_available() is False


@pytest.mark.parametrize(
    ("installed", "warns"),
    [
        ("0.19.0", False),
        ("0.21.3", False),
        ("0.21.0rc1", False),
        ("0.18.9", True),
        ("0.22.0", True),
        ("0.22.0.dev0", True),
        ("1.0", True),
        ("not-a-version", True),
    ],
)
def test_axolotl_outside_the_supported_range_warns(installed: str, warns: bool) -> None:
    warning = versions.axolotl_version_warning(installed)
    assert (warning is not None) is warns, warning
    if warning:
        assert installed in warning and "axolotl>=0.19,<0.22" in warning


def test_no_range_warning_without_axolotl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "version", lambda dist: None)
    assert versions.axolotl_version_warning() is None
    monkeypatch.setattr(versions, "version", lambda dist: "0.30.0")
    assert "0.30.0" in (versions.axolotl_version_warning() or "")


def test_the_supported_range_is_the_train_extras_pin() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    pins = [
        d for d in pyproject["project"]["optional-dependencies"]["train"] if d.startswith("axolotl")
    ]
    assert pins == ["axolotl" + ",".join(versions.SUPPORTED_AXOLOTL)]
