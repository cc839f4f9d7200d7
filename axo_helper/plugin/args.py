"""The plugin's config keys (`AxoHelperArgs`): Axolotl merges them into its schema.

Axolotl imports this class by the dotted name `get_input_args()` returns, so config
validation keeps these keys instead of dropping them as unknown.
"""

from __future__ import annotations

from pydantic import BaseModel


class AxoHelperArgs(BaseModel):
    """The plugin's config keys; Axolotl merges them into its config schema."""

    # Where metrics.jsonl / metrics.json go. Unset: the plugin does nothing.
    axo_helper_run_dir: str | None = None
    # The planner's predicted peak memory per GPU (GiB); the calibration store needs
    # it. Unset: taken from <run_dir>/plan.json, else estimated from this config.
    axo_helper_predicted_gib: float | None = None
    # The GPU name stored with the measurement (default: torch.cuda.get_device_name()).
    axo_helper_gpu: str | None = None
    # false: measure, but do not add the run to the calibration store.
    axo_helper_calibrate: bool | None = None
