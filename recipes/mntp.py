"""Stage 1: masked next-token prediction on spectrum texts (LLM2Vec MNTP).

    python recipes/mntp.py recipes/configs/mntp_tiny.json [--max_steps 5 ...]
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/mntp.py recipes/configs/mntp_tiny.json
"""
from __future__ import annotations

import sys

from _common import encoder_and_texts, evaluator, parse_config, run, summary


def main(argv=None) -> int:
    from llm4ms.training.arguments import DataArguments, MNTPArguments, ModelArguments, TrainingArguments
    from llm4ms.training.stages import finish_stage, train_mntp

    model_args, data_args, training_args, stage_args = parse_config(
        argv, (ModelArguments, DataArguments, TrainingArguments, MNTPArguments))
    encoder, texts = encoder_and_texts(model_args, data_args, training_args)
    settings = training_args.loop_settings()
    result = train_mntp(encoder, texts, settings, model_args.lora(), stage_args.mask_probability,
                        evaluator(encoder, data_args, training_args))
    final = finish_stage(encoder, settings, "mntp", result, {"train_file": data_args.train_file, "texts": len(texts)},
                         {"mask_probability": stage_args.mask_probability})
    summary("mntp", result, final)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
