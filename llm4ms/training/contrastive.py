"""Stages 2 and 3 (SimCSE, supervised contrastive) on sentence-transformers' Trainer.

What llm4ms adds to `SentenceTransformerTrainer` + `MultipleNegativesRankingLoss`: turning spectrum
triples (stored as spectra, not texts, so any textualizer can be applied) into a `datasets.Dataset` of
texts with optional seeded augmentation of the measured anchors; SimCSE pairs (a text and itself, dropout
makes the two views); a Recall@k evaluator over a validation search task (a query counts as a hit when a
library spectrum of the same compound — InChIKey first block — is ranked first; sentence-transformers'
information-retrieval evaluator computes it); and `train_contrastive`, which runs the Trainer with resume
and records the stage in the model's config.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from llm4ms.spectrum import Spectrum
from llm4ms.text import Textualizer

log = logging.getLogger(__name__)


def triples_dataset(rows: Iterable[Mapping[str, Any]], textualizer: Textualizer, num_negatives: int = 1,
                    augment_copies: int = 0, seed: int = 0):
    """Columns ``anchor, positive, negative_1..n`` of texts; `augment_copies` extra noisy anchor copies."""
    from datasets import Dataset

    from llm4ms.training.augment import random_view
    from llm4ms.training.data import record_to_spectrum

    rng = np.random.default_rng(seed)
    columns: dict[str, list[str]] = {"anchor": [], "positive": []}
    for j in range(num_negatives):
        columns[f"negative_{j + 1}"] = []
    for row in rows:
        negatives = list(row.get("negatives") or [])
        if len(negatives) < num_negatives:
            continue
        anchor = record_to_spectrum(row["anchor"])
        positive = textualizer(record_to_spectrum(row["positive"]))
        negative_texts = [textualizer(record_to_spectrum(n)) for n in negatives[:num_negatives]]
        variants = [anchor] + [random_view(anchor, rng) for _ in range(augment_copies)]
        for variant in variants:
            if variant is None or variant.n_peaks == 0:
                continue
            columns["anchor"].append(textualizer(variant))
            columns["positive"].append(positive)
            for j, text in enumerate(negative_texts):
                columns[f"negative_{j + 1}"].append(text)
    return Dataset.from_dict(columns)


def simcse_dataset(texts: Sequence[str]):
    """Columns ``anchor, positive``: each text twice; dropout in the model makes the two views differ."""
    from datasets import Dataset

    return Dataset.from_dict({"anchor": list(texts), "positive": list(texts)})


def recall_evaluator(queries: Sequence[Spectrum], library: Sequence[Spectrum], textualizer: Textualizer,
                     name: str = "validation", batch_size: int = 256):
    """sentence-transformers' IR evaluator whose ``accuracy@k`` is Recall@k by InChIKey first block."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    by_key: dict[str, set[str]] = {}
    corpus = {}
    for i, spectrum in enumerate(library):
        corpus[f"d{i}"] = textualizer(spectrum)
        if spectrum.inchikey14:
            by_key.setdefault(spectrum.inchikey14, set()).add(f"d{i}")
    query_texts, relevant = {}, {}
    for i, spectrum in enumerate(queries):
        if spectrum.inchikey14 in by_key:
            query_texts[f"q{i}"] = textualizer(spectrum)
            relevant[f"q{i}"] = by_key[spectrum.inchikey14]
    return InformationRetrievalEvaluator(query_texts, corpus, relevant, name=name, accuracy_at_k=[1, 10],
                                         precision_recall_at_k=[10], mrr_at_k=[10], ndcg_at_k=[10],
                                         map_at_k=[10], batch_size=batch_size, write_csv=False)


def recall_from_metrics(metrics: Mapping[str, float], name: str = "validation") -> dict[str, float]:
    """{'R@1': .., 'R@10': ..} in percent from the evaluator's metric names (with or without eval_ prefix)."""
    out = {}
    for k in (1, 10):
        for key in (f"eval_{name}_cosine_accuracy@{k}", f"{name}_cosine_accuracy@{k}"):
            if key in metrics:
                out[f"R@{k}"] = round(100.0 * float(metrics[key]), 2)
                break
    return out


def set_attention_dropout(encoder, probability: float) -> float:
    """Set attention dropout on the model and every attention module (Llama has no hidden dropout)."""
    import torch

    body = encoder.body
    config = getattr(body.config, "text_config", body.config)
    old = float(getattr(config, "attention_dropout", 0.0) or 0.0)
    config.attention_dropout = probability
    for module in body.modules():
        if hasattr(module, "attention_dropout") and not isinstance(module, torch.nn.Dropout):
            module.attention_dropout = probability
    return old


def train_contrastive(encoder, train_dataset, training_args, stage: dict[str, Any], scale: float = 20.0,
                      evaluator=None, cached_mini_batch: int = 0, early_stopping_patience: int = 0,
                      lora=None) -> dict[str, Any]:
    """Train `encoder` with MultipleNegativesRankingLoss on `train_dataset`; returns the stage record.

    A LoRA adapter (`lora`) is added on top of the merged weights; the Trainer resumes from the last
    checkpoint in ``output_dir``; validation Recall@1/@10 before and after (and at every evaluation) come
    from `evaluator`. The record is appended to ``encoder.config["training"]["stages"]``.
    """
    from pathlib import Path

    from sentence_transformers.sentence_transformer.losses import (CachedMultipleNegativesRankingLoss,
                                                                   MultipleNegativesRankingLoss)
    from transformers.trainer_utils import get_last_checkpoint

    if lora is not None:
        encoder.add_lora(lora)
    if cached_mini_batch:
        loss = CachedMultipleNegativesRankingLoss(encoder.st, scale=scale, mini_batch_size=cached_mini_batch)
    else:
        loss = MultipleNegativesRankingLoss(encoder.st, scale=scale)
    callbacks = []
    if early_stopping_patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    trainer = _trainer_class()(model=encoder.st, args=training_args, train_dataset=train_dataset,
                               loss=loss, evaluator=evaluator, callbacks=callbacks)
    before = recall_from_metrics(evaluator(encoder.st)) if evaluator is not None else {}
    output = Path(training_args.output_dir)
    last = get_last_checkpoint(str(output)) if output.is_dir() else None
    result = trainer.train(resume_from_checkpoint=last)
    after = recall_from_metrics(evaluator(encoder.st)) if evaluator is not None else {}
    log_history = trainer.state.log_history
    losses = [{"step": h["step"], "loss": h["loss"]} for h in log_history if "loss" in h]
    history = [{"step": h["step"], **recall_from_metrics(h)} for h in log_history
               if any(k.endswith("accuracy@1") for k in h)]
    encoder.invalidate_identity()
    record = {**stage, "rows": len(train_dataset), "steps": int(result.global_step),
              "final_loss": losses[-1]["loss"] if losses else float(result.training_loss),
              "batch_size": training_args.per_device_train_batch_size, "learning_rate": training_args.learning_rate,
              "scale": scale, "lora": lora.to_dict() if lora is not None else None,
              "validation_before": before, "validation_after": after, "resumed_from": last}
    encoder.config.setdefault("training", {}).setdefault("stages", []).append(record)
    if after:
        encoder.config["scores"] = {f"validation {k}": v for k, v in after.items()}
    return {**record, "validation_history": history, "loss_history": losses}


def _trainer_class():
    """`SentenceTransformerTrainer`, resuming LoRA runs by loading the checkpoint's adapter weights.

    Why: a checkpoint of a LoRA-wrapped body holds only the adapter, and sentence-transformers reloads it
    through transformers' peft integration, which needs a newer peft than installs here; peft's own
    `set_peft_model_state_dict` puts the weights back into the live model instead.
    """
    from sentence_transformers.sentence_transformer import SentenceTransformerTrainer

    class SpectrumTrainer(SentenceTransformerTrainer):
        def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
            from pathlib import Path

            body = self.model[0].model
            adapter = Path(checkpoint_path) / "adapter_model.safetensors"
            if not (hasattr(body, "peft_config") and adapter.is_file()):
                return super()._load_from_checkpoint(checkpoint_path)
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(body, load_file(str(adapter)))  # the other modules hold no trained weights
            return None

    return SpectrumTrainer
