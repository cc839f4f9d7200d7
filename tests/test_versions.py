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
