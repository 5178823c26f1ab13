"""The `Scorer` interface shared by every library-search method, a name registry, and top-k helpers.

Every method (classic scores, Spec2Vec, Flash entropy, our encoder) answers the same question the same
way: `fit(library)` once, then `search(queries, k, candidates)` returns the k best library indices and
their scores per query. Keeping the interface this small lets the runner compare methods on identical
queries and libraries, and makes a new method one file plus one registry line.

Shapes: indices int64 (nq, k) and scores float32 (nq, k), best first; positions beyond the number of
allowed candidates are padded with -1 / -inf. `candidates[i]` (an int array of library indices, or None
for "no restriction") limits query i to a subset, e.g. the molecular-mass filter.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional, Sequence

import numpy as np

from llm4ms.spectrum import Spectrum

Candidates = Optional[Sequence[Optional[np.ndarray]]]

#: name -> "module:Class"; imported lazily so optional dependencies load only when asked for.
_REGISTRY: dict[str, str] = {
    "cosine": "llm4ms.evaluate.classic:CosineScorer",
    "cosine_sqrt": "llm4ms.evaluate.classic:SqrtCosineScorer",
    "wcs": "llm4ms.evaluate.classic:WeightedCosineScorer",
    "composite": "llm4ms.evaluate.classic:CompositeScorer",
    "spec2vec": "llm4ms.evaluate.spec2vec_scorer:Spec2VecScorer",
    "entropy": "llm4ms.evaluate.entropy_scorer:EntropyScorer",
    # MS/MS at accurate m/z (llm4ms.evaluate.accurate_scorers; benchmarks/msms_recall.py)
    "cosine_hr": "llm4ms.evaluate.accurate_scorers:MatchmsCosineScorer",
    "modified_cosine": "llm4ms.evaluate.accurate_scorers:ModifiedCosineScorer",
    "entropy_hr": "llm4ms.evaluate.accurate_scorers:FlashEntropyHRScorer",
    "spec2vec_hr": "llm4ms.evaluate.spec2vec_scorer:Spec2VecHRScorer",
    "ms2deepscore": "llm4ms.evaluate.ms2deepscore_scorer:MS2DeepScoreScorer",
    "llm4ms": "llm4ms.evaluate.embedding_scorer:EncoderScorer",
    "llm4ms_embedding": "llm4ms.evaluate.embedding_scorer:EmbeddingOnlyScorer",
}


def available_scorers() -> list[str]:
    """Names accepted by `get_scorer` (and by `llm4ms evaluate --methods`)."""
    return list(_REGISTRY)


def register_scorer(name: str, target: str) -> None:
    """Register a scorer class under `name`, as ``"package.module:ClassName"``."""
    _REGISTRY[name] = target


def get_scorer(name: str, **options: Any) -> "Scorer":
    """Instantiate the scorer registered as `name` with keyword `options`."""
    from llm4ms.errors import ConfigError

    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(_REGISTRY)}")
    module_name, class_name = _REGISTRY[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"method {name!r} needs a package that is not installed ({err})") from err
    return getattr(module, class_name)(**options)


class Scorer(ABC):
    """One library-search method: `fit` on library spectra, then `search` queries."""

    name: str = "scorer"

    def __init__(self, chunk_size: int = 256) -> None:
        self.chunk_size = chunk_size
        self.n_library = 0

    @abstractmethod
    def fit(self, library: Sequence[Spectrum]) -> "Scorer":
        """Index the library spectra (kept in their given order: result indices refer to it)."""

    @abstractmethod
    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        """Scores (len(queries), n_library) float32 for a chunk of queries; higher is better."""

    def settings(self) -> dict[str, Any]:
        """Parameters worth recording in a benchmark result."""
        return {}

    def search(self, queries: Sequence[Spectrum], k: int = 10,
               candidates: Candidates = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k library indices and scores per query, best first, padded with -1 / -inf."""
        return search_by_chunks(self.score_chunk, queries, k, self.n_library, candidates,
                                self.chunk_size)


def search_by_chunks(score_fn: Callable[[Sequence[Spectrum]], np.ndarray], queries: Sequence[Spectrum],
                     k: int, n_library: int, candidates: Candidates = None,
                     chunk_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Run `score_fn` over query chunks (bounded memory) and keep the top k of each row."""
    nq = len(queries)
    _check_candidates(candidates, nq)
    indices = np.full((nq, k), -1, dtype=np.int64)
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    for start in range(0, nq, chunk_size):
        chunk = list(queries[start:start + chunk_size])
        block = np.asarray(score_fn(chunk), dtype=np.float32)
        if block.shape != (len(chunk), n_library):
            raise RuntimeError(f"scorer returned shape {block.shape}, expected {(len(chunk), n_library)}")
        for row in range(len(chunk)):
            cand = None if candidates is None else candidates[start + row]
            idx, val = top_k(block[row], k, cand)
            indices[start + row, :idx.size] = idx
            scores[start + row, :idx.size] = val
    return indices, scores


def top_k(row: np.ndarray, k: int, candidates: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """The k best entries of one score row (optionally among `candidates`), best first.

    Ties are broken by the lower library index, so results are reproducible across runs.
    """
    if candidates is not None:
        pool = np.asarray(candidates, dtype=np.int64)
        values = row[pool]
    else:
        pool = None
        values = row
    n = values.size
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if k < n:
        part = np.argpartition(-values, k - 1)[:k]
        # include every entry tied with the k-th value so the tie-break by index is exact
        kth = values[part].min()
        part = np.flatnonzero(values >= kth)
    else:
        part = np.arange(n)
    local = part[np.lexsort((part if pool is None else pool[part], -values[part]))][:k]
    chosen = local if pool is None else pool[local]
    return chosen.astype(np.int64), values[local].astype(np.float32)


def _check_candidates(candidates: Candidates, nq: int) -> None:
    if candidates is not None and len(candidates) != nq:
        raise ValueError(f"candidates has {len(candidates)} entries for {nq} queries")
