"""Install the lowest version of every base dependency pyproject.toml declares, and run
the plan path on it: a throwaway venv, `pip install "pkg==floor"` for each entry of
[project].dependencies, axo-helper itself with --no-deps, then plan (a preset and a hub
repository read from a fake offline cache at a --revision), render, validate --no-axolotl,
gpus, and the plan-path tests.

Only the base install is checked: the [train] extra's floors (torch, Axolotl and what
they pull in) take gigabytes and minutes to install a second time; `scripts/setup.sh`
installs and tests the versions that train.

    python scripts/check_floors.py            # about a minute with a warm pip cache
    python scripts/check_floors.py --keep DIR # leave the venv in DIR to look around

Exit status 0 when every step passes; the first failing step's output is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QA = ROOT / "axo_helper" / "demo_data" / "qa.jsonl"
# The plan path's tests that touch the dependencies (the hub, click, jinja2, jsonschema,
# rich, NVML); the planner's arithmetic is pure Python and left to the full suite.
TESTS = [
    "tests/model",
    "tests/cli",
    "tests/config/test_config_render.py",
    "tests/validate",
    "tests/test_packaging.py",
]
# Test tools, not runtime dependencies: any version the dev extra allows.
TEST_TOOLS = ["pytest>=8", "hypothesis>=6.100"]
HUB_REPO = "acme/Floor-Llama"

_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def floors(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """`name==floor` for each base dependency, from its `>=` bound; a dependency
    without one has no declared floor to test, which is an error."""
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = []
    for dep in deps:
        spec = dep.split(";")[0]
        match = _FLOOR.match(spec)
        lows = re.findall(r">=\s*([0-9][0-9A-Za-z.+-]*)", match.group(3)) if match else []
        if not match or len(lows) != 1:
            raise SystemExit(f"check_floors: {dep!r} declares no single >= floor")
        pins.append(f"{match.group(1)}=={lows[0]}")
    return pins


def _step(name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> str:
    """Run one step; its output is printed, and the check stops, when it fails."""
    start = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    print(f"  {name}: exit {done.returncode} ({time.monotonic() - start:.1f} s)", flush=True)
    if done.returncode != 0 or "Traceback" in done.stderr:
        sys.stdout.write(done.stdout[-4000:])
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"check_floors: {name} failed (exit {done.returncode})")
    return done.stdout


def _fake_hub_cache(cache: Path) -> None:
    """huggingface_hub's cache layout holding one repository at refs/v1: the real
    hf_hub_download resolves it offline, so the hub path runs without a network."""
    import yaml  # the checkout's environment; the floor venv is not needed for this

    preset = yaml.safe_load((ROOT / "presets" / "models" / "llama-3.2-1b.yaml").read_text())
    sha = "f" * 40
    repo = cache / ("models--" + HUB_REPO.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "v1").write_text(sha)
    (repo / "snapshots" / sha).mkdir(parents=True)
    (repo / "snapshots" / sha / "config.json").write_text(json.dumps(preset["config"]))


def _install(venv: Path, pins: list[str], work: Path) -> Path:
    """The floor venv: the pinned floors, the test tools, then the axo-helper wheel."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    _step(f"install {' '.join(pins)}", [*pip, *pins, *TEST_TOOLS], env)
    # The package as the wheel ships it (presets, templates), built by this interpreter's
    # hatchling when it has one (no isolated build environment to fetch).
    wheels = work / "wheel"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels)]
    if importlib.util.find_spec("hatchling") is not None:
        build.append("--no-build-isolation")
    _step("build the wheel", [*build, str(ROOT)], env)
    (wheel,) = wheels.glob("axo_helper-*.whl")
    _step("install axo-helper --no-deps", [*pip, "--no-deps", str(wheel)], env)
    listed = _step("pip list", [str(py), "-m", "pip", "list", "--format=json"], env)
    versions = {_canonical(p["name"]): p["version"] for p in json.loads(listed)}
    for pin in pins:
        name, want = pin.split("==")
        got = versions.get(_canonical(name))
        if got is None or not got.startswith(want):
            raise SystemExit(f"check_floors: {name} is {got}, not the floor {want}")
    return py


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _smoke(py: Path, work: Path) -> None:
    """The plan-path commands, then the plan-path tests, against the floor venv."""
    cache = work / "hub"
    _fake_hub_cache(cache)
    env = {
        "PATH": f"{py.parent}:/usr/bin:/bin",
        "HOME": str(work),
        "AXO_HELPER_HOME": str(work / "home"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "NO_COLOR": "1",
    }
    cli = [str(py.parent / "axo-helper")]
    llama, qwen = "meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-7B"
    data = ["--data", str(QA)]
    out = _step(
        "plan (preset)",
        [*cli, "plan", "--gpu", "rtx4090", "--model", llama, *data, "--json"],
        env,
        work,
    )
    assert json.loads(out)["method"] in ("full", "lora", "qlora", "freeze"), out
    hub = ["--model", HUB_REPO, "--revision", "v1", "--json"]
    out = _step("plan (hub cache, --revision)", [*cli, "plan", "--gpu", "24GB", *hub], env, work)
    assert json.loads(out)["revision"] == "v1", out
    config = work / "train.yml"
    render = [*cli, "render", "--gpu", "a100-80gb", "--model", qwen, *data, "-o", str(config)]
    _step("render", render, env, work)
    validate = [*cli, "validate", str(config), "--no-axolotl", "--gpu", "a100-80gb"]
    _step("validate", validate, env, work)
    done = subprocess.run(
        [*cli, "gpus"], env=env, cwd=work, capture_output=True, text=True, check=False
    )
    print(f"  gpus: exit {done.returncode} (no GPU here is exit 1; a traceback fails)")
    if "Traceback" in done.stderr or done.returncode not in (0, 1):
        raise SystemExit(f"check_floors: gpus crashed:\n{done.stderr[-4000:]}")
    # The checkout's tests against the installed package: pytest (not `python -m`) keeps
    # the checkout off sys.path, so axo_helper is the wheel's.
    pytest = [str(py.parent / "pytest"), "-q", "-x", "-p", "no:cacheprovider"]
    _step("plan-path tests", [*pytest, "-m", "not slow and not axolotl", *TESTS], env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="build the venv here and keep it")
    args = parser.parse_args(argv)
    start = time.monotonic()
    pins = floors()
    work = Path(tempfile.mkdtemp(prefix="axo-floors-"))
    venv = args.keep or work / "venv"
    if args.keep and venv.exists():
        shutil.rmtree(venv)
    try:
        print(f"check_floors: base dependencies at their floors in {venv}", flush=True)
        py = _install(venv, pins, work)
        _smoke(py, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"check_floors: passed in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
