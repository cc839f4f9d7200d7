"""The Axolotl plugin that measures a run: `plugins: [axo_helper.plugin.AxoHelperPlugin]`.

Axolotl imports this package inside the training process (never on the plan path:
it imports axolotl and transformers). With `axo_helper_run_dir` set the plugin
streams one JSON line per optimizer step to <run_dir>/metrics.jsonl, writes
<run_dir>/metrics.json once at the end, and records a calibration Measurement (GPU
runs only). See docs/plugin.md for the file formats.

    args.py        AxoHelperArgs: the config keys Axolotl merges into its schema
    hooks.py       AxoHelperPlugin: the BasePlugin hooks (inert without a run dir)
    callback.py    MetricsCallback: Trainer events -> the recorder, rank 0 only
    recorder.py    MetricsRecorder: metrics.jsonl lines and the metrics.json summary
    tokens.py      TokenCounter: non-padding training tokens, by a forward pre-hook
    device.py      rank, world size, device name, peak memory (CUDA or process RSS)
    prediction.py  the predicted GiB: config, plan.json (rundir.predicted_gib), else estimate
    calibrate.py   record_calibration: the calibration row of a finished GPU run

The plugin classes are re-exported because Axolotl and the entry point in pyproject.toml
import them from `axo_helper.plugin` by dotted name. The metrics file names are the run
directory's: axo_helper/rundir.py owns them.
"""

from axo_helper.plugin.args import AxoHelperArgs
from axo_helper.plugin.hooks import AxoHelperPlugin

__all__ = ["AxoHelperArgs", "AxoHelperPlugin"]
