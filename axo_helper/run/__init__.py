"""`axo-helper run`: plan -> render -> validate -> run directory -> preprocess -> train -> export.

    start.py       start_run: the order of the steps, the usage checks, writing the run dir
    request.py     RunRequest, Attempt, RunResult (run --json)
    prepare.py     the config to train: planned and rendered, or the user's --config (--fit)
    record.py      what goes into plan.json (the file itself: axo_helper/rundir.py)
    preprocess.py  axolotl preprocess, and what a dataset failure says
    attempts.py    training attempts and the retry after CUDA OOM
    resume.py      --resume RUN_DIR
    batch.py       the micro batch --fit picks (the rule itself: axo_helper/fit.py)
    logscan.py     OOM and error lines in a child's output
    configedit.py  rewriting top-level keys of a YAML config, keeping its comments
                   (reading a config's values: axo_helper/config/read.py)
    context.py     one run's state: request, run directory, record, hardware, model

Torch, transformers and Axolotl are never imported in this process: Axolotl runs as
a child, started only through axo_helper.launch.run_launch.
"""

from axo_helper.run.request import Attempt, RunRequest, RunResult
from axo_helper.run.start import start_run

__all__ = [
    "Attempt",
    "RunRequest",
    "RunResult",
    "start_run",
]
