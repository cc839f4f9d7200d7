"""A stand-in for the `pynvml` module (nvidia-ml-py), for tests.

Only the functions axo_helper.hardware.nvml calls, with the same names, arguments and
return shapes as nvidia-ml-py 12.x; the code under test is the real reader. Install
it with `install(monkeypatch, fake)`, which patches the package's seam
`axo_helper.hardware._load_nvml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

GIB = 1024**3
MIB = 1024**2

# nvidia-ml-py's return codes for the errors the tests raise.
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13


class NVMLError(Exception):
    """Like pynvml.NVMLError: carries `value` (the return code); str() is the message."""

    _messages: ClassVar[dict[int, str]] = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    }

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self._messages.get(self.value, f"NVML Error with code {self.value}")


@dataclass
class FakeGPU:
    name: str
    total_mib: int
    used_mib: int = 0  # held by other processes
    cc: tuple[int, int] | None = (8, 9)
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    reserved_mib: int = 0  # the driver's own reserve (counted in v1 `used`, not in v2)


class FakeNVML:
    """The module object: `fake.nvmlInit()`, `fake.NVMLError`, ... as on pynvml."""

    NVMLError = NVMLError
    nvmlMemory_v2 = 0x02000028  # pynvml's version tag for nvmlDeviceGetMemoryInfo_v2

    def __init__(
        self,
        gpus: list[FakeGPU],
        *,
        driver: str | bytes = "550.54.15",
        init_error: int | None = None,
        memory_v2: bool = True,
        fail_on: str | None = None,
    ) -> None:
        self.gpus = gpus
        self.driver = driver
        self.init_error = init_error
        self.memory_v2 = memory_v2  # False: an old driver without nvmlDeviceGetMemoryInfo_v2
        self.fail_on = fail_on  # name of a function that raises NVMLError(Unknown)
        self.initialized = False
        self.init_calls = 0
        self.shutdown_calls = 0

    # -- lifecycle
    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self._check("nvmlShutdown")
        self.shutdown_calls += 1
        self.initialized = False

    # -- queries
    def _check(self, fn: str) -> None:
        if not self.initialized:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        if self.fail_on == fn:
            raise NVMLError(999)

    def _gpu(self, handle: Any) -> FakeGPU:
        kind, index = handle
        assert kind == "handle", "the code passed something other than a handle"
        return self.gpus[index]

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._check("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return ("handle", index)

    def nvmlDeviceGetName(self, handle: Any) -> str:
        self._check("nvmlDeviceGetName")
        return self._gpu(handle).name

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        self._check("nvmlDeviceGetUUID")
        return self._gpu(handle).uuid

    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]:
        self._check("nvmlDeviceGetCudaComputeCapability")
        cc = self._gpu(handle).cc
        if cc is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return cc

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: int | None = None) -> SimpleNamespace:
        self._check("nvmlDeviceGetMemoryInfo")
        g = self._gpu(handle)
        total = g.total_mib * MIB
        held = (g.used_mib + g.reserved_mib) * MIB
        if version is None:
            # v1: `used` includes the driver's reserve.
            return SimpleNamespace(total=total, free=total - held, used=held)
        if not self.memory_v2:
            raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
        return SimpleNamespace(
            version=version,
            total=total,
            reserved=g.reserved_mib * MIB,
            free=total - held,
            used=g.used_mib * MIB,
        )


def two_gpus(**kwargs: Any) -> FakeNVML:
    """A workstation with an RTX 4090 (idle) and an RTX 3090 that another process uses."""
    return FakeNVML(
        [
            FakeGPU(
                "NVIDIA GeForce RTX 4090",
                24564,
                used_mib=2,
                cc=(8, 9),
                uuid="GPU-4090aaaa-1111-2222-3333-444455556666",
                reserved_mib=300,
            ),
            FakeGPU(
                "NVIDIA GeForce RTX 3090",
                24576,
                used_mib=6144,
                cc=(8, 6),
                uuid="GPU-3090bbbb-1111-2222-3333-444455556666",
                reserved_mib=300,
            ),
        ],
        **kwargs,
    )


def install(monkeypatch: pytest.MonkeyPatch, fake: FakeNVML) -> FakeNVML:
    """Put `fake` behind the NVML seam, with CUDA_VISIBLE_DEVICES unset."""
    from axo_helper import hardware

    monkeypatch.setattr(hardware, "_load_nvml", lambda: fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake
