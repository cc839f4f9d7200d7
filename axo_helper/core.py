"""The core functions the CLI calls: options in, value objects out.

`make_plan(PlanRequest)` is the whole of `axo-helper plan` minus the formatting;
render, run and the demo call it too. It does the I/O (NVML, config.json, the dataset
scan, host memory, the calibration store) so that planner.plan stays pure. A command
that has already resolved the GPU passes that Hardware in, so it is detected once.
Nothing on this path imports torch, transformers or Axolotl (tests/test_cli_plan.py
checks it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axo_helper import dataset as dataset_mod
from axo_helper import hardware as hardware_mod
from axo_helper import model as model_mod
from axo_helper import planner
from axo_helper.planner.search import candidate_methods as planner_methods
from axo_helper.specs import Method, Plan

if TYPE_CHECKING:
    from axo_helper.calibration import Calibration
    from axo_helper.specs import Hardware


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


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: the planning options of `plan`, `render` and `run`, typed.

    `allow_cpu`: `--gpu auto` without a GPU plans for CPU instead of failing.
    `policy`: a policy YAML replacing presets/policy.yaml.
    `calibration`: measured corrections to use instead of the store's, for
    the resolved GPU (`use_calibration=False`: plan from the memory model alone).
    """

    gpu: str
    model: str
    data: str | None = None
    method: Method | None = None
    freeze_layers: float | None = None  # method "freeze": a block count or a fraction
    seq_len: int | None = None
    micro_batch: int | None = None
    epochs: int | None = None
    nodes: int = 1
    distributed: str | None = None
    tokenizer: str | None = None
    allow_cpu: bool = False
    policy: str | Path | None = None
    calibration: Calibration | None = None
    use_calibration: bool = True
    revision: str | None = None  # a hub revision of --model (branch, tag, commit)


def _implied(request: PlanRequest) -> Method | None:
    """--freeze-layers alone means --method freeze."""
    return "freeze" if request.freeze_layers is not None else None


def _offload_host_gib(hw: Hardware) -> float | None:
    """The host memory CPU offload may plan against: read for detected GPUs (`--gpu
    auto` runs on this machine), else None (the policy's assumption)."""
    return host_memory_gib() if hw.source == "nvml" else None


def installed_integrations(policy: planner.Policy) -> frozenset[str]:
    """The optional integrations the policy may plan with that are importable here
    (found, not imported: importing liger would import torch)."""
    import importlib.util

    name = policy.fused_ce.package
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    return frozenset({name}) if found else frozenset()


def make_plan(request: PlanRequest, /, *, hardware: Hardware | None = None) -> Plan:
    """Resolve the GPU, inspect the model and data, read calibration, and plan.

    `hardware`: request.gpu already resolved by the caller (resolved once per command).
    """
    hw = hardware
    if hw is None:
        hw = hardware_mod.resolve(request.gpu, nodes=request.nodes, allow_cpu=request.allow_cpu)
    spec = model_mod.inspect(request.model, revision=request.revision)
    data_spec = None
    if request.data is not None:
        data_spec = dataset_mod.inspect(
            request.data, tokenizer=tokenizer_source(spec.local_path, request.tokenizer)
        )
    policy = planner.load_policy(request.policy)
    calibration = request.calibration
    if calibration is None and request.use_calibration and hw.gpu is not None:
        from axo_helper.calibration import CalibrationStore

        methods = planner_methods(hw, policy, request.method or _implied(request))
        calibration = CalibrationStore().calibration(
            hw.gpu.profile or hw.gpu.name, spec.family, methods
        )
    result = planner.plan(
        hw,
        spec,
        data_spec,
        policy,
        method=request.method,
        seq_len=request.seq_len,
        micro_batch=request.micro_batch,
        epochs=request.epochs,
        distributed=request.distributed,
        calibration=calibration,
        cpu_memory_gib=host_memory_gib() if hw.is_cpu else None,
        freeze_layers=request.freeze_layers,
        installed=installed_integrations(policy),
        host_memory_gib=_offload_host_gib(hw),
    )
    if calibration is not None and calibration.warnings:
        result = replace(result, warnings=(*result.warnings, *calibration.warnings))
    return result


def longest_lengths(request: PlanRequest, /) -> tuple[Plan, list[Any]]:
    """`plan --longest`: the plan, and the longest sequence that fits with each toolbox
    option for its method (planner/longest.py)."""
    from axo_helper.planner.longest import longest

    hw = hardware_mod.resolve(request.gpu, nodes=request.nodes, allow_cpu=request.allow_cpu)
    chosen = make_plan(request, hardware=hw)
    policy = planner.load_policy(request.policy)
    rows = longest(
        hw,
        chosen.model,
        policy,
        request.method or chosen.method,
        installed=installed_integrations(policy),
        host_memory_gib=_offload_host_gib(hw),
    )
    return chosen, rows
