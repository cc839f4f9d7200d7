"""`axo-helper render`: plan, then write the Axolotl YAML (and DeepSpeed JSON) to edit or run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from axo_helper.cli.options import plan_options, plan_request


@click.command()
@plan_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Axolotl YAML to write (a DeepSpeed JSON goes beside it when the plan uses ZeRO); "
    "- prints it on stdout instead.",
)
@click.option(
    "--output-dir",
    default=None,
    metavar="DIR",
    help="Axolotl's output_dir (default: output/ beside the YAML).",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def render(output: Path, output_dir: str | None, force: bool, **opts: Any) -> None:
    """Plan a fine-tune and write it as a commented Axolotl config.

    The file is parsed back and checked against the schema before it is written.
    Paths inside it (dataset, DeepSpeed JSON, output_dir) are absolute, because
    Axolotl resolves relative paths against the directory it runs in.

    \b
    axo-helper render --gpu rtx4090 --model meta-llama/Llama-3.1-8B --data qa.jsonl -o train.yml
    axo-helper validate train.yml
    axolotl train train.yml
    """
    from axo_helper.errors import UsageError, os_error

    if output == Path() or output.is_dir():
        raise UsageError(
            f"-o {str(output)!r} is empty or a directory",
            hint="name the YAML file to write, e.g. -o train.yml",
        )
    if opts.get("data") is None:
        raise UsageError(
            "render needs --data: the config names the dataset and its format",
            hint="pass --data PATH (a JSONL/JSON/Parquet/CSV file or a directory of them)",
        )
    from axo_helper.config.build import deepspeed_filename
    from axo_helper.config.render import render_plan, write_config
    from axo_helper.core import make_plan
    from axo_helper.output import info, warn
    from axo_helper.shell import command

    plan = make_plan(plan_request(opts))
    to_stdout = str(output) == "-"
    target = (Path.cwd() / "train.yml") if to_stdout else output.expanduser().resolve()
    s = plan.setup
    ds_path = None
    if s.distributed in ("zero1", "zero2", "zero3"):
        ds_path = str(target.parent / deepspeed_filename(s.distributed, s.cpu_offload))
    rendered = render_plan(
        plan,
        output_dir=str(Path(output_dir).expanduser().resolve())
        if output_dir
        else str(target.parent / "output"),
        dataset_path=str(Path(opts["data"]).expanduser().resolve()),
        dataset_prepared_path=str(target.parent / "prepared"),
        deepspeed_path=ds_path,
        config_name="train.yml" if to_stdout else str(output),
    )
    if to_stdout:
        # `-o -`: the YAML on stdout (paths as if it were ./train.yml), nothing written
        if rendered.deepspeed_json is not None:
            raise UsageError(
                f"{s.distributed} needs its DeepSpeed JSON beside the YAML: it cannot go to stdout",
                hint="pass -o FILE (the JSON is written next to it)",
            )
        for message in plan.warnings:
            warn(message)
        click.echo(rendered.yaml_text, nl=False)
        return
    try:
        written = write_config(rendered, target, force=force)
    except OSError as exc:
        raise os_error(exc, target) from None
    for message in plan.warnings:
        warn(message)
    for path in written:
        click.echo(f"wrote {path}")
    info(f"check it after editing: {command('axo-helper', 'validate', output)}")
