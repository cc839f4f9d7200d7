"""The one Jinja environment and its filters: every template axo-helper writes goes through it.

`yaml` writes a value as a single-line YAML node that reads back as exactly that
value, `comment` / `comment_text` keep reasons on one comment line, `modelfile` writes
one Ollama Modelfile argument, `shell` quotes for a POSIX shell. The environment is
StrictUndefined and not autoescaped (YAML, JSON, Markdown and Modelfiles, not HTML).
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any

import jinja2
import yaml

from axo_helper.resources import templates_dir

# Characters PyYAML treats as line breaks (YAML 1.1): a comment must not contain them,
# or the rest of the "comment" becomes YAML.
_LINE_BREAKS = re.compile(r"[\r\n\x85\u2028\u2029]+")
# Plain scalars that YAML 1.1 (PyYAML, Axolotl) reads as strings but YAML 1.2 readers
# (editors, other tools) read as numbers or booleans: quote them so every reader agrees.
_AMBIGUOUS_PLAIN = re.compile(
    r"^([-+.]?[0-9]|\.(inf|nan)$|(true|false|null|yes|no|on|off|y|n|~)$)", re.I
)


def yaml_value(value: Any) -> str:
    """A YAML flow node that reads back as exactly `value` (the `yaml` filter).

    Strings that cannot stay on one line (newlines, YAML 1.1 line breaks such as
    U+2028) are double-quoted with escapes, so a value never spills into the next
    line; strings that would read as something else are quoted.
    """
    text = _dump(value, style=None)
    if isinstance(value, str) and (
        "\n" in text
        or _LINE_BREAKS.search(text)
        or (text == value and _AMBIGUOUS_PLAIN.match(value))
    ):
        text = _dump(value, style='"')
    if "\n" in text or _LINE_BREAKS.search(text):
        text = _dump(value, style='"')
    # The guarantee the rest of the module relies on; cheap, so always checked.
    if yaml.safe_load(f"k: {text}\n") != {"k": value}:
        raise ValueError(f"cannot render {value!r} as a single-line YAML value")
    return text


def _dump(value: Any, style: str | None) -> str:
    text = yaml.safe_dump(
        value,
        default_flow_style=True,
        default_style=style,
        allow_unicode=True,
        width=2**31 - 1,
        sort_keys=False,
    )
    # A lone scalar document ends with "...": drop the end marker and the newline.
    if text.endswith("\n...\n"):
        text = text[: -len("\n...\n")]
    return text.rstrip("\n")


def comment_text(text: Any) -> str:
    """One line of comment text: no line breaks, so nothing after it turns into YAML."""
    return _LINE_BREAKS.sub(" ", str(text)).strip()


def _comment(reason: Any) -> str:
    """`  # reason`, or nothing when there is no reason (the `comment` filter)."""
    if reason is None or reason == "":
        return ""
    return "  # " + comment_text(reason)


def modelfile_value(value: Any, prefer: str = "raw") -> str:
    """`value` written as one Ollama Modelfile argument (the `modelfile` filter).

    A Modelfile has no escapes: an argument is raw, in double quotes or in triple
    double quotes, and Ollama's parser ends it at the first line break where the text
    so far is a complete argument. A chat template or a name holding triple quotes or
    a newline could otherwise end a TEMPLATE early and turn its rest into commands.
    The argument is written in the first form (`prefer`: "raw", "double" or "triple",
    then the others in that order) that reads back as exactly `value`; ValueError when
    none does: a line of a multi-line value ends in triple quotes, or the value holds
    control characters, which Ollama drops.
    """
    text = str(value)
    forms = {"raw": text, "double": f'"{text}"', "triple": f'"""{text}"""'}
    for style in dict.fromkeys((prefer, "raw", "double", "triple")):
        if _modelfile_reads(forms[style]) == text:
            return forms[style]
    raise ValueError(f"cannot write {text!r} as a Modelfile value")


def _modelfile_reads(written: str) -> str | None:
    """What Ollama's parser (parser/parser.go) reads from `CMD <written>` + newline;
    None when the argument ends before `written` does or never ends."""
    buf: list[str] = []
    end = len(written)
    for i, ch in enumerate(written + "\n"):
        if ch in "\r\n":
            got = _modelfile_unquote("".join(buf).strip())
            if got is not None:
                return got if i == end else None
            buf.append(ch)
        elif ch == "\t" or ch.isprintable():  # the parser drops other control characters
            buf.append(ch)
    return None


def _modelfile_unquote(text: str) -> str | None:
    if text.startswith('"""'):
        return text[3:-3] if len(text) >= 6 and text.endswith('"""') else None
    if text.startswith('"'):
        return text[1:-1] if len(text) >= 2 and text.endswith('"') else None
    return text


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: StrictUndefined (a missing value is an error, never
    an empty string), no autoescape (YAML, JSON, Markdown and Modelfiles, not HTML)."""
    root = Path(str(templates_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yaml"] = yaml_value
    env.filters["comment"] = _comment
    env.filters["comment_text"] = comment_text
    env.filters["modelfile"] = modelfile_value
    env.filters["shell"] = shlex.quote
    return env


def render_template(name: str, /, **context: Any) -> str:
    """templates/`name` rendered through the one environment; a context key the
    template uses but was not given is an error (StrictUndefined)."""
    return environment().get_template(name).render(**context)
