"""Headless Chromium for the tests that check what a page shows, not only what it holds.

`layout(page, selectors)` loads a copy of the page with a small script that writes,
on the load event, each selected element's box (and whether an image decoded) into
the document title, which --dump-dom prints. `screenshot(page, ...)` photographs the
page itself at the same width, so those boxes locate the elements in the picture.
Debian's `chromium` package; .ci/run installs it.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

WIDTH = 1100
_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--no-first-run",
    "--disable-extensions",
    "--virtual-time-budget=5000",  # let the page load and its images decode first
)
_PROBE = """<script>
window.addEventListener("load", () => {
  const out = {height: document.documentElement.scrollHeight};
  for (const [name, selector] of Object.entries(SELECTORS)) {
    const el = document.querySelector(selector);
    if (!el) { out[name] = null; continue; }
    const r = el.getBoundingClientRect();
    out[name] = {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height,
                 decoded: el.tagName === "IMG" ? (el.complete && el.naturalWidth > 0) : null,
                 rows: el.tagName === "TABLE" ? el.rows.length : null};
  }
  document.title = JSON.stringify(out);
});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _run(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, *_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def layout(binary: str, page: Path, selectors: dict[str, str]) -> dict[str, Any]:
    """name -> {x, y, width, height, decoded, rows} (None: not found), and the page height."""
    probe = page.with_name(f".probe-{page.name}")
    script = _PROBE.replace("SELECTORS", json.dumps(selectors))
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"))
    try:
        dom = _run(binary, f"--window-size={WIDTH},1000", "--dump-dom", probe.as_uri()).stdout
    finally:
        probe.unlink()
    found = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert found, "chromium printed no document"
    result = json.loads(html.unescape(found.group(1)))
    assert isinstance(result, dict)
    return result


def screenshot(binary: str, page: Path, out: Path, height: int) -> Path:
    _run(binary, f"--window-size={WIDTH},{height}", f"--screenshot={out}", page.as_uri())
    assert out.is_file(), "chromium wrote no screenshot"
    return out
