"""`AxoHelperPlugin`: the Axolotl BasePlugin hooks, inert unless `axo_helper_run_dir` is set.

Axolotl 0.21 registers every plugin found through the `axolotl.plugins` entry point,
whether or not the config lists it, so without its own keys it adds no callback.
"""

from __future__ import annotations

from typing import Any

from axolotl.integrations.base import BasePlugin

from axo_helper.plugin.callback import MetricsCallback

# Axolotl imports the args class by this dotted name; the package re-exports it.
INPUT_ARGS = "axo_helper.plugin.AxoHelperArgs"


class AxoHelperPlugin(BasePlugin):
    """Measures a training run for axo-helper; inert unless `axo_helper_run_dir` is set."""

    def __init__(self) -> None:
        super().__init__()
        self._callback: MetricsCallback | None = None

    def get_input_args(self) -> str:
        return INPUT_ARGS

    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list[Any]:
        if not cfg.axo_helper_run_dir:
            return []
        self._callback = MetricsCallback(cfg, trainer)
        return [self._callback]

    def post_train(self, cfg: Any, model: Any) -> None:
        # Axolotl 0.19 calls post_train twice (after trainer.train and again after
        # saving); on_train_end normally did the work already, and finish() runs once.
        if self._callback is not None:
            self._callback.finish()
