"""Supervised contrastive stage for format-2 (sentence-transformers) spectrum models, on the Trainer.

`SentenceTransformerTrainer` + `MultipleNegativesRankingLoss` (in-batch + hard-negative columns; the cached
variant for large batches on small memory) over (measured anchor, positive, hard negatives) spectrum
triples; validation Recall@1/@10 through sentence-transformers' IR evaluator. Resume, seeds, schedules,
checkpoint rotation and accelerate configs come with the Trainer.

    python recipes/contrastive.py recipes/configs/contrastive_tiny.json [--max_steps 5 ...]
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/contrastive.py CONFIG

``model_name_or_path``: a format-2 model folder, or ``peak:<hidden>x<layers>`` for a new random
peak-token Llama (`llm4ms.model.peak_model`). Writes ``<output_dir>/final`` and ``<output_dir>/results.json``.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from _common import parse_config, run


@dataclass
class ContrastiveArguments:
    model_name_or_path: str = field(metadata={"help": "format-2 model folder, or peak:<hidden>x<layers>"})
    train_file: str = field(metadata={"help": "supervised_triples.jsonl (data_prep/build_training_sets.py)"})
    validation_queries: Optional[str] = field(default=None, metadata={"help": "jsonl of validation queries"})
    validation_library: Optional[str] = field(default=None, metadata={"help": "jsonl of the validation library"})
    num_negatives: int = field(default=1, metadata={"help": "hard-negative columns per triple"})
    scale: float = field(default=20.0, metadata={"help": "1 / temperature of the InfoNCE loss"})
    augment_copies: int = field(default=0, metadata={"help": "extra augmented copies of each measured anchor"})
    cached_loss_mini_batch: int = field(default=0, metadata={"help": ">0: CachedMNRL with this mini-batch"})
    max_train_samples: int = field(default=0, metadata={"help": ">0: use only the first N triples"})
    max_mz: int = field(default=1000, metadata={"help": "peak:... models: largest integer m/z in the vocabulary"})
    model_seed: int = field(default=0, metadata={"help": "peak:... models: seed of the random init"})
    intermediate_size: int = field(default=256, metadata={"help": "peak:... models: MLP width"})
    top_n: int = field(default=40, metadata={"help": "peak:... models: peaks (tokens) per spectrum"})
    early_stopping_patience: int = field(default=0, metadata={
        "help": ">0: stop after this many evaluations without a better validation R@1 and keep the best "
                "checkpoint (needs load_best_model_at_end and metric_for_best_model)"})
    retrain: bool = field(default=False, metadata={"help": "train again although output_dir/final exists"})


def main(argv=None) -> int:
    import re

    from sentence_transformers.sentence_transformer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import (CachedMultipleNegativesRankingLoss,
                                                                   MultipleNegativesRankingLoss)
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    from llm4ms.errors import ConfigError
    from llm4ms.model.spectrum_model import SpectrumModel, is_spectrum_model_folder
    from llm4ms.training.contrastive import recall_evaluator, recall_from_metrics, triples_dataset
    from llm4ms.training.data import load_records, record_to_spectrum
    from llm4ms.utils import write_json

    args, training_args = parse_config(argv, (ContrastiveArguments, SentenceTransformerTrainingArguments))
    output = Path(training_args.output_dir)
    if is_spectrum_model_folder(output / "final") and not args.retrain:
        print(f"contrastive: {output / 'final'} exists; skipping (pass --retrain true to train again)")
        return 0
    peak = re.match(r"^peak:(\d+)x(\d+)$", args.model_name_or_path)
    if peak:
        from llm4ms.model.peak_model import build_peak_model

        hidden, layers = int(peak.group(1)), int(peak.group(2))
        base = output / f"init_peak_{hidden}x{layers}"
        if not is_spectrum_model_folder(base):
            from dataclasses import replace

            from llm4ms.model.peak_model import PEAK_TEXTUALIZER

            build_peak_model(base, textualizer=replace(PEAK_TEXTUALIZER, top_n=args.top_n), hidden_size=hidden,
                             num_layers=layers, heads=max(1, hidden // 32), intermediate_size=args.intermediate_size,
                             max_mz=args.max_mz, seed=args.model_seed)
        start = str(base)
    elif is_spectrum_model_folder(args.model_name_or_path):
        start = args.model_name_or_path
    else:
        raise ConfigError(f"{args.model_name_or_path}: not a format-2 model folder nor peak:<hidden>x<layers> "
                          "(format-1 models train with recipes/supervised.py)")
    model = SpectrumModel.from_pretrained(start)
    rows = list(load_records(args.train_file))
    if args.max_train_samples:
        rows = rows[:args.max_train_samples]
    train = triples_dataset(rows, model.textualizer, args.num_negatives, args.augment_copies,
                            seed=training_args.seed)
    evaluator = None
    if args.validation_queries and args.validation_library:
        queries = [record_to_spectrum(r) for r in load_records(args.validation_queries)]
        library = [record_to_spectrum(r) for r in load_records(args.validation_library)]
        evaluator = recall_evaluator(queries, library, model.textualizer)
    if args.cached_loss_mini_batch:
        loss = CachedMultipleNegativesRankingLoss(model.st, scale=args.scale,
                                                  mini_batch_size=args.cached_loss_mini_batch)
    else:
        loss = MultipleNegativesRankingLoss(model.st, scale=args.scale)
    callbacks = []
    if args.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    trainer = SentenceTransformerTrainer(model=model.st, args=training_args, train_dataset=train, loss=loss,
                                         evaluator=evaluator, callbacks=callbacks)
    before = recall_from_metrics(evaluator(model.st)) if evaluator is not None else {}
    last = get_last_checkpoint(str(output)) if output.is_dir() else None
    result = trainer.train(resume_from_checkpoint=last)
    after = recall_from_metrics(evaluator(model.st)) if evaluator is not None else {}
    history = [{"step": h["step"], **recall_from_metrics(h)} for h in trainer.state.log_history
               if any(k.endswith("accuracy@1") for k in h)]
    losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    model.invalidate_identity()
    stage = {"stage": "contrastive", "start": args.model_name_or_path, "train_file": args.train_file,
             "rows": len(train), "steps": int(result.global_step), "final_loss": losses[-1]["loss"] if losses else None,
             "batch_size": training_args.per_device_train_batch_size, "learning_rate": training_args.learning_rate,
             "scale": args.scale, "num_negatives": args.num_negatives, "augment_copies": args.augment_copies,
             "validation_before": before, "validation_after": after, "resumed_from": last}
    model.config.setdefault("training", {}).setdefault("stages", []).append(stage)
    final = model.save_pretrained(output / "final")
    write_json(output / "results.json", {**stage, "validation_history": history, "loss_history": losses})
    print(f"contrastive: {stage['steps']} steps, loss {stage['final_loss']}, validation {before} -> {after}; "
          f"model in {final}")
    print(json.dumps({"validation_after": after}))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
