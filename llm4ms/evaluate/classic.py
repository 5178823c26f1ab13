"""Classic nominal-mass EI baselines behind the `Scorer` interface: cosine, NIST weighted cosine and composite.

The math and its constants live in `llm4ms.similarity` (shared with production re-ranking); these classes
fit the library once as a sparse weight matrix and score a whole chunk of queries with one sparse-dense
matrix product, so a 100 k library costs one pass per query chunk rather than one per pair.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from scipy import sparse

from llm4ms.evaluate.scorers import Candidates, Scorer, _check_candidates, top_k
from llm4ms.similarity import (COMPOSITE_WEIGHTING, MAX_MZ, PRESETS, composite_score, cosine_block,
                               weighted_matrix, weighted_peaks)
from llm4ms.spectrum import Spectrum

_WCS = PRESETS["wcs"]


class WeightedCosineScorer(Scorer):
    """Cosine of weight vectors W = (m/z)^a * I^b over nominal-mass bins.

    Defaults are the NIST GC weights (a=3, b=0.6); the score reported is the NIST dot product
    DP = cos^2 = (sum Wq*Wl)^2 / (sum Wq^2 * sum Wl^2) (Stein & Scott 1994), which ranks exactly like
    the cosine. `square=False` reports the plain cosine instead.
    """

    name = "wcs"

    def __init__(self, mz_power: float = _WCS.mz_power, intensity_power: float = _WCS.intensity_power,
                 square: bool = _WCS.square, max_mz: int = MAX_MZ, chunk_size: int = 256) -> None:
        super().__init__(chunk_size)
        self.mz_power = mz_power
        self.intensity_power = intensity_power
        self.square = square
        self.max_mz = max_mz
        self._library: Optional[sparse.csr_matrix] = None

    def settings(self) -> dict[str, Any]:
        return {"mz_power": self.mz_power, "intensity_power": self.intensity_power,
                "square": self.square, "max_mz": self.max_mz, "binning": "nominal (round half up)"}

    def fit(self, library: Sequence[Spectrum]) -> "WeightedCosineScorer":
        self._library = weighted_matrix(library, self.mz_power, self.intensity_power, self.max_mz)
        self.n_library = self._library.shape[0]
        return self

    def cosine_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        """Plain cosine of the weight vectors, (len(queries), n_library)."""
        if self._library is None:
            raise RuntimeError("call fit(library) before searching")
        return cosine_block(self._library,
                            weighted_matrix(queries, self.mz_power, self.intensity_power, self.max_mz))

    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        cos = self.cosine_chunk(queries)
        return cos * cos if self.square else cos


class CosineScorer(WeightedCosineScorer):
    """Plain cosine over nominal-mass bins of raw intensities (`sqrt=True`: of sqrt intensities)."""

    name = "cosine"

    def __init__(self, sqrt: bool = False, max_mz: int = MAX_MZ, chunk_size: int = 256) -> None:
        mz_power, intensity_power, square = PRESETS["cosine_sqrt" if sqrt else "cosine"]
        super().__init__(mz_power=mz_power, intensity_power=intensity_power, square=square,
                         max_mz=max_mz, chunk_size=chunk_size)
        self.sqrt = sqrt

    def settings(self) -> dict[str, Any]:
        return {"intensity": "sqrt" if self.sqrt else "raw", "max_mz": self.max_mz,
                "binning": "nominal (round half up)"}


class SqrtCosineScorer(CosineScorer):
    """Cosine over nominal-mass bins of square-root intensities."""

    name = "cosine_sqrt"

    def __init__(self, max_mz: int = MAX_MZ, chunk_size: int = 256) -> None:
        super().__init__(sqrt=True, max_mz=max_mz, chunk_size=chunk_size)


class CompositeScorer(WeightedCosineScorer):
    """NIST composite ("identity") match factor, re-ranking each query's weighted-DP top `rerank`.

    The composite needs shared-peak bookkeeping per pair, so it is computed only for the `rerank`
    best DP hits (within the candidates, if any); the rest of the library keeps no score.
    """

    name = "composite"

    def __init__(self, rerank: int = 100, mz_power: float = COMPOSITE_WEIGHTING.mz_power,
                 intensity_power: float = COMPOSITE_WEIGHTING.intensity_power, max_mz: int = MAX_MZ,
                 chunk_size: int = 256) -> None:
        super().__init__(mz_power=mz_power, intensity_power=intensity_power, square=True,
                         max_mz=max_mz, chunk_size=chunk_size)
        self.rerank = rerank
        self._lib_peaks: list[tuple[np.ndarray, np.ndarray]] = []

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "rerank": self.rerank}

    def fit(self, library: Sequence[Spectrum]) -> "CompositeScorer":
        super().fit(library)
        self._lib_peaks = [weighted_peaks(s, self.mz_power, self.intensity_power, self.max_mz)
                           for s in library]
        return self

    def search(self, queries: Sequence[Spectrum], k: int = 10,
               candidates: Candidates = None) -> tuple[np.ndarray, np.ndarray]:
        _check_candidates(candidates, len(queries))
        depth = max(k, self.rerank)
        nq = len(queries)
        indices = np.full((nq, k), -1, dtype=np.int64)
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        for start in range(0, nq, self.chunk_size):
            chunk = list(queries[start:start + self.chunk_size])
            dp_block = self.score_chunk(chunk)
            for row, query in enumerate(chunk):
                cand = None if candidates is None else candidates[start + row]
                idx, dp = top_k(dp_block[row], depth, cand)
                if idx.size == 0:
                    continue
                q_bins, q_w = weighted_peaks(query, self.mz_power, self.intensity_power, self.max_mz)
                mf = np.array([composite_score(q_bins, q_w, *self._lib_peaks[j], d)
                               for j, d in zip(idx, dp)], dtype=np.float64)
                order = np.lexsort((idx, -mf))[:k]
                indices[start + row, :order.size] = idx[order]
                scores[start + row, :order.size] = mf[order]
        return indices, scores
