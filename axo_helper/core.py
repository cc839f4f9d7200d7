"""The core functions the CLI calls: options in, value objects out.

`make_plan` is the whole of `axo-helper plan` minus the formatting; render and run
call it too. It does the I/O (NVML, config.json, the dataset scan, host memory)
so that planner.plan stays pure. Nothing on this path imports torch,
transformers or Axolotl (tests/test_cli_plan.py checks it).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from axo_helper import dataset as dataset_mod
from axo_helper import hardware as hardware_mod
from axo_helper import model as model_mod
from axo_helper import planner
from axo_helper.specs import Method, Plan


def host_memory_gib() -> float | None:
    """Memory the OS could give a CPU training run now (MemAvailable), in GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / 2**30
    except (OSError, ValueError, IndexError):
        pass
    try:  # not Linux: total physical memory
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        return None


def tokenizer_source(model_spec_local_path: str | None, tokenizer: str | None) -> str | None:
    """--tokenizer, else the model's local directory when it holds a fast tokenizer."""
    if tokenizer:
        return tokenizer
    if model_spec_local_path and (Path(model_spec_local_path) / "tokenizer.json").is_file():
        return model_spec_local_path
    return None


def make_plan(
    gpu: str,
    model: str,
    data: str | None,
    *,
    method: Method | None = None,
    seq_len: int | None = None,
    micro_batch: int | None = None,
    epochs: int | None = None,
    nodes: int = 1,
    distributed: str | None = None,
    tokenizer: str | None = None,
    allow_cpu: bool = False,
    policy: str | Path | None = None,
    calibration: planner.Calibration | None = None,
    use_calibration: bool = True,
) -> Plan:
    """Resolve the GPU, inspect the model and data, and plan.

    `allow_cpu`: `--gpu auto` without a GPU plans for CPU instead of failing.
    `policy`: a policy YAML replacing presets/policy.yaml.
    `calibration`: a correction hook; by default the calibration store's, for
    the resolved GPU (`use_calibration=False`: plan from the memory model alone).
    """
    hw = hardware_mod.resolve(gpu, nodes=nodes, allow_cpu=allow_cpu)
    if calibration is None and use_calibration and hw.gpu is not None:
        from axo_helper.calibration import CalibrationStore

        calibration = CalibrationStore().corrector(hw.gpu.profile or hw.gpu.name)
    spec = model_mod.inspect(model)
    data_spec = None
    if data is not None:
        data_spec = dataset_mod.inspect(
            data, tokenizer=tokenizer_source(spec.local_path, tokenizer)
        )
    result = planner.plan(
        hw,
        spec,
        data_spec,
        planner.load_policy(policy),
        method=method,
        seq_len=seq_len,
        micro_batch=micro_batch,
        epochs=epochs,
        distributed=distributed,
        calibration=calibration,
        cpu_memory_gib=host_memory_gib() if hw.is_cpu else None,
    )
    store_warnings = getattr(getattr(calibration, "store", None), "warnings", None)
    if store_warnings:
        result = replace(result, warnings=(*result.warnings, *store_warnings))
    return result
