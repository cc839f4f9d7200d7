"""The data and chat blocks of the config: the `datasets:` entry (dataset.axolotl_dataset_entry
with the path, `ds_type` and `roles_to_train`), where tokenized data goes, the eval split,
and the chat keys the planner's ChatChoice decided."""

from __future__ import annotations

from typing import Any

from axo_helper.config.sheet import Sheet, chat_of, settings_of
from axo_helper.config.templating import comment_text
from axo_helper.dataset import axolotl_dataset_entry
from axo_helper.errors import ConfigError
from axo_helper.specs import ChatChoice, DataSpec, Plan

_DS_TYPE_BY_FORMAT = {
    "jsonl": "json",
    "json": "json",
    "parquet": "parquet",
    "csv": "csv",
    "txt": "text",
}


def dataset_entry(data: DataSpec, dataset_path: str) -> dict[str, Any]:
    """The `datasets:` entry: dataset.axolotl_dataset_entry's type and field mapping,
    with the path as the config must name it, `ds_type` from the file format, and
    `roles_to_train` for conversations."""
    entry: dict[str, Any] = {"path": dataset_path}
    ds_type = _DS_TYPE_BY_FORMAT.get(data.file_format)
    if ds_type:
        entry["ds_type"] = ds_type
    entry.update((k, v) for k, v in axolotl_dataset_entry(data).items() if k != "path")
    if data.type == "chat_template":
        entry["roles_to_train"] = ["assistant"]
    return entry


def data_keys(
    sheet: Sheet,
    plan: Plan,
    dataset_path: str,
    dataset_prepared_path: str,
    val_set_size: float | None,
) -> None:
    data = plan.data
    if data is None:
        raise ConfigError(
            "rendering a config needs the dataset's format",
            hint="pass --data PATH so axo-helper can detect it",
        )
    entry = dataset_entry(data, dataset_path)
    sheet.put("datasets", [entry], f"{data.type}, {data.rows:,} rows")
    if data.type == "chat_template":
        chat_keys(sheet, entry, chat_of(plan))
    sheet.put("dataset_prepared_path", dataset_prepared_path, "tokenized data is cached here")
    if val_set_size is None:
        sheet.put_setting("val_set_size", settings_of(plan).val_set_size)
    else:
        sheet.put("val_set_size", val_set_size, "as requested")
    sheet.put("train_on_inputs", False, "loss on the answers only, not the prompts")


def chat_keys(sheet: Sheet, entry: dict[str, Any], chat: ChatChoice) -> None:
    """chat.decide's keys with its reasons (lora_modules_to_save is the TrainSetup's)."""
    why = chat.reasons
    sheet.put("chat_template", chat.template, why.get("chat_template"))
    for key, value in (
        ("eot_tokens", list(chat.eot_tokens)),
        ("special_tokens", {"eos_token": chat.eos_token} if chat.eos_token else None),
        ("tokens", list(chat.added_tokens)),
    ):
        if value:
            sheet.put(key, value, why.get(key))
    if chat.drop_system_message:  # a dataset key in Axolotl: said in the datasets comment
        entry["drop_system_message"] = True
        sheet.why["datasets"] += "; " + comment_text(why["drop_system_message"])
