"""Units and the literal types every value object uses."""

from __future__ import annotations

from typing import Literal

GIB = 1024**3

Method = Literal["full", "lora", "qlora"]
Precision = Literal["bf16", "fp16", "fp32"]
Attention = Literal["flash_attention_2", "sdpa", "eager"]
Distributed = Literal["none", "ddp", "zero1", "zero2", "zero3", "fsdp"]
DatasetType = Literal["alpaca", "chat_template", "completion", "input_output"]

METHODS: tuple[Method, ...] = ("full", "lora", "qlora")
DISTRIBUTED: tuple[Distributed, ...] = ("none", "ddp", "zero1", "zero2", "zero3", "fsdp")
