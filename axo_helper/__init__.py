"""axo-helper: plan, render, check and run Axolotl fine-tuning jobs that fit the GPU."""

__version__ = "0.1.0"
