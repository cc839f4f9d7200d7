"""The `axo-helper` command group.

Each command lives in its own module and is imported only when it runs, so
`axo-helper --help` and `axo-helper plan` never pay for the others' imports.
Commands parse options, call one core function and format its result.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import click

from axo_helper import __version__
from axo_helper.errors import EXIT_FAILURE, AxoHelperError, Interrupted

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "gpus": "axo_helper.cli.gpus:gpus",
    "plan": "axo_helper.cli.plan:plan",
    "render": "axo_helper.cli.render:render",
    "validate": "axo_helper.cli.validate:validate",
    "run": "axo_helper.cli.run:run",
    "demo": "axo_helper.cli.demo:demo",
    "export": "axo_helper.cli.export:export",
    "calibration": "axo_helper.cli.calibration:calibration",
    "trace": "axo_helper.cli.trace:trace",
    "report": "axo_helper.cli.report:report",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not self._available(cmd_name):
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        # The group's own options (`axo-helper --bogus`): the same two-line error.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            report_usage_error(exc)
            raise click.exceptions.Exit(exc.exit_code) from None

    def invoke(self, ctx: click.Context) -> Any:
        # One place turns a user mistake into a message and its documented exit code.
        try:
            return super().invoke(ctx)
        except AxoHelperError as exc:
            report_error(exc)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            # A subcommand's bad option or a missing one: click would print its usage
            # block and "Error: ..."; every error here is "error:" + "hint:" instead.
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            report_usage_error(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(Interrupted.exit_code)
        except OSError as exc:
            # A disk that is full or read-only, a parent that is a file: not a bug.
            from axo_helper.errors import os_error

            err = os_error(exc, exc.filename or "a file")
            report_error(err)
            ctx.exit(err.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            # Not a user mistake: a bug, or a library failing in a way we did not
            # foresee. One line plus how to get the traceback, unless asked for it.
            if os.environ.get("AXO_HELPER_DEBUG"):
                raise
            report_error(
                AxoHelperError(
                    f"internal error: {type(exc).__name__}: {exc}",
                    hint="this is a bug in axo-helper; rerun with AXO_HELPER_DEBUG=1 "
                    "for the traceback and report it",
                )
            )
            ctx.exit(EXIT_FAILURE)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="axo-helper")
def cli() -> None:
    """Plan, render, check and run Axolotl fine-tuning jobs that fit your GPU.

    \b
    axo-helper plan --gpu auto --model meta-llama/Llama-3.1-8B --data qa.jsonl
    axo-helper run  --gpu auto --model meta-llama/Llama-3.1-8B --data qa.jsonl
    axo-helper validate train.yml --gpu rtx4090
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="axo-helper")


def report_error(exc: AxoHelperError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"  hint: {exc.hint}", err=True)


def report_usage_error(exc: click.UsageError) -> None:
    message = exc.format_message().rstrip(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    command = exc.ctx.command_path if exc.ctx is not None else "axo-helper"
    click.echo(f"error: {message}", err=True)
    click.echo(f"  hint: see '{command} --help'", err=True)
