"""`axo-helper report RUN_DIR`: did the fine-tune help? One self-contained report.html.

    build.py       open the run directory, gather every section into the `report --json`
                   object, write report.html (write_report)
    training.py    loss, learning rate, tokens/s and step time per step (metrics.jsonl,
                   metrics.json; eval loss from the stream or the newest checkpoint)
    memory.py      measured peak memory against the plan's prediction, per component
    plan.py        the plan that ran: method, key settings and reasons, how to rerun it
    heldout.py     the held-out rows, tokenized as Axolotl trained (val_set_size split
                   of the prepared dataset, or --eval-data through Axolotl's preprocess)
    models.py      which base and fine-tuned model, on which device; the CPU size limit
    evaluation.py  both models on the held-out rows: loss, perplexity, greedy answers
    scoring.py     the torch part: batched loss with a progress bar, greedy generation
    plots.py       matplotlib (Agg) figures as inline PNGs
    html.py        the page (templates/report.html.j2, autoescaped)
    missing.py     Missing: a figure that cannot be made, and why

Importing this package loads no torch, transformers or matplotlib: they are imported
inside the functions that score and draw (docs/report.md has the keys and the rules).
"""

from __future__ import annotations

from axo_helper.report.build import ReportOptions, build_report, write_report
from axo_helper.report.evaluation import EvalOptions

__all__ = ["EvalOptions", "ReportOptions", "build_report", "write_report"]
