"""StorageCounter: storages, not tensors, hold memory; views and aliases count once."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

from axo_helper.trace.counter import StorageCounter  # noqa: E402


def test_views_share_one_storage_and_freed_tensors_leave_the_count() -> None:
    fake, counter = FakeTensorMode(), StorageCounter()
    with fake, counter:
        a = torch.empty((1024, 1024), dtype=torch.float32)  # 4 MiB
        v = a.view(-1)[::2]  # a view: same storage
        b = a.to(torch.bfloat16)  # a copy: 2 MiB more
        assert counter.total == 6 * 2**20
        del a, v
        c = torch.empty(10)  # any op sweeps expired storages
        assert counter.total == 2 * 2**20 + c.untyped_storage().nbytes()
    assert counter.peak == 6 * 2**20
    del b


def test_tagged_storages_leave_the_step_total_and_the_peak_remembers_its_entries() -> None:
    fake, counter = FakeTensorMode(), StorageCounter()
    with fake, counter:
        counter.phase = "forward"
        grad = torch.empty((256, 256), dtype=torch.float32)  # 256 KiB
        counter.tag(grad, "gradient")
        act = torch.empty((512, 256), dtype=torch.float32)  # 512 KiB
        assert counter.untagged == act.untyped_storage().nbytes()
        assert counter.total == 768 * 1024
        counter.mark("gradient")
    assert counter.marks["gradient"] == 256 * 1024
    assert counter.step_peak["forward"] == 512 * 1024
    snap = counter.snapshot("forward", step=True)
    assert snap.total == 512 * 1024
    del grad, act


def test_resize_counts_a_stand_in_at_its_real_size() -> None:
    fake, counter = FakeTensorMode(), StorageCounter()
    with fake:
        w = torch.empty((1000, 1000), dtype=torch.bfloat16)
    counter.adopt(w, "weight")
    counter.resize(w, 516_000)  # an NF4 weight of a million parameters
    assert counter.total == 516_000
    assert counter.untagged == 0
