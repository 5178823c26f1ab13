"""Stage 2: unsupervised SimCSE (each spectrum text twice, dropout views, in-batch negatives).

    python recipes/simcse.py recipes/configs/simcse_tiny.json [--max_steps 5 ...]

`SentenceTransformerTrainer` + `MultipleNegativesRankingLoss`; starts from the MNTP stage's ``final/`` folder
(or any model name `recipes/supervised.py` takes), adds a LoRA adapter unless ``use_lora false``, sets the
attention dropout that makes the two views, and writes ``output_dir/final`` and ``output_dir/results.json``.
"""
from __future__ import annotations

import sys

from _common import already_trained, evaluator, finish, parse_config, run, train_spectra


def main(argv=None) -> int:
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    from llm4ms.training.arguments import ContrastiveArguments, DataArguments, ModelArguments
    from llm4ms.training.contrastive import set_attention_dropout, simcse_dataset, train_contrastive
    from llm4ms.training.models import start_encoder

    model_args, data_args, training_args, stage_args = parse_config(
        argv, (ModelArguments, DataArguments, SentenceTransformerTrainingArguments, ContrastiveArguments))
    if already_trained(training_args.output_dir, data_args):
        return 0
    spectra = train_spectra(data_args)
    encoder = start_encoder(model_args, training_args.output_dir, lambda: spectra)
    texts = encoder.texts(spectra)
    old = set_attention_dropout(encoder, stage_args.attention_dropout)
    try:
        results = train_contrastive(
            encoder, simcse_dataset(texts), training_args,
            {"stage": "simcse", "start": model_args.model_name_or_path, "train_file": data_args.train_file,
             "attention_dropout": stage_args.attention_dropout},
            scale=stage_args.scale, lora=model_args.lora(),
            evaluator=evaluator(data_args, encoder.textualizer, training_args.per_device_eval_batch_size),
            cached_mini_batch=stage_args.cached_loss_mini_batch,
            early_stopping_patience=stage_args.early_stopping_patience)
    finally:
        set_attention_dropout(encoder, old)
    finish(encoder, training_args, results)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
