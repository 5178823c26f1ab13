"""Stage 2: unsupervised SimCSE (same spectrum text twice, dropout views, in-batch negatives).

Start from the MNTP stage's ``final/`` folder: its adapter is merged and a new one is trained.

    python recipes/simcse.py recipes/configs/simcse_tiny.json [--max_steps 5 ...]
"""
from __future__ import annotations

import sys

from _common import encoder_and_texts, evaluator, parse_config, run, summary


def main(argv=None) -> int:
    from llm4ms.training.arguments import DataArguments, ModelArguments, SimCSEArguments, TrainingArguments
    from llm4ms.training.stages import finish_stage, train_simcse

    model_args, data_args, training_args, stage_args = parse_config(
        argv, (ModelArguments, DataArguments, TrainingArguments, SimCSEArguments))
    encoder, texts = encoder_and_texts(model_args, data_args, training_args)
    settings = training_args.loop_settings()
    result = train_simcse(encoder, texts, settings, model_args.lora(), stage_args.scale,
                          stage_args.attention_dropout, evaluator(encoder, data_args, training_args))
    final = finish_stage(encoder, settings, "simcse", result, {"train_file": data_args.train_file, "texts": len(texts)},
                         {"scale": stage_args.scale, "attention_dropout": stage_args.attention_dropout})
    summary("simcse", result, final)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
