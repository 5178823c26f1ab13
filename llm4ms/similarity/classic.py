"""Classic nominal-mass EI scores: cosine, NIST weighted cosine (dot product) and the NIST composite.

Every score bins spectra to nominal mass (round half up, largest intensity per bin, scaled so the base
peak is 1), weights each bin W = (m/z)^a * I^b and compares L2-normalised weight vectors, so a block of
queries against many spectra is one sparse-dense matrix product.

References (formulas in ../shared/notes/reference-facts.md, "Classic scores"):
- Stein & Scott, J. Am. Soc. Mass Spectrom. 5, 859-866 (1994): weighted dot product and the composite
  match factor with the peak-ratio term.
- NIST MS Search GC weights W = (m/z)^3 * I^0.6; DP = (sum Wq*Wl)^2 / (sum Wq^2 * sum Wl^2).
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np
from scipy import sparse

from llm4ms.spectrum import Spectrum

#: Largest nominal m/z kept by the classic scores (bins above are dropped).
MAX_MZ = 1000


class Weighting(NamedTuple):
    """Peak weights W = (m/z)^mz_power * I^intensity_power; `square` reports cos^2 (the NIST DP)."""

    mz_power: float
    intensity_power: float
    square: bool


#: The named classic scores: the only place their constants live.
PRESETS: dict[str, Weighting] = {
    "cosine": Weighting(0.0, 1.0, False),       # cosine of raw intensities
    "cosine_sqrt": Weighting(0.0, 0.5, False),  # cosine of square-root intensities
    "wcs": Weighting(3.0, 0.6, True),           # NIST GC weighted dot product DP = cos^2
}

#: The weighting under the NIST composite match factor.
COMPOSITE_WEIGHTING = PRESETS["wcs"]

def nominal_peaks(spectrum: Spectrum, max_mz: int = MAX_MZ) -> tuple[np.ndarray, np.ndarray]:
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
                   max_mz: int = MAX_MZ) -> tuple[np.ndarray, np.ndarray]:
    """Nominal bins with weights (m/z)^mz_power * I^intensity_power, L2-normalised."""
    bins, inten = nominal_peaks(spectrum, max_mz)
    weights = np.power(bins.astype(np.float64), mz_power) * np.power(inten, intensity_power)
    weights[~np.isfinite(weights)] = 0.0
    norm = np.sqrt(np.sum(weights * weights))
    return bins, (weights / norm if norm > 0 else weights)


def weighted_matrix(spectra: Iterable[Spectrum], mz_power: float, intensity_power: float,
                    max_mz: int = MAX_MZ) -> sparse.csr_matrix:
    """CSR matrix (n, max_mz + 1) float32 of L2-normalised weight vectors, one row per spectrum."""
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


def cosine_block(library: sparse.csr_matrix, queries: sparse.csr_matrix) -> np.ndarray:
    """Cosines (n_queries, n_library) float32 of two `weighted_matrix` results."""
    q = queries.toarray()
    # sparse (n_lib, D) @ dense (D, nq) keeps the big operand sparse
    return np.asarray(library @ q.T).T.astype(np.float32)


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
