"""Accurate-mass (high-resolution) MS/MS pair scores: cosine, modified cosine and entropy at the recorded m/z.

Unlike the nominal scores (`llm4ms.similarity.classic`, `llm4ms.similarity.entropy`), nothing is binned: two
fragments match when their m/z lie within a tolerance in Da, so peaks 0.05 Da apart are different ions.
Each function scores a few queries against a candidate list (re-ranking a precursor window, a search's top
hits), pair by pair with the reference implementations; whole-library search uses the indexes in
`llm4ms.evaluate.accurate_scorers`, with the settings defined here.

- ``cosine_hr``: matchms `CosineGreedy` (tolerance 0.01 Da, raw intensities: mz_power 0, intensity_power 1).
- ``modified_cosine``: matchms `ModifiedCosineGreedy` (0.01 Da): fragments also match when shifted by the
  precursor m/z difference. It needs both precursor m/z values; a pair where either is missing is scored with
  the plain cosine (the unshifted half of the same score).
- ``entropy_hr``: ms-entropy `calculate_entropy_similarity` (Li & Fiehn, Nat Methods 20, 1935-1942, 2023) with
  a 0.02 Da fragment tolerance and its default cleaning (1 % noise floor, peaks closer than 2 x tolerance
  centroided); peaks above the precursor m/z - 1.6 Da are removed when the precursor is known, as the Flash
  entropy index does (`PRECURSOR_REMOVAL_DA`).

matchms is the optional extra ``llm4ms[msms]``, ms-entropy ``llm4ms[baselines]``; both are imported lazily.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum

#: fragment tolerance (Da) of the two cosine scores
COSINE_TOLERANCE_DA = 0.01
#: fragment tolerance (Da) of the entropy similarity (ms-entropy's default)
ENTROPY_TOLERANCE_DA = 0.02
#: peaks above precursor m/z minus this are removed before entropy scoring (Li & Fiehn 2023)
PRECURSOR_REMOVAL_DA = 1.6
#: the entropy similarity's relative noise floor (ms-entropy's default)
ENTROPY_NOISE_THRESHOLD = 0.01

#: names `score_matrix` accepts from this module
ACCURATE_SCORES = ("cosine_hr", "modified_cosine", "entropy_hr")


def _valid_precursor(spectrum: Spectrum) -> Optional[float]:
    mz = spectrum.precursor_mz
    return mz if mz is not None and np.isfinite(mz) and mz > 0 else None


def finite_peaks(spectrum: Spectrum) -> tuple[np.ndarray, np.ndarray]:
    """m/z (ascending) and intensities of the peaks with finite values and intensity > 0, as recorded."""
    mz, inten = spectrum.mz, spectrum.intensities
    keep = np.isfinite(mz) & np.isfinite(inten) & (inten > 0)
    return mz[keep], inten[keep]


def matchms_peaks_spectrum(spectrum: Spectrum):
    """A `matchms.Spectrum` with the peaks and the precursor m/z only (no metadata harmonisation: fast)."""
    try:
        from matchms import Spectrum as MatchmsSpectrum
    except ImportError:
        raise ConfigError('accurate-mass cosine scores need matchms: pip install "llm4ms[msms]"') from None
    mz, inten = finite_peaks(spectrum)
    precursor = _valid_precursor(spectrum)
    meta = {} if precursor is None else {"precursor_mz": precursor}
    return MatchmsSpectrum(mz=mz.astype(np.float64), intensities=inten.astype(np.float64), metadata=meta,
                           metadata_harmonization=False)


def _matchms_matrix(similarity, queries: list, candidates: list) -> np.ndarray:
    if not queries or not candidates:
        return np.zeros((len(queries), len(candidates)), dtype=np.float32)
    block = similarity.matrix(queries, candidates, progress_bar=False)
    scores = block["score"] if block.dtype.names else block
    return np.nan_to_num(np.asarray(scores, dtype=np.float32), nan=0.0)


def matchms_cosine_scores(queries: Sequence, candidates: Sequence, modified: bool = False,
                          tolerance: float = COSINE_TOLERANCE_DA) -> np.ndarray:
    """(n_queries, n_candidates) float32 `CosineGreedy` (or `ModifiedCosineGreedy`) scores of matchms spectra
    (`matchms_peaks_spectrum`); with `modified`, a pair where either lacks a precursor m/z gets the cosine."""
    try:
        from matchms.similarity import CosineGreedy, ModifiedCosineGreedy
    except ImportError:
        raise ConfigError('accurate-mass cosine scores need matchms: pip install "llm4ms[msms]"') from None
    q, c = list(queries), list(candidates)
    cosine = CosineGreedy(tolerance=tolerance)
    if not modified:
        return _matchms_matrix(cosine, q, c)
    q_has = np.array([s.get("precursor_mz") is not None for s in q], dtype=bool)
    c_has = np.array([s.get("precursor_mz") is not None for s in c], dtype=bool)
    out = np.zeros((len(q), len(c)), dtype=np.float32)
    qi, ci = np.flatnonzero(q_has), np.flatnonzero(c_has)
    if qi.size and ci.size:
        out[np.ix_(qi, ci)] = _matchms_matrix(ModifiedCosineGreedy(tolerance=tolerance),
                                              [q[i] for i in qi], [c[j] for j in ci])
    q_without, c_without = np.flatnonzero(~q_has), np.flatnonzero(~c_has)
    if q_without.size and c:        # queries without a precursor: cosine against every candidate
        out[q_without] = _matchms_matrix(cosine, [q[i] for i in q_without], c)
    if qi.size and c_without.size:  # candidates without a precursor: cosine for the other queries
        out[np.ix_(qi, c_without)] = _matchms_matrix(cosine, [q[i] for i in qi], [c[j] for j in c_without])
    return out


def cosine_hr_matrix(queries: Sequence[Spectrum], candidates: Sequence[Spectrum],
                     tolerance: float = COSINE_TOLERANCE_DA) -> np.ndarray:
    """(n_queries, n_candidates) float32 matchms `CosineGreedy` scores at `tolerance` Da."""
    return matchms_cosine_scores([matchms_peaks_spectrum(s) for s in queries],
                                 [matchms_peaks_spectrum(s) for s in candidates], False, tolerance)


def modified_cosine_matrix(queries: Sequence[Spectrum], candidates: Sequence[Spectrum],
                           tolerance: float = COSINE_TOLERANCE_DA) -> np.ndarray:
    """(n_queries, n_candidates) float32 matchms `ModifiedCosineGreedy` scores at `tolerance` Da.

    A pair where either spectrum lacks a precursor m/z gets the plain `CosineGreedy` score instead.
    """
    return matchms_cosine_scores([matchms_peaks_spectrum(s) for s in queries],
                                 [matchms_peaks_spectrum(s) for s in candidates], True, tolerance)


def entropy_hr_peaks(spectrum: Spectrum) -> np.ndarray:
    """(n, 2) float32 ``[m/z, intensity]`` peaks as recorded (finite, intensity > 0), as ms-entropy takes them."""
    mz, inten = finite_peaks(spectrum)
    return np.column_stack([mz, inten]).astype(np.float32)


def entropy_max_mz(spectrum: Spectrum, removal: float = PRECURSOR_REMOVAL_DA) -> float:
    """The largest fragment m/z entropy cleaning keeps: precursor m/z - `removal`, or -1 (no limit) without one."""
    precursor = _valid_precursor(spectrum)
    return precursor - removal if precursor is not None else -1.0


def entropy_hr_matrix(queries: Sequence[Spectrum], candidates: Sequence[Spectrum],
                      tolerance: float = ENTROPY_TOLERANCE_DA,
                      noise_threshold: float = ENTROPY_NOISE_THRESHOLD) -> np.ndarray:
    """(n_queries, n_candidates) float32 entropy similarities at `tolerance` Da (0 where a side has no peak)."""
    try:
        from ms_entropy import calculate_entropy_similarity
    except ImportError:
        raise ConfigError("entropy similarity needs ms-entropy: pip install 'llm4ms[baselines]'") from None
    # each side cleaned once with its own precursor limit (calculate_* would apply one max_mz to both)
    lib = [entropy_hr_clean(c, tolerance, noise_threshold) for c in candidates]
    out = np.zeros((len(queries), len(lib)), dtype=np.float32)
    for row, query in enumerate(queries):
        q = entropy_hr_clean(query, tolerance, noise_threshold)
        if q.size == 0:
            continue
        for col, c in enumerate(lib):
            if c.size:
                out[row, col] = calculate_entropy_similarity(q, c, ms2_tolerance_in_da=tolerance, clean_spectra=False)
    return out


def entropy_hr_clean(spectrum: Spectrum, tolerance: float = ENTROPY_TOLERANCE_DA,
                     noise_threshold: float = ENTROPY_NOISE_THRESHOLD) -> np.ndarray:
    """The spectrum's peaks after ms-entropy's `clean_spectrum` with the settings of `entropy_hr_matrix`:
    fragments up to the precursor m/z - 1.6 Da (all without a precursor), the noise floor, peaks closer than
    2 x `tolerance` centroided, intensities summing to 1. The Flash index takes exactly these peaks."""
    peaks = entropy_hr_peaks(spectrum)
    if peaks.size == 0:
        return peaks.reshape(0, 2)
    from ms_entropy import clean_spectrum

    return clean_spectrum(peaks, min_mz=0.0, max_mz=entropy_max_mz(spectrum), noise_threshold=noise_threshold,
                          min_ms2_difference_in_da=2.0 * tolerance, normalize_intensity=True)


def accurate_matrix(name: str, queries: Sequence[Spectrum], candidates: Sequence[Spectrum]) -> np.ndarray:
    """Dense (n_queries, n_candidates) float32 scores under the accurate-mass score `name`."""
    functions = {"cosine_hr": cosine_hr_matrix, "modified_cosine": modified_cosine_matrix,
                 "entropy_hr": entropy_hr_matrix}
    if name not in functions:
        raise ConfigError(f"unknown accurate-mass score {name!r}; choose one of {', '.join(ACCURATE_SCORES)}")
    return functions[name](list(queries), list(candidates))
