"""Stage 1: masked next-token prediction on spectrum texts (LLM2Vec MNTP), on `transformers.Trainer`.

    python recipes/mntp.py recipes/configs/mntp_tiny.json [--max_steps 5 ...]
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/mntp.py recipes/configs/mntp_tiny.json

Trains the causal LM (made bidirectional; LoRA unless ``use_lora false``) with `MNTPCollator`, resumes from
the last checkpoint in ``output_dir``, then merges the adapter and writes ``output_dir/final`` (an llm4ms
model folder: the body, the configured pooling, the textualizer) and ``output_dir/results.json``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from _common import already_trained, evaluator, finish, parse_config, run, train_spectra


def main(argv=None) -> int:
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    from llm4ms.model.encoder import SpectrumEncoder, as_textualizer
    from llm4ms.text import DEFAULT_PRESET
    from llm4ms.training.arguments import DataArguments, MNTPArguments, ModelArguments
    from llm4ms.training.contrastive import recall_from_metrics
    from llm4ms.training.mntp import MNTPCollator, load_mntp_model, save_mntp_body, tokenized_dataset
    from llm4ms.training.models import resolve_base

    model_args, data_args, training_args, stage_args = parse_config(
        argv, (ModelArguments, DataArguments, TrainingArguments, MNTPArguments))
    if already_trained(training_args.output_dir, data_args):
        return 0
    output = Path(training_args.output_dir)
    textualizer = as_textualizer(model_args.textualizer or DEFAULT_PRESET)
    texts = [textualizer(s) for s in train_spectra(data_args)]
    base = resolve_base(model_args.model_name_or_path, lambda: texts, output / "base", seed=model_args.model_seed)
    check = evaluator(data_args, textualizer, training_args.per_device_eval_batch_size)

    def encoder_from(folder):
        return SpectrumEncoder.from_base(folder, textualizer=textualizer, pooling=model_args.pooling,
                                         max_length=model_args.max_length, torch_dtype=model_args.torch_dtype)

    before = recall_from_metrics(check(encoder_from(base).st)) if check is not None else {}
    model, tokenizer = load_mntp_model(base, model_args.torch_dtype, model_args.load_in_4bit)
    collator = MNTPCollator(tokenizer, model, stage_args.mask_probability, seed=training_args.seed)
    lora = model_args.lora()
    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora.to_peft("CAUSAL_LM"))
    trainer = Trainer(model=model, args=training_args, train_dataset=tokenized_dataset(texts, tokenizer,
                                                                                        model_args.max_length),
                      data_collator=collator)
    last = get_last_checkpoint(str(output)) if output.is_dir() else None
    result = trainer.train(resume_from_checkpoint=last)
    encoder = encoder_from(save_mntp_body(model, tokenizer, output / "mntp_lm"))
    after = recall_from_metrics(check(encoder.st)) if check is not None else {}
    losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    record = {"stage": "mntp", "start": model_args.model_name_or_path, "train_file": data_args.train_file,
              "rows": len(texts), "steps": int(result.global_step),
              "final_loss": losses[-1]["loss"] if losses else None, "mask_probability": stage_args.mask_probability,
              "batch_size": training_args.per_device_train_batch_size, "learning_rate": training_args.learning_rate,
              "lora": lora.to_dict() if lora is not None else None,
              "validation_before": before, "validation_after": after, "resumed_from": last}
    encoder.config["base_model"] = model_args.model_name_or_path
    encoder.config["merged_adapters"] = 1 if lora is not None else 0
    encoder.config.setdefault("training", {}).setdefault("stages", []).append(record)
    if after:
        encoder.config["scores"] = {f"validation {k}": v for k, v in after.items()}
    finish(encoder, training_args.output_dir, {**record, "loss_history": losses})
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
