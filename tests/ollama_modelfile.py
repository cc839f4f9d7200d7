"""Ollama's Modelfile parser (parser/parser.go, ParseFile), ported state by state.

The tests read the Modelfiles export writes with it, so a value that would end a
TEMPLATE early or smuggle in a command is caught the way `ollama create` would see
it. Written independently of axo_helper.config.templating.modelfile_value on purpose.
"""

from __future__ import annotations

COMMANDS = {
    "from", "license", "template", "system", "adapter", "draft", "renderer", "parser",
    "parameter", "message", "requires",
}  # fmt: skip
_NIL, _NAME, _VALUE, _PARAMETER, _COMMENT = range(5)


def _unquote(text: str) -> str | None:
    if text.startswith('"""'):
        return text[3:-3] if len(text) >= 6 and text.endswith('"""') else None
    if text.startswith('"'):
        return text[1:-1] if len(text) >= 2 and text.endswith('"') else None
    return text


def _alpha(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def parse(text: str) -> list[tuple[str, str]]:
    """(name, argument) per command, named as Ollama does: FROM is "model", a
    PARAMETER is its own name ("stop"). ValueError where Ollama reports an error."""
    commands: list[tuple[str, str]] = []
    state, buf, name = _NIL, "", ""
    for ch in text:
        if state == _NIL:
            nxt, keep = (
                (_COMMENT, "") if ch == "#" else (_NIL, "") if ch in " \t\r\n" else (_NAME, ch)
            )
        elif state == _NAME:
            if not (_alpha(ch) or ch in " \t"):
                raise ValueError(f"invalid command {buf + ch!r}")
            nxt, keep = (_NAME, ch) if _alpha(ch) else (_VALUE, "")
        elif state == _PARAMETER:
            if not (_alpha(ch) or (ch.isdigit() and ch.isascii()) or ch in "_ \t"):
                raise ValueError(f"invalid parameter {buf + ch!r}")
            nxt, keep = (_VALUE, "") if ch in " \t" else (_PARAMETER, ch)
        elif state == _VALUE:
            nxt, keep = (_NIL if ch in " \t\r\n" else _VALUE), ch
        else:
            nxt, keep = (_NIL if ch in "\r\n" else _COMMENT), ""
        if nxt != state:
            if state == _NAME:
                if buf.lower() not in COMMANDS:
                    raise ValueError(f"invalid command {buf!r}")
                name = {"from": "model"}.get(buf.lower(), buf.lower())
                if name == "parameter":
                    nxt = _PARAMETER
            elif state == _PARAMETER:
                name = buf
            elif state == _VALUE:
                value = _unquote(buf.strip())
                if value is None or ch in " \t":
                    buf += ch  # inside quotes, or a space: the argument goes on
                    continue
                commands.append((name, value))
            buf, state = "", nxt
        if keep and keep.isprintable():
            buf += keep
    if state == _VALUE:
        value = _unquote(buf.strip())
        if value is None:
            raise ValueError(f"unexpected end of file in {buf!r}")
        commands.append((name, value))
    elif state not in (_NIL, _COMMENT):
        raise ValueError("unexpected end of file")
    if not any(n == "model" for n, _ in commands):
        raise ValueError("no FROM line")
    return commands
