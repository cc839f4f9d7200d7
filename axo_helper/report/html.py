"""report.html: templates/report.html.j2 filled with the `report --json` object and the
figures drawn from it.

Its own Jinja environment: config/templating.py's writes YAML and Markdown and does
not escape; a web page must, since prompts and answers are the model's free text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jinja2

from axo_helper.config.templating import yaml_value
from axo_helper.report import plots
from axo_helper.report.missing import Missing
from axo_helper.resources import templates_dir

TEMPLATE = "report.html.j2"


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: `digits` significant digits, "—" when there is none."""
    if value is None:
        return "—"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"
    return str(value)


def _figure(
    draw: Callable[[Mapping[str, Any]], str], data: Mapping[str, Any]
) -> dict[str, str | None]:
    try:
        return {"uri": draw(data), "missing": None}
    except Missing as gap:
        return {"uri": None, "missing": gap.reason}


def figures(report: Mapping[str, Any]) -> dict[str, dict[str, str | None]]:
    """Every figure of the page: {"uri": data URI} or {"missing": why}."""
    return {
        "loss": _figure(plots.loss_figure, report["training"]),
        "speed": _figure(plots.speed_figure, report["training"]),
        "memory": _figure(plots.memory_figure, report["memory"]),
        "eval": _figure(plots.eval_figure, report["evaluation"]),
    }


def render_html(report: Mapping[str, Any], drawn: Mapping[str, Any]) -> str:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["fmt"] = fmt
    env.filters["yaml"] = yaml_value  # a config value as the YAML writes it
    source = (templates_dir() / TEMPLATE).read_text(encoding="utf-8")
    return env.from_string(source).render(r=report, figures=drawn)
