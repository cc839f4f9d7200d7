"""TokenCounter: non-padding training tokens, counted by a forward pre-hook."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.axolotl
pytest.importorskip("torch")
pytest.importorskip("axolotl")

import torch  # noqa: E402

from axo_helper.plugin.tokens import TokenCounter  # noqa: E402


def test_token_counter_counts_non_padding_tokens() -> None:
    class Model(torch.nn.Module):
        def forward(self, input_ids: Any = None, attention_mask: Any = None) -> None:
            return None

    model = Model()
    counter = TokenCounter(pad_token_id=0)
    counter.attach(model)
    assert counter.take() is None
    # packed rows: attention_mask holds sequence ids, not 0/1
    model(input_ids=torch.ones(2, 4), attention_mask=torch.tensor([[1, 1, 2, 0], [1, 2, 3, 3]]))
    model(input_ids=torch.tensor([[5, 6, 0, 0]]))  # no mask: pad id
    assert counter.take() == 9
    model.eval()
    model(input_ids=torch.ones(1, 8))  # evaluation is not training throughput
    assert counter.take() == 0
    counter.detach()
