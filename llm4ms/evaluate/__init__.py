"""Evaluation: Recall@k, the mass filter, classic baselines and our encoder behind one `Scorer` interface."""
from __future__ import annotations

from llm4ms.evaluate.runner import evaluate, markdown_table
from llm4ms.evaluate.scorers import Scorer, available_scorers, get_scorer, register_scorer
from llm4ms.mass import mass_candidates
from llm4ms.metrics import DEFAULT_KS, hit_keys_for, recall_at_k

__all__ = ["DEFAULT_KS", "Scorer", "available_scorers", "evaluate", "get_scorer", "hit_keys_for",
           "markdown_table", "mass_candidates", "recall_at_k", "register_scorer"]
