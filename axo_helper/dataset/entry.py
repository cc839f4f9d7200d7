"""The Axolotl `datasets:` entry a dataset needs: its type and field mapping.

Owns the mapping from the detected format to Axolotl's keys (field_messages and
message_property_mappings, field, or the user-defined alpaca prompt type) and
`axolotl_dataset_entry`. Model-dependent keys (chat_template, roles_to_train, ...) are
the renderer's to add.
"""

from __future__ import annotations

from typing import Any

from axo_helper.dataset.prompts import ALPACA_TURN, ALPACA_TURN_NO_INPUT
from axo_helper.dataset.shapes import INPUT_KEYS, SYSTEM_KEY, Shape, first_present
from axo_helper.specs import DataSpec


def final_fields(shape: Shape, input_keys: set[str], system: bool) -> dict[str, Any]:
    """The Axolotl field mapping for the whole dataset (see docs/dataset.md).

    input_keys, system: the alpaca input columns and whether a system column was seen
    in any row (rows of one alpaca dataset may differ in these).
    """
    if shape.type == "chat_template":
        _, field, role, content = shape.core
        return {
            "field_messages": field,
            "message_property_mappings": {"role": role, "content": content},
        }
    if shape.type == "completion":
        return {"field": "text"}
    if shape.type == "input_output":
        return {}
    _, instr, out = shape.core
    inp = first_present(INPUT_KEYS, input_keys) if input_keys else None
    if instr == "instruction" and out == "output" and inp in (None, "input") and not system:
        return {}  # plain `type: alpaca`
    # Axolotl's user-defined prompt type (axolotl.prompt_strategies.user_defined): the
    # Alpaca turn format without its preamble, or the raw prompt for prompt/completion.
    fields: dict[str, Any] = {"field_instruction": instr}
    if inp:
        fields["field_input"] = inp
    fields["field_output"] = out
    if system:
        fields["field_system"] = SYSTEM_KEY
        fields["system_format"] = "{system}\n\n"
    if instr == "prompt":
        fields["format"] = "{instruction}\n\n{input}"
        fields["no_input_format"] = "{instruction}"
    else:
        fields["format"] = ALPACA_TURN
        fields["no_input_format"] = ALPACA_TURN_NO_INPUT
    return fields


def axolotl_dataset_entry(spec: DataSpec) -> dict[str, Any]:
    """One Axolotl `datasets:` entry for `spec`: path, type and the field mapping.

    Alpaca with non-standard keys becomes Axolotl's user-defined prompt type, whose mapping
    is the value of `type:`; every other type keeps its name and puts `fields` beside it.
    Model-dependent keys (chat_template, roles_to_train, ...) are the renderer's to add.
    """
    entry: dict[str, Any] = {"path": spec.path}
    if spec.type == "alpaca" and spec.fields:
        entry["type"] = dict(spec.fields)
    else:
        entry["type"] = spec.type
        entry.update(spec.fields)
    return entry
