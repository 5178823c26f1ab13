"""Supervised contrastive training of a format-2 `SpectrumModel` on sentence-transformers' Trainer.

What llm4ms adds to `SentenceTransformerTrainer` + `MultipleNegativesRankingLoss`: turning spectrum
triples (stored as spectra, not texts, so any textualizer can be applied) into a `datasets.Dataset` of
texts with optional seeded augmentation of the measured anchors, and a Recall@k evaluator over a
validation search task (a query counts as a hit when a library spectrum of the same compound — InChIKey
first block — is ranked first; sentence-transformers' information-retrieval evaluator computes it).
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping, Optional, Sequence

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
