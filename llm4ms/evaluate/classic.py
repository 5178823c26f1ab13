"""Classic nominal-mass EI scores: cosine, NIST weighted cosine (dot product) and NIST composite.

All three bin spectra to nominal mass (round half up, largest intensity per bin, scaled so the base
peak is 1) and compute scores for a whole chunk of queries against the library with one sparse-dense
matrix product, so a 100 k library costs one pass per query chunk rather than one per pair.

References (formulas in /work/shared/notes/reference-facts.md, "Classic scores"):
- Stein & Scott, J. Am. Soc. Mass Spectrom. 5, 859-866 (1994): weighted dot product and the composite
  match factor with the peak-ratio term.
- NIST MS Search GC weights W = (m/z)^3 * I^0.6; DP = (sum Wq*Wl)^2 / (sum Wq^2 * sum Wl^2).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from scipy import sparse

from llm4ms.evaluate.scorers import Candidates, Scorer, _check_candidates
from llm4ms.spectrum import Spectrum


def nominal_peaks(spectrum: Spectrum, max_mz: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Integer m/z bins (ascending, unique) and intensities scaled to a base peak of 1."""
    mz, inten = spectrum.mz, spectrum.intensities
    keep = np.isfinite(mz) & np.isfinite(inten) & (inten > 0)
    bins = np.floor(mz[keep] + 0.5).astype(np.int64)
    inten = inten[keep]
    inside = (bins >= 0) & (bins <= max_mz)
    bins, inten = bins[inside], inten[inside]
    if bins.size == 0:
        return bins, inten.astype(np.float64)
    order = np.lexsort((-inten, bins))
    bins, inten = bins[order], inten[order]
    first = np.ones(bins.size, dtype=bool)
    first[1:] = bins[1:] != bins[:-1]
    bins, inten = bins[first], inten[first]
    return bins, inten / inten.max()


def weighted_peaks(spectrum: Spectrum, mz_power: float, intensity_power: float,
                   max_mz: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Nominal bins with weights (m/z)^mz_power * I^intensity_power, L2-normalised."""
    bins, inten = nominal_peaks(spectrum, max_mz)
    weights = np.power(bins.astype(np.float64), mz_power) * np.power(inten, intensity_power)
    weights[~np.isfinite(weights)] = 0.0
    norm = np.sqrt(np.sum(weights * weights))
    return bins, (weights / norm if norm > 0 else weights)


def weighted_matrix(spectra: Sequence[Spectrum], mz_power: float, intensity_power: float,
                    max_mz: int = 1000) -> sparse.csr_matrix:
    """CSR matrix (n, max_mz + 1) of L2-normalised weight vectors, one row per spectrum."""
    indptr = [0]
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for spectrum in spectra:
        bins, weights = weighted_peaks(spectrum, mz_power, intensity_power, max_mz)
        cols.append(bins)
        vals.append(weights)
        indptr.append(indptr[-1] + bins.size)
    data = np.concatenate(vals).astype(np.float32) if vals else np.zeros(0, np.float32)
    indices = np.concatenate(cols).astype(np.int32) if cols else np.zeros(0, np.int32)
    return sparse.csr_matrix((data, indices, np.asarray(indptr, dtype=np.int64)),
                             shape=(len(indptr) - 1, max_mz + 1))


class WeightedCosineScorer(Scorer):
    """Cosine of weight vectors W = (m/z)^a * I^b over nominal-mass bins.

    Defaults are the NIST GC weights (a=3, b=0.6); the score reported is the NIST dot product
    DP = cos^2 = (sum Wq*Wl)^2 / (sum Wq^2 * sum Wl^2) (Stein & Scott 1994), which ranks exactly like
    the cosine. `square=False` reports the plain cosine instead.
    """

    name = "wcs"

    def __init__(self, mz_power: float = 3.0, intensity_power: float = 0.6, square: bool = True,
                 max_mz: int = 1000, chunk_size: int = 256) -> None:
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
        q = weighted_matrix(queries, self.mz_power, self.intensity_power, self.max_mz).toarray()
        # sparse (n_lib, D) @ dense (D, nq) keeps the big operand sparse
        return np.asarray(self._library @ q.T).T.astype(np.float32)

    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        cos = self.cosine_chunk(queries)
        return cos * cos if self.square else cos


class CosineScorer(WeightedCosineScorer):
    """Plain cosine over nominal-mass bins of raw intensities (`sqrt=True`: of sqrt intensities)."""

    name = "cosine"

    def __init__(self, sqrt: bool = False, max_mz: int = 1000, chunk_size: int = 256) -> None:
        super().__init__(mz_power=0.0, intensity_power=0.5 if sqrt else 1.0, square=False,
                         max_mz=max_mz, chunk_size=chunk_size)
        self.sqrt = sqrt

    def settings(self) -> dict[str, Any]:
        return {"intensity": "sqrt" if self.sqrt else "raw", "max_mz": self.max_mz,
                "binning": "nominal (round half up)"}


class SqrtCosineScorer(CosineScorer):
    """Cosine over nominal-mass bins of square-root intensities."""

    name = "cosine_sqrt"

    def __init__(self, max_mz: int = 1000, chunk_size: int = 256) -> None:
        super().__init__(sqrt=True, max_mz=max_mz, chunk_size=chunk_size)


def composite_score(q_bins: np.ndarray, q_w: np.ndarray, l_bins: np.ndarray, l_w: np.ndarray,
                    dp: float) -> float:
    """NIST composite match factor of one pair from its weight vectors and dot product `dp`.

    MF = (N_U * DP + N_shared * F_R) / (N_U + N_shared), where N_U is the number of query (unknown)
    peaks, N_shared the peaks present in both, and F_R the mean over consecutive shared peaks (by m/z)
    of min(R_i, 1/R_i), R_i = (W_L,i * W_U,i-1) / (W_L,i-1 * W_U,i) (Stein & Scott 1994). With fewer
    than two shared peaks there is no ratio to compare and MF = DP.
    """
    n_u = int(q_bins.size)
    _, qi, li = np.intersect1d(q_bins, l_bins, assume_unique=True, return_indices=True)
    wu, wl = q_w[qi], l_w[li]
    valid = (wu > 0) & (wl > 0)
    wu, wl = wu[valid], wl[valid]
    n_shared = int(wu.size)
    if n_shared < 2 or n_u == 0:
        return float(dp)
    ratio = (wl[1:] * wu[:-1]) / (wl[:-1] * wu[1:])
    f_r = float(np.mean(np.minimum(ratio, 1.0 / ratio)))
    return (n_u * float(dp) + n_shared * f_r) / (n_u + n_shared)


class CompositeScorer(WeightedCosineScorer):
    """NIST composite ("identity") match factor, re-ranking each query's weighted-DP top `rerank`.

    The composite needs shared-peak bookkeeping per pair, so it is computed only for the `rerank`
    best DP hits (within the candidates, if any); the rest of the library keeps no score.
    """

    name = "composite"

    def __init__(self, rerank: int = 100, mz_power: float = 3.0, intensity_power: float = 0.6,
                 max_mz: int = 1000, chunk_size: int = 256) -> None:
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
        from llm4ms.evaluate.scorers import top_k

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
