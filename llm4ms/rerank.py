"""Re-rank embedding candidates with a classic spectrum similarity computed from the stored peaks.

The embedding index proposes `depth` candidates per query quickly; a peak-level score then orders them.
This keeps search fast at library scale while letting the user choose the final similarity. Scores:
``cosine_sqrt`` (cosine of square-root intensities) and ``wcs`` (NIST GC weighted dot product,
W = (m/z)^3 * I^0.6, DP = cos^2), both on nominal-mass bins (see `llm4ms.evaluate.classic`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.evaluate.classic import weighted_matrix
from llm4ms.spectrum import Spectrum

#: name -> (m/z power, intensity power, square the cosine)
RERANK_SCORES: dict[str, tuple[float, float, bool]] = {
    "cosine_sqrt": (0.0, 0.5, False),
    "wcs": (3.0, 0.6, True),
}


def rerank_scores(name: str, query: Spectrum, candidates: Sequence[Spectrum]) -> np.ndarray:
    """Similarity of `query` to each candidate under the classic score `name`."""
    if name not in RERANK_SCORES:
        raise ConfigError(f"unknown re-rank score {name!r}; choose one of {', '.join(RERANK_SCORES)}")
    mz_power, intensity_power, square = RERANK_SCORES[name]
    q = weighted_matrix([query], mz_power, intensity_power)
    lib = weighted_matrix(list(candidates), mz_power, intensity_power)
    cos = np.asarray((lib @ q.T).todense()).ravel()
    return cos * cos if square else cos


def reranker(name: str) -> Callable[[Spectrum, Sequence[Spectrum]], np.ndarray]:
    if name not in RERANK_SCORES:
        raise ConfigError(f"unknown re-rank score {name!r}; choose one of {', '.join(RERANK_SCORES)}")
    return lambda query, candidates: rerank_scores(name, query, candidates)
