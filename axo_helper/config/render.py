"""Plan -> a commented Axolotl YAML (and a DeepSpeed JSON when the plan shards with ZeRO).

The values come from build.build_config as one plain dict; templates/axolotl.yml.j2
only lays them out in sections with a reason beside each. After rendering, the text
is parsed back and must equal that dict exactly, then it passes the JSON Schema: a
template slip or a hostile string (a model id with `: ` or a newline in it) fails
loudly here instead of producing a config that means something else.

No torch or Axolotl import: render works without the [train] extra.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from axo_helper import __version__
from axo_helper.config.build import build_config
from axo_helper.config.templating import comment_text, render_template
from axo_helper.errors import ConfigError, OutputExistsError
from axo_helper.specs import Plan

YAML_TEMPLATE = "axolotl.yml.j2"


@dataclass(frozen=True)
class RenderedConfig:
    """A rendered, parsed-back and schema-valid config, not yet written."""

    yaml_text: str
    config: dict[str, Any]  # == yaml.safe_load(yaml_text)
    deepspeed_json: str | None = None
    deepspeed_filename: str | None = None  # written beside the YAML by write_config
    warnings: tuple[str, ...] = ()


def render_deepspeed(distributed: str, *, cpu_offload: bool = False) -> str:
    """The DeepSpeed JSON for zero1/zero2/zero3 (optionally with CPU offload).

    Batch sizes, clipping and precision are "auto": the HF Trainer fills them from the
    YAML, so a hand edit of micro_batch_size never disagrees with the JSON.
    """
    if distributed not in ("zero1", "zero2", "zero3"):
        raise ValueError(f"no DeepSpeed template for {distributed!r}")
    text = render_template(f"deepspeed/{distributed}.json.j2", offload=cpu_offload)
    json.loads(text)  # a template slip fails here, not inside DeepSpeed
    return text


def _summary(plan: Plan) -> list[str]:
    s = plan.setup
    method = {
        "full": "full fine-tune",
        "lora": f"LoRA r={s.lora_r}",
        "qlora": f"QLoRA r={s.lora_r}",
        "freeze": f"partial fine-tune (last {s.model.num_layers - s.frozen_layers} blocks)",
    }[s.method]
    lines = [
        f"{method} of {plan.model.name} on {plan.hardware.describe()}",
        f"{s.precision}, {s.attn_implementation}, sequence_len {s.sequence_len}"
        + (" (packed)" if s.sample_packing else "")
        + f", gradient checkpointing {'on' if s.gradient_checkpointing else 'off'}, {s.optimizer}",
        f"micro batch {s.micro_batch_size} x accumulation {plan.gradient_accumulation_steps} x {s.num_gpus} GPU"
        f" = {plan.effective_batch}; distributed: {s.distributed}",
        f"predicted peak {plan.memory.total_gib:.1f} GiB per GPU of a {plan.budget_gib:.1f} GiB budget"
        + (f" (calibrated from {plan.calibrated_from} runs)" if plan.calibrated_from else ""),
    ]
    if plan.steps_per_epoch and plan.seconds_per_epoch:
        lines.append(
            f"about {plan.steps_per_epoch:,} steps and {plan.seconds_per_epoch / 3600:.1f} h per epoch (estimate)"
        )
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    return [comment_text(line) for line in lines]


def render_plan(
    plan: Plan,
    *,
    output_dir: str,
    dataset_path: str,
    run_dir: str | None = None,
    dataset_prepared_path: str = "last_run_prepared",
    deepspeed_path: str | None = None,
    val_set_size: float | None = None,
    config_name: str = "train.yml",
    overrides: Mapping[str, Any] | None = None,
    created: _dt.date | None = None,
) -> RenderedConfig:
    """Render `plan` into a commented Axolotl YAML, parse it back and check it.

    output_dir, dataset_path, dataset_prepared_path and deepspeed_path are written as
    given: Axolotl resolves relative paths against its working directory.
    run_dir: when given, the config lists axo-helper's plugin with `axo_helper_run_dir`
    (the plugin is left out otherwise, so the file does not depend on it).
    config_name: the file name the header's commands refer to.
    """
    cfg, why = build_config(
        plan,
        output_dir=output_dir,
        dataset_path=dataset_path,
        run_dir=run_dir,
        dataset_prepared_path=dataset_prepared_path,
        deepspeed_path=deepspeed_path,
        val_set_size=val_set_size,
        overrides=overrides,
    )
    text = render_template(
        YAML_TEMPLATE,
        cfg=cfg,
        why=why,
        version=__version__,
        created=(created or _dt.date.today()).isoformat(),
        summary=_summary(plan),
        config_name=comment_text(config_name),
        extra_keys=[k for k in cfg if k in (overrides or {})],
    )
    _check_parsed_back(cfg, text)
    ds_json = ds_name = None
    if plan.setup.distributed in ("zero1", "zero2", "zero3"):
        ds_json = render_deepspeed(plan.setup.distributed, cpu_offload=plan.setup.cpu_offload)
        ds_name = Path(str(cfg["deepspeed"])).name
    return RenderedConfig(
        yaml_text=text,
        config=cfg,
        deepspeed_json=ds_json,
        deepspeed_filename=ds_name,
        warnings=tuple(plan.warnings),
    )


def _check_parsed_back(cfg: dict[str, Any], text: str) -> None:
    """The text must read back as exactly `cfg` and pass the JSON Schema."""
    parsed = yaml.safe_load(text)
    if parsed != cfg:
        # A template bug, never the user's fault: say which keys differ.
        missing = sorted(set(cfg) - set(parsed or {}))
        extra = sorted(set(parsed or {}) - set(cfg))
        changed = sorted(k for k in cfg if k in (parsed or {}) and parsed[k] != cfg[k])
        raise AssertionError(
            f"rendered YAML differs from the plan: missing {missing}, extra {extra}, changed {changed}"
        )

    # Local: the validate package reads configs through axo_helper.config.
    from axo_helper.validate.schema import schema_errors

    errors = schema_errors(parsed, text)
    if errors:
        raise ConfigError(
            "the rendered config does not pass the schema: "
            + "; ".join(e.format() for e in errors),
            hint="this is a bug in axo-helper; please report it with the plan (--json)",
        )


def write_config(rendered: RenderedConfig, path: str | Path, force: bool = False) -> list[Path]:
    """Write the YAML (and the DeepSpeed JSON beside it) atomically.

    Refuses to overwrite either file without force; checks both before writing
    either, so a refusal leaves nothing half-written. Returns the paths written.
    """
    from axo_helper.atomic import atomic_write_text

    target = Path(path)
    outputs: list[tuple[Path, str]] = [(target, rendered.yaml_text)]
    if rendered.deepspeed_json is not None and rendered.deepspeed_filename:
        outputs.append((target.parent / rendered.deepspeed_filename, rendered.deepspeed_json))
    if not force:
        for p, _ in outputs:
            if p.exists():
                raise OutputExistsError(f"{p} already exists", hint="pass --force to overwrite it")
    # The JSON first: a YAML on disk always has its DeepSpeed file next to it.
    for p, text in reversed(outputs):
        atomic_write_text(p, text, force=True)
    return [p for p, _ in outputs]
