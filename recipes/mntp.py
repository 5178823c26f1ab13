"""Stage 1: masked next-token prediction on spectrum texts (LLM2Vec MNTP), on `transformers.Trainer`.

    python recipes/mntp.py recipes/configs/mntp_tiny.json [--max_steps 5 ...]
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/mntp.py recipes/configs/mntp_tiny.json

The stage starts from any model name `recipes/supervised.py` takes (a causal LM, ``tiny:``/``smollm2``,
``peak:<hidden>x<layers>`` or an llm4ms model folder), trains the causal-LM view of its body (made
bidirectional; the LM head is the base's, or the tied input embeddings; LoRA unless ``use_lora false``) with
`MNTPCollator`, resumes from the last checkpoint in ``output_dir``, then merges the adapter, puts the trained
body back into the encoder (same textualizer and pooling) and writes ``output_dir/final`` and
``output_dir/results.json``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from _common import already_trained, evaluator, finish, parse_config, run, train_spectra


def main(argv=None) -> int:
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    from llm4ms.model.weights import merge_lora_in_place
    from llm4ms.training.arguments import DataArguments, MNTPArguments, ModelArguments
    from llm4ms.training.contrastive import recall_from_metrics
    from llm4ms.training.mntp import MNTPCollator, load_mntp_model, tokenized_dataset
    from llm4ms.training.models import start_encoder

    model_args, data_args, training_args, stage_args = parse_config(
        argv, (ModelArguments, DataArguments, TrainingArguments, MNTPArguments))
    if already_trained(training_args.output_dir, data_args):
        return 0
    output = Path(training_args.output_dir)
    spectra = train_spectra(data_args)
    encoder = start_encoder(model_args, output, lambda: spectra)
    texts = encoder.texts(spectra)
    check = evaluator(data_args, encoder.textualizer, training_args.per_device_eval_batch_size)
    before = recall_from_metrics(check(encoder.st)) if check is not None else {}
    model, tokenizer = load_mntp_model(encoder.body.name_or_path, model_args.torch_dtype, model_args.load_in_4bit)
    collator = MNTPCollator(tokenizer, model, stage_args.mask_probability, seed=training_args.seed)
    lora = model_args.lora()
    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora.to_peft("CAUSAL_LM"))
    trainer = Trainer(model=model, args=training_args, data_collator=collator,
                      train_dataset=tokenized_dataset(texts, tokenizer, encoder.max_length))
    last = get_last_checkpoint(str(output)) if output.is_dir() else None
    result = trainer.train(resume_from_checkpoint=last)
    if not training_args.should_save:  # under torchrun / accelerate only the main process writes the model
        return 0
    lm = merge_lora_in_place(model)
    encoder.st[0].model = getattr(lm, lm.base_model_prefix)  # the trained body, back under the same pooling
    encoder.invalidate_identity()
    after = recall_from_metrics(check(encoder.st)) if check is not None else {}
    losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    record = {"stage": "mntp", "start": model_args.model_name_or_path, "train_file": data_args.train_file,
              "rows": len(texts), "steps": int(result.global_step),
              "final_loss": losses[-1]["loss"] if losses else float(result.training_loss),
              "mask_probability": stage_args.mask_probability,
              "batch_size": training_args.per_device_train_batch_size, "learning_rate": training_args.learning_rate,
              "lora": lora.to_dict() if lora is not None else None,
              "validation_before": before, "validation_after": after, "resumed_from": last}
    if lora is not None:
        encoder.config["merged_adapters"] = int(encoder.config.get("merged_adapters") or 0) + 1
    encoder.config.setdefault("training", {}).setdefault("stages", []).append(record)
    if after:
        encoder.config["scores"] = {f"validation {k}": v for k, v in after.items()}
    finish(encoder, training_args, {**record, "loss_history": losses})
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
