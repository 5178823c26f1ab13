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

def nominal_rows(offsets: np.ndarray, mz: np.ndarray, intensities: np.ndarray,
                 max_mz: int = MAX_MZ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`nominal_peaks` of many spectra at once, their peaks concatenated (spectrum i = ``offsets[i]:offsets[i+1]``).

    Returns ``(counts, bins, relative)``: the number of nominal peaks per spectrum and their bins and
    intensities, concatenated in spectrum order. One vectorised pass instead of a Python loop, so a
    million-spectrum library's stored peaks become a score matrix in seconds.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n = offsets.size - 1
    mz = np.asarray(mz, dtype=np.float64)
    inten = np.asarray(intensities, dtype=np.float64)
    row = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    keep = np.isfinite(mz) & np.isfinite(inten) & (inten > 0)
    bins = np.floor(np.where(keep, mz, -1.0) + 0.5)
    keep &= (bins >= 0) & (bins <= max_mz)
    row, bins, inten = row[keep], bins[keep].astype(np.int64), inten[keep]
    key = row * (max_mz + 1) + bins
    if key.size > 1 and not np.all(key[1:] > key[:-1]):  # not yet one peak per bin, ascending
        order = np.lexsort((-inten, key))
        key, row, bins, inten = key[order], row[order], bins[order], inten[order]
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        row, bins, inten = row[first], bins[first], inten[first]
    counts = np.bincount(row, minlength=n)
    if inten.size:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        full = counts > 0
        base = np.zeros(n, dtype=np.float64)
        base[full] = np.maximum.reduceat(inten, starts[full])
        inten = inten / base[row]
    return counts, bins, inten


def nominal_peaks(spectrum: Spectrum, max_mz: int = MAX_MZ) -> tuple[np.ndarray, np.ndarray]:
    """Integer m/z bins (ascending, unique) and intensities scaled to a base peak of 1."""
    _, bins, inten = nominal_rows(np.array([0, len(spectrum.mz)]), spectrum.mz, spectrum.intensities, max_mz)
    return bins, inten


def _unit_weights(counts: np.ndarray, bins: np.ndarray, relative: np.ndarray, mz_power: float,
                  intensity_power: float) -> np.ndarray:
    """Weights (m/z)^mz_power * I^intensity_power, L2-normalised per spectrum (all-zero rows stay zero)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        weights = np.power(bins.astype(np.float64), mz_power) * np.power(relative, intensity_power)
    weights[~np.isfinite(weights)] = 0.0
    row = np.repeat(np.arange(counts.size), counts)
    norm = np.sqrt(np.bincount(row, weights=weights * weights, minlength=counts.size))
    scale = np.divide(1.0, norm, out=np.ones_like(norm), where=norm > 0)
    return weights * scale[row]


def weighted_peaks(spectrum: Spectrum, mz_power: float, intensity_power: float,
                   max_mz: int = MAX_MZ) -> tuple[np.ndarray, np.ndarray]:
    """Nominal bins with weights (m/z)^mz_power * I^intensity_power, L2-normalised."""
    counts, bins, rel = nominal_rows(np.array([0, len(spectrum.mz)]), spectrum.mz, spectrum.intensities, max_mz)
    return bins, _unit_weights(counts, bins, rel, mz_power, intensity_power)


def weighted_matrix_from_peaks(offsets: np.ndarray, mz: np.ndarray, intensities: np.ndarray, mz_power: float,
                               intensity_power: float, max_mz: int = MAX_MZ) -> sparse.csr_matrix:
    """`weighted_matrix` of spectra given as concatenated peaks (a library's stored arrays)."""
    counts, bins, rel = nominal_rows(offsets, mz, intensities, max_mz)
    weights = _unit_weights(counts, bins, rel, mz_power, intensity_power)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return sparse.csr_matrix((weights.astype(np.float32), bins.astype(np.int32), indptr),
                             shape=(counts.size, max_mz + 1))


def weighted_matrix(spectra: Iterable[Spectrum], mz_power: float, intensity_power: float,
                    max_mz: int = MAX_MZ) -> sparse.csr_matrix:
    """CSR matrix (n, max_mz + 1) float32 of L2-normalised weight vectors, one row per spectrum."""
    spectra = list(spectra)
    lengths = [len(s.mz) for s in spectra]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    mz = np.concatenate([s.mz for s in spectra]) if spectra else np.zeros(0)
    inten = np.concatenate([s.intensities for s in spectra]) if spectra else np.zeros(0)
    return weighted_matrix_from_peaks(offsets, mz, inten, mz_power, intensity_power, max_mz)


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
