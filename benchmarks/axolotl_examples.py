"""Every example config of an Axolotl checkout through `axo-helper validate`.

For each examples/**/*.yml|yaml of GIT_DIR (a bare/mirror git dir, read with
`git show HEAD:path`; or a work tree, read from disk), copied alone into a temporary
folder as a user who downloaded it would have it:

1. `axo-helper validate FILE --gpu GPU --json --no-axolotl` (the real CLI, in-process);
2. `axo-helper validate FILE --gpu GPU --json` (with Axolotl's own validation);
3. Axolotl's verdict: its `validate_config`, called the way validate calls it
   (axo_helper.validate.axolotl.axolotl_check, the target GPU's capabilities).

and prints: how many configs; false rejections (rejected by 1, or by 2, while 3
accepts), by the step that rejected; missed rejections (1 accepts, 3 rejects);
crashes (a traceback or an internal error in 1, 2 or the memory step); which
configs got a memory estimate, and how many would with the schema step aside (the
memory step alone, --model included); the 10 most common rejection messages of 1. Targets: 0 false
rejections, 0 crashes. Figures only: nothing is asserted.

    .venv/bin/python benchmarks/axolotl_examples.py /work/.mirror/axolotl-ai-cloud+axolotl/repo
    .venv/bin/python benchmarks/axolotl_examples.py GIT_DIR --gpu 24GB --model meta-llama/Llama-3.1-8B
    .venv/bin/python benchmarks/axolotl_examples.py GIT_DIR --limit 20 --show

The hub is offline for the run unless HF_HUB_OFFLINE is set otherwise, so most
base models (neither a shipped preset nor cached) get no estimate without --model.
Axolotl is imported once (~10 s); plugins a config names stay registered for the
configs after it, as in one long-lived process.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUFFIXES = (".yml", ".yaml")


@dataclass
class Outcome:
    """One example config's three verdicts."""

    path: str
    ours: dict[str, Any] | None = None  # --no-axolotl report (JSON), None on a crash
    full: dict[str, Any] | None = None  # with Axolotl
    axolotl_ok: bool | None = None  # Axolotl's own verdict; None: could not judge
    axolotl_errors: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    memory_alone: str = ""  # the memory step as if the schema passed: "estimate" or why not


def example_files(git_dir: Path) -> dict[str, str]:
    """examples/**/*.yml|yaml of a checkout: relative path -> text."""
    bare = _git(git_dir, "rev-parse", "--is-bare-repository").strip() == "true"
    if not bare and (git_dir / "examples").is_dir():
        return {
            str(p.relative_to(git_dir)): p.read_text(encoding="utf-8", errors="replace")
            for p in sorted((git_dir / "examples").rglob("*"))
            if p.suffix in SUFFIXES and p.is_file()
        }
    names = _git(git_dir, "ls-tree", "-r", "--name-only", "HEAD", "examples/").splitlines()
    return {n: _git(git_dir, "show", f"HEAD:{n}") for n in sorted(names) if n.endswith(SUFFIXES)}


def _git(git_dir: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(_dot_git(git_dir)), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"error: git {' '.join(args)} failed in {git_dir}: {done.stderr.strip()}")
    return done.stdout


def _dot_git(git_dir: Path) -> Path:
    return git_dir / ".git" if (git_dir / ".git").exists() else git_dir


def run_cli(args: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """(the --json report, None) or (None, what crashed)."""
    from click.testing import CliRunner

    from axo_helper.cli import cli

    result = CliRunner().invoke(cli, ["validate", *args, "--json"], prog_name="axo-helper")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if result.exit_code not in (0, 1, 3):
        return None, f"exit {result.exit_code}: {result.stderr.strip()[-300:]}"
    try:
        return json.loads(result.stdout), None
    except ValueError:
        return None, f"no JSON report (exit {result.exit_code}): {result.stderr.strip()[-300:]}"


def axolotl_verdict(text: str, gpu: str) -> tuple[bool | None, list[str]]:
    """(accepts, errors) from Axolotl's validate_config, as validate runs it."""
    from axo_helper import hardware
    from axo_helper.errors import ConfigError
    from axo_helper.validate.axolotl import axolotl_check
    from axo_helper.validate.lines import parse_config

    try:
        data, lines = parse_config(text, "example")
    except ConfigError as exc:  # Axolotl's yaml.safe_load fails the same way
        return False, [exc.message]
    try:
        errors, _, _ = axolotl_check(data, lines, hardware.resolve(gpu))
    except Exception as exc:  # a judge that cannot judge is reported
        return None, [f"{type(exc).__name__}: {exc}"]
    return not errors, [e.format() for e in errors]


def judge(rel: str, text: str, folder: Path, args: argparse.Namespace) -> Outcome:
    out = Outcome(rel)
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    common = [str(path), "--gpu", args.gpu, *(["--model", args.model] if args.model else [])]
    out.ours, crash = run_cli([*common, "--no-axolotl"])
    if crash:
        out.crashes.append(f"--no-axolotl: {crash}")
    if not args.no_axolotl:
        out.full, crash = run_cli(common)
        if crash:
            out.crashes.append(f"with Axolotl: {crash}")
        out.axolotl_ok, out.axolotl_errors = axolotl_verdict(text, args.gpu)
    out.memory_alone = memory_alone(path, args)
    if out.memory_alone.startswith("crash"):
        out.crashes.append(f"memory step: {out.memory_alone}")
    return out


def memory_alone(path: Path, args: argparse.Namespace) -> str:
    """The memory step on its own, whatever the schema says: which configs get an
    estimate once the schema stops rejecting them (and that none crashes it)."""
    from axo_helper import hardware
    from axo_helper import model as model_mod
    from axo_helper.errors import AxoHelperError
    from axo_helper.validate.lines import parse_config
    from axo_helper.validate.memory import choose_model, memory_check

    try:
        data, _ = parse_config(path.read_text(encoding="utf-8"), str(path))
        given = model_mod.inspect(args.model) if args.model else None
        spec, _ = choose_model(data, given)
        memory_check(data, hardware.resolve(args.gpu), model=spec, config_dir=path.parent)
    except AxoHelperError as exc:
        return "no estimate: " + _bucket(exc.message)
    except Exception as exc:  # a crash of the memory path on a real config is a finding
        return f"crash: {type(exc).__name__}: {exc}"
    return "estimate"


def _bucket(message: str) -> str:
    """One line per kind of reason: "base_model X: ..." -> "base_model ...: ..."."""
    if message.startswith("base_model ") and ": " in message:
        return "base_model ...: " + message.split(": ", 1)[1][:90]
    return message[:110]


def rejecting_steps(report: dict[str, Any]) -> set[str]:
    return {str(e["source"]) for e in report["errors"]}


def summarize(outcomes: list[Outcome], seconds: float, args: argparse.Namespace) -> None:
    n = len(outcomes)
    ours_rejects = [o for o in outcomes if o.ours is not None and not o.ours["valid"]]
    print(f"configs: {n} ({seconds:.0f} s)")
    print(f"rejected by --no-axolotl: {len(ours_rejects)}")
    if not args.no_axolotl:
        accepted = [o for o in outcomes if o.axolotl_ok]
        unjudged = [o for o in outcomes if o.axolotl_ok is None]
        print(f"Axolotl accepts: {len(accepted)}, rejects: {n - len(accepted) - len(unjudged)}")
        if unjudged:
            print(f"Axolotl could not judge: {len(unjudged)}")
        false = [o for o in accepted if o in ours_rejects]
        steps = collections.Counter(s for o in false for s in rejecting_steps(o.ours or {}))
        print(f"false rejections (--no-axolotl): {len(false)}  by step: {dict(steps)}")
        false_full = [o for o in accepted if o.full is not None and not o.full["valid"]]
        print(f"false rejections (with Axolotl): {len(false_full)}")
        missed = [
            o for o in outcomes if o.axolotl_ok is False and o.ours is not None and o.ours["valid"]
        ]
        print(f"missed rejections (--no-axolotl accepts, Axolotl rejects): {len(missed)}")
        if args.show:
            for o in false:
                print(f"  false: {o.path}: {o.ours['errors'][0]['message'] if o.ours else ''}")
            for o in missed:
                print(f"  missed: {o.path}: {o.axolotl_errors[0].splitlines()[0]}")
    crashed = [o for o in outcomes if o.crashes]
    print(f"crashes: {len(crashed)}")
    for o in crashed:
        print(f"  {o.path}: {'; '.join(o.crashes)}")
    _memory_figures(outcomes, args.gpu, args.show)
    _top_messages(ours_rejects)


def _memory_figures(outcomes: list[Outcome], gpu: str, show: bool) -> None:
    with_memory = [o for o in outcomes if o.ours is not None and o.ours["memory"] is not None]
    fits = sum(1 for o in with_memory if (o.ours or {})["memory"]["fits"])
    print(f"memory estimate on {gpu} (--no-axolotl): {len(with_memory)} ({fits} fit)")
    for o in with_memory if show else ():
        m = (o.ours or {})["memory"]
        print(f"  {o.path}: {m['total_gib']:.1f} GiB, {'fits' if m['fits'] else 'does not fit'}")
    why = collections.Counter(
        _memory_note(o.ours) for o in outcomes if o.ours is not None and o.ours["memory"] is None
    )
    print("no estimate, why:")
    for note, count in why.most_common(6):
        print(f"  {count:4d}  {note}")
    alone = collections.Counter(o.memory_alone for o in outcomes)
    print(f"memory step alone (as if the schema passed): {alone.pop('estimate', 0)} estimates")
    for why_not, count in alone.most_common(6):
        print(f"  {count:4d}  {why_not}")


def _memory_note(report: dict[str, Any]) -> str:
    note = next((n for n in report["notes"] if n.startswith("memory:")), "memory: (no note)")
    head, _, tail = note.partition("base_model ")
    return head + (_bucket("base_model " + tail) if tail else "")


def _top_messages(rejected: list[Outcome]) -> None:
    messages: collections.Counter[str] = collections.Counter()
    keys: dict[str, set[str]] = collections.defaultdict(set)
    for o in rejected:
        for e in (o.ours or {})["errors"]:
            messages[e["message"]] += 1
            keys[e["message"]].add(e["path"] or "(config)")
    print("most common rejection messages (--no-axolotl):")
    for message, count in messages.most_common(10):
        where = ", ".join(sorted(keys[message])[:4]) + (", ..." if len(keys[message]) > 4 else "")
        print(f"  {count:4d}  {message[:100]}  [{where}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("git_dir", type=Path, help="Axolotl checkout (git dir or work tree)")
    parser.add_argument("--gpu", default="24GB", help="target of the memory check (24GB)")
    parser.add_argument("--model", default=None, help="validate --model for every config")
    parser.add_argument("--limit", type=int, default=None, help="only the first N configs")
    parser.add_argument("--no-axolotl", action="store_true", help="skip steps 2 and 3")
    parser.add_argument(
        "--show", action="store_true", help="list each false/missed rejection and estimate"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    os.environ["AXO_HELPER_DEBUG"] = "1"  # an internal error raises: counted as a crash
    files = example_files(args.git_dir)
    items = list(files.items())[: args.limit]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="axolotl-examples-") as tmp:
        outcomes = [judge(rel, text, Path(tmp), args) for rel, text in items]
    summarize(outcomes, time.perf_counter() - start, args)


if __name__ == "__main__":
    main()
