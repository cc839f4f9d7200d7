"""`axo-helper demo`: the whole pipeline on a tiny local model, offline, in minutes.

    DIR/
      tiny-model/   a random tiny Llama + tokenizer trained on the bundled text (tinymodel.py)
      qa.jsonl      the bundled Q&A rows about Brindlemoor, a made-up town
      run/          an ordinary run directory (plan.json, axolotl.yml, train.log, output/,
                    adapter/ and merged/ when the export step is installed)

It plans for the detected hardware (CPU when there is no GPU: supported for the
demo and tiny models only), runs real Axolotl through `run.start_run`, then loads
the merged model with transformers and answers one question. torch and
transformers are imported only for that last step.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo_helper.errors import AxoHelperError, OutputExistsError
from axo_helper.launch import captured_output
from axo_helper.progress import ProgressDisplay
from axo_helper.run import RunRequest, RunResult, start_run

DEFAULT_DIR = Path("axo-helper-demo")
QUESTION = "How long does the cable railway take?"
# Enough steps for the loss to fall visibly on the tiny model, few enough for the
# demo to stay well under 3 minutes on 2 CPU cores (docs/run.md has the timing).
DEMO_MAX_STEPS = 40
# The tiny model starts from random weights; the policy's fine-tuning rate (2e-4)
# would barely move it in 40 steps.
DEMO_OVERRIDES = {
    "learning_rate": 0.003,
    # One tokenizing process: on a small CPU machine worker start-up (each re-imports
    # torch) costs more than the tokenizing itself (docs/cpu.md).
    "dataset_num_proc": 1,
    "dataloader_pin_memory": False,
}


@dataclass
class DemoResult:
    directory: Path
    run: RunResult
    cpu: bool
    adapter_dir: Path | None
    merged_dir: Path | None
    question: str
    answer: str | None
    seconds: float


def prepare(directory: Path, *, force: bool) -> tuple[Path, Path]:
    """Build (or reuse) the tiny model and copy the bundled data: (model dir, data file)."""
    from axo_helper.tinymodel import build_tiny_model, demo_data_path

    run_dir = directory / "run"
    if run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise OutputExistsError(
            f"{directory} already holds a demo run",
            hint="pass --force to run it again, or --output-dir for another directory",
        )
    directory.mkdir(parents=True, exist_ok=True)
    # transformers' import warnings and progress bars are noise here; shown on failure.
    with captured_output():
        model = build_tiny_model(directory / "tiny-model")
    data = directory / "qa.jsonl"
    shutil.copyfile(demo_data_path("qa.jsonl"), data)
    return model, data


def run_demo(
    directory: Path = DEFAULT_DIR,
    *,
    force: bool = False,
    max_steps: int = DEMO_MAX_STEPS,
    display: ProgressDisplay | None = None,
    quiet: bool = False,
    say: Any = None,
) -> DemoResult:
    started = time.monotonic()
    directory = Path(directory)

    def tell(message: str) -> None:
        if say is not None:
            say(message)

    tell(f"building a tiny Llama model and its tokenizer in {directory / 'tiny-model'} ...")
    model, data = prepare(directory, force=force)

    from axo_helper import hardware

    hw = hardware.resolve("auto", allow_cpu=True)
    if hw.is_cpu:
        tell(
            "no GPU found: training on CPU (supported for the demo and tiny models only; "
            "real models need a GPU)"
        )
    else:
        tell(f"training on {hw.describe()}")

    req = RunRequest(
        plan_kwargs={"gpu": "auto", "model": str(model), "data": str(data)},
        output_dir=directory / "run",
        force=True,  # prepare() already refused an existing run without --force
        max_steps=max_steps,
        allow_cpu=True,
        overrides=DEMO_OVERRIDES,
        quiet=quiet,
    )
    result = start_run(req, display=display)
    if result.status != "finished":
        raise AxoHelperError(
            f"the demo's training {result.status}: {result.message or ''}".rstrip(": "),
            hint=f"see {result.run_dir / 'train.log'}",
            exit_code=result.exit_code or 1,
        )
    run_dir = result.run_dir
    adapter = run_dir / "adapter" if (run_dir / "adapter").is_dir() else None
    merged = run_dir / "merged" if (run_dir / "merged").is_dir() else None
    answer = sample_answer(merged, model, run_dir / "output", QUESTION)
    return DemoResult(
        directory=directory,
        run=result,
        cpu=hw.is_cpu,
        adapter_dir=adapter,
        merged_dir=merged,
        question=QUESTION,
        answer=answer,
        seconds=time.monotonic() - started,
    )


def sample_answer(merged: Path | None, base: Path, output: Path, question: str) -> str | None:
    """Greedy answer to `question` from the merged model (or base + the trained adapter)."""
    try:
        with captured_output():
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:  # pragma: no cover - the [train] extra is what ran the training
        return None
    with captured_output(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lm: Any
        if merged is not None:
            tokenizer = AutoTokenizer.from_pretrained(merged)
            lm = AutoModelForCausalLM.from_pretrained(merged)
        else:
            tokenizer = AutoTokenizer.from_pretrained(output)
            lm = AutoModelForCausalLM.from_pretrained(base)
            if (output / "adapter_config.json").is_file():
                from peft import PeftModel

                lm = PeftModel.from_pretrained(lm, output)
            elif (output / "config.json").is_file() and any(output.glob("*.safetensors")):
                lm = AutoModelForCausalLM.from_pretrained(output)  # a full fine-tune
        lm.eval()
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = lm.generate(
                **ids,
                max_new_tokens=40,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
    text = tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)
    return str(text).strip()
