"""Stage 3: supervised contrastive training on (measured anchor, positive, hard negatives) spectrum triples.

    python recipes/supervised.py recipes/configs/supervised_tiny.json [--max_steps 5 ...]
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/supervised.py CONFIG

`SentenceTransformerTrainer` + `MultipleNegativesRankingLoss` (in-batch + hard-negative columns; the cached
variant for large batches on small memory); validation Recall@1/@10 through sentence-transformers' IR
evaluator; resume, seeds, schedules, checkpoint rotation and accelerate configs come with the Trainer.
``model_name_or_path``: the previous stage's ``final/``, a causal LM (folder, Hub id, ``tiny:``/``smollm2``)
or ``peak:<hidden>x<layers>`` for a new peak-token model (trained in full: set ``use_lora false``).
Writes ``output_dir/final`` and ``output_dir/results.json``.
"""
from __future__ import annotations

import sys

from _common import already_trained, evaluator, finish, parse_config, run


def main(argv=None) -> int:
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    from llm4ms.training.arguments import ContrastiveArguments, DataArguments, ModelArguments
    from llm4ms.training.contrastive import train_contrastive, triples_dataset
    from llm4ms.training.data import load_records, record_to_spectrum
    from llm4ms.training.models import start_encoder

    model_args, data_args, training_args, stage_args = parse_config(
        argv, (ModelArguments, DataArguments, SentenceTransformerTrainingArguments, ContrastiveArguments))
    if already_trained(training_args.output_dir, data_args):
        return 0
    rows = list(load_records(data_args.train_file))
    if data_args.max_train_samples:
        rows = rows[:data_args.max_train_samples]
    encoder = start_encoder(model_args, training_args.output_dir,
                            lambda: [record_to_spectrum(r["anchor"]) for r in rows])
    train = triples_dataset(rows, encoder.textualizer, stage_args.num_negatives, stage_args.augment_copies,
                            seed=training_args.seed)
    results = train_contrastive(
        encoder, train, training_args,
        {"stage": "supervised", "start": model_args.model_name_or_path, "train_file": data_args.train_file,
         "num_negatives": stage_args.num_negatives, "augment_copies": stage_args.augment_copies},
        scale=stage_args.scale, lora=model_args.lora(),
        evaluator=evaluator(data_args, encoder.textualizer, training_args.per_device_eval_batch_size),
        cached_mini_batch=stage_args.cached_loss_mini_batch,
        early_stopping_patience=stage_args.early_stopping_patience)
    finish(encoder, training_args, results)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
