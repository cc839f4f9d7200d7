"""What an index page shows: project.urls, absolute README links that lead to files of
the tree, the licence the metadata declares, py.typed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _base() -> str:
    """The site every project URL lives under (scheme and host of Homepage)."""
    home = urlparse(PROJECT["urls"]["Homepage"])
    return f"{home.scheme}://{home.netloc}/"


def test_project_urls_are_https_under_one_homepage() -> None:
    urls = PROJECT["urls"]
    assert {"Homepage", "Documentation", "Changelog"} <= set(urls)
    for key, url in urls.items():
        assert url.startswith("https://"), key
        assert url.rstrip("/") + "/" == _base() or url.startswith(_base()), key
    for key in ("Documentation", "Changelog"):
        assert (ROOT / urls[key].removeprefix(_base())).is_file(), urls[key]


def test_readme_links_are_absolute_and_lead_into_the_tree() -> None:
    links = LINK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert links, "README has no links to check"
    relative = [u for u in links if not urlparse(u).scheme]
    assert relative == [], "relative links break on an index page"
    ours = [u for u in links if u.startswith(_base())]
    assert len(ours) >= 10  # the documentation list
    for url in ours:
        target = ROOT / urlparse(url).path.lstrip("/")
        assert target.is_file(), f"{url}: no {target.relative_to(ROOT)} in the tree"


def test_the_licence_file_is_the_declared_one() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert PROJECT["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "License :: OSI Approved :: Apache Software License" in PROJECT["classifiers"]


def test_typed_package_and_its_classifier() -> None:
    assert (ROOT / "axo_helper" / "py.typed").is_file()
    assert "Typing :: Typed" in PROJECT["classifiers"]
    python = PROJECT["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {python}" in PROJECT["classifiers"]
