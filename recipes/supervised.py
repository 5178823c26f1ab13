"""Stage 3: supervised contrastive training on (anchor, positive, hard negatives) spectrum triples.

Start from the SimCSE stage's ``final/`` folder: its adapter is merged and a new one is trained.

    python recipes/supervised.py recipes/configs/supervised_tiny.json [--max_steps 5 ...]
"""
from __future__ import annotations

import sys

from _common import evaluator, parse_config, prepare_encoder, run, summary


def main(argv=None) -> int:
    from llm4ms.text import Textualizer
    from llm4ms.training.arguments import DataArguments, ModelArguments, SupervisedArguments, TrainingArguments
    from llm4ms.training.data import load_records, record_to_spectrum, triple_texts
    from llm4ms.training.stages import finish_stage, train_supervised

    model_args, data_args, training_args, stage_args = parse_config(
        argv, (ModelArguments, DataArguments, TrainingArguments, SupervisedArguments))
    rows = list(load_records(data_args.train_file))
    rows = rows[:data_args.max_train_samples] if data_args.max_train_samples else rows
    first_texts = Textualizer.from_preset(model_args.textualizer or "llm4ms-v2")
    encoder = prepare_encoder(model_args, training_args,
                              lambda: [first_texts(record_to_spectrum(r["anchor"])) for r in rows])
    triples = triple_texts(rows, encoder.textualizer, stage_args.num_negatives)
    settings = training_args.loop_settings()
    result = train_supervised(encoder, triples, settings, model_args.lora(), stage_args.scale,
                              stage_args.num_negatives, stage_args.symmetric,
                              evaluator(encoder, data_args, training_args))
    final = finish_stage(encoder, settings, "supervised", result,
                         {"train_file": data_args.train_file, "triples": len(triples)},
                         {"scale": stage_args.scale, "num_negatives": stage_args.num_negatives})
    summary("supervised", result, final)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
