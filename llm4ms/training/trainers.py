"""A small training loop shared by the three stages, built on `accelerate.Accelerator`.

The loop knows nothing about MNTP or contrastive losses: a stage hands it a `step_loss(indices, step)`
function over example indices. Batches are a pure function of (seed, step), so a run resumed from a
checkpoint sees exactly the batches it would have seen. Checkpoints are `accelerator.save_state`
folders ``checkpoints/step-XXXXXXX`` plus a ``trainer_state.json`` written last (a folder without it is
incomplete and ignored); the loss log is ``loss_log.jsonl`` in the output folder.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from llm4ms.metrics import retrieval_recall  # noqa: F401  (one owner; re-exported for training.stages)
from llm4ms.utils import atomic_open, write_json

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
LOSS_LOG = "loss_log.jsonl"


@dataclass
class LoopSettings:
    """Optimisation and bookkeeping settings (the recipes' TrainingArguments map onto these)."""

    output_dir: str
    max_steps: int = 100
    batch_size: int = 16  # per process, per micro-batch
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    seed: int = 42
    bf16: bool = False
    gradient_checkpointing: bool = False
    save_steps: int = 100
    save_total_limit: int = 2
    logging_steps: int = 10
    eval_steps: int = 0  # 0 = only before and after training (when an evaluator is given)
    resume: bool = True


@dataclass
class LoopResult:
    steps: int
    final_loss: float
    resumed_from: int = 0
    validation: dict = field(default_factory=dict)  # {"before": {...}, "after": {...}, "history": [...]}
    seconds: float = 0.0


def make_accelerator(settings: LoopSettings):
    from accelerate import Accelerator

    return Accelerator(mixed_precision="bf16" if settings.bf16 else "no",
                       cpu=not torch.cuda.is_available())


def batch_indices(n: int, batch_size: int, seed: int, micro_step: int, process_index: int = 0,
                  num_processes: int = 1) -> list[int]:
    """Example indices of one micro-batch for this process: epochs of seeded permutations, drop-last."""
    global_size = min(batch_size * num_processes, n)
    per_epoch = max(1, n // global_size)
    epoch, position = divmod(micro_step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    chunk = order[position * global_size:(position + 1) * global_size]
    share = max(1, len(chunk) // num_processes)
    return [int(i) for i in chunk[process_index * share:(process_index + 1) * share]]


def last_checkpoint(output_dir: str | Path) -> Optional[Path]:
    """The newest complete checkpoint folder, or None."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    done = [p for p in folder.glob("step-*") if (p / STATE_FILE).exists()] if folder.exists() else []
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def _save_checkpoint(accelerator, output_dir: Path, step: int, loss: float, limit: int) -> None:
    folder = output_dir / CHECKPOINT_DIR / f"step-{step:07d}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        write_json(folder / STATE_FILE, {"step": step, "loss": loss})
        finished = sorted((p for p in folder.parent.glob("step-*") if (p / STATE_FILE).exists()),
                          key=lambda p: int(p.name.split("-")[1]))
        for old in finished[:-limit] if limit > 0 else []:
            shutil.rmtree(old, ignore_errors=True)


def _trim_log(path: Path, keep_until: int) -> None:
    """Drop log rows past the resumed step (they will be redone)."""
    if not path.exists():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= keep_until]
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(r + "\n" for r in rows))


def _append_log(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def train_loop(model: torch.nn.Module, step_loss: Callable[[list[int], int], torch.Tensor], n_examples: int,
               settings: LoopSettings, accelerator=None,
               evaluate: Callable[[], dict] | None = None) -> LoopResult:
    """Optimise the trainable parameters of `model` for `settings.max_steps` optimizer steps.

    `step_loss(indices, step)` must run the (prepared) model on the examples and return a scalar loss;
    `evaluate()` (optional) returns metrics and is called before training, every `eval_steps` and at
    the end, with the model in eval mode.
    """
    from transformers import get_scheduler

    if n_examples < 1:
        raise ValueError("no training examples")
    accelerator = accelerator or make_accelerator(settings)
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    if settings.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = get_scheduler(settings.lr_scheduler_type, optimizer, num_warmup_steps=settings.warmup_steps,
                              num_training_steps=settings.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    start = 0
    checkpoint = last_checkpoint(out) if settings.resume else None
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        start = int(json.loads((checkpoint / STATE_FILE).read_text())["step"])
        log.info("resuming from %s (step %d)", checkpoint, start)
    log_path = out / LOSS_LOG
    if accelerator.is_main_process:
        _trim_log(log_path, start) if start else log_path.unlink(missing_ok=True)

    validation: dict = {"history": []}
    if evaluate is not None and start == 0:
        validation["before"] = _run_eval(model, evaluate, 0, validation)
    t0, loss_value, window = time.time(), float("nan"), []
    model.train()
    for step in range(start + 1, settings.max_steps + 1):
        loss_value = _optimizer_step(model, optimizer, scheduler, step_loss, n_examples, settings,
                                     accelerator, step)
        window.append(loss_value)
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss is {loss_value} at step {step}; lower the learning rate")
        if accelerator.is_main_process and (step % settings.logging_steps == 0 or step == settings.max_steps):
            _append_log(log_path, {"step": step, "loss": float(np.mean(window)), "lr": scheduler.get_last_lr()[0],
                                   "elapsed_s": round(time.time() - t0, 2)})
            window = []
        if evaluate is not None and settings.eval_steps and step % settings.eval_steps == 0 and step < settings.max_steps:
            _run_eval(model, evaluate, step, validation)
        if settings.save_steps and step % settings.save_steps == 0:
            _save_checkpoint(accelerator, out, step, loss_value, settings.save_total_limit)
    if evaluate is not None:
        validation["after"] = _run_eval(model, evaluate, settings.max_steps, validation)
    accelerator.wait_for_everyone()
    return LoopResult(steps=settings.max_steps, final_loss=loss_value, resumed_from=start,
                      validation=validation, seconds=time.time() - t0)


def _optimizer_step(model, optimizer, scheduler, step_loss, n_examples, settings, accelerator, step) -> float:
    """Accumulate `gradient_accumulation_steps` micro-batches, then clip and step."""
    accum = settings.gradient_accumulation_steps
    total = 0.0
    for micro in range(accum):
        micro_step = (step - 1) * accum + micro
        indices = batch_indices(n_examples, settings.batch_size, settings.seed, micro_step,
                                accelerator.process_index, accelerator.num_processes)
        sync = accelerator.no_sync(model) if micro < accum - 1 else _null()
        with sync, accelerator.autocast():
            loss = step_loss(indices, micro_step) / accum
            accelerator.backward(loss)
        total += float(loss.detach())
    if settings.max_grad_norm and settings.max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return total


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _run_eval(model, evaluate, step: int, validation: dict) -> dict:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics = dict(evaluate())
    model.train(was_training)
    validation["history"].append({"step": step, **metrics})
    log.info("step %d validation %s", step, metrics)
    return metrics


def settings_dict(settings: LoopSettings) -> dict:
    return asdict(settings)
