"""Units and the literal types every value object uses."""

from __future__ import annotations

from typing import Literal

GIB = 1024**3

Method = Literal["full", "lora", "qlora", "freeze"]
Precision = Literal["bf16", "fp16", "fp32"]
Attention = Literal["flash_attention_2", "sdpa", "eager"]
Distributed = Literal["none", "ddp", "zero1", "zero2", "zero3", "fsdp"]
DatasetType = Literal["alpaca", "chat_template", "completion", "input_output"]

METHODS: tuple[Method, ...] = ("full", "lora", "qlora", "freeze")
# Methods that train the base's own weights (no adapter): "freeze" trains the last
# blocks of the base and keeps the rest frozen; both export a full model.
FULL_WEIGHT_METHODS: tuple[Method, ...] = ("full", "freeze")
DISTRIBUTED: tuple[Distributed, ...] = ("none", "ddp", "zero1", "zero2", "zero3", "fsdp")
