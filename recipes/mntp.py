"""Stage 1: masked next-token prediction on spectrum texts (LLM2Vec MNTP).

    python recipes/mntp.py recipes/configs/mntp_tiny.json [--max_steps 5 ...]
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/mntp.py recipes/configs/mntp_tiny.json
"""
from __future__ import annotations

import sys

from _common import evaluator, parse_config, prepare_encoder, run, summary, train_spectra


def main(argv=None) -> int:
    from llm4ms.text import Textualizer
    from llm4ms.training.arguments import DataArguments, MNTPArguments, ModelArguments, TrainingArguments
    from llm4ms.training.stages import finish_stage, train_mntp

    model_args, data_args, training_args, stage_args = parse_config(
        argv, (ModelArguments, DataArguments, TrainingArguments, MNTPArguments))
    spectra = train_spectra(data_args)
    first_texts = Textualizer.from_preset(model_args.textualizer or "llm4ms-v2")
    encoder = prepare_encoder(model_args, training_args, lambda: [first_texts(s) for s in spectra])
    texts = encoder.texts(spectra)
    settings = training_args.loop_settings()
    result = train_mntp(encoder, texts, settings, model_args.lora(), stage_args.mask_probability,
                        evaluator(encoder, data_args, training_args))
    final = finish_stage(encoder, settings, "mntp", result, {"train_file": data_args.train_file, "texts": len(texts)},
                         {"mask_probability": stage_args.mask_probability})
    summary("mntp", result, final)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
