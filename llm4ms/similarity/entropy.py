"""Spectral entropy similarity (Li & Fiehn, Nat Methods 20, 1935-1942, 2023) over nominal-mass peaks.

Pairs are scored with `ms_entropy.calculate_entropy_similarity` (the optional extra ``llm4ms[baselines]``):
cheap for re-ranking a short candidate list. Whole-library search uses the Flash entropy index instead
(`llm4ms.evaluate.entropy_scorer`), with the same peaks and settings defined here.

The fragment tolerance is 0.49 Da: for integer m/z it matches exactly what 0.5 Da would (the same
integer), and it stays below half the 1 Da spacing of nominal peaks, as the Flash index requires.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.similarity.classic import nominal_rows
from llm4ms.spectrum import Spectrum

#: Default settings shared by pair scoring and the Flash entropy index.
TOLERANCE_DA = 0.49
NOISE_THRESHOLD = 0.01
INTENSITY_WEIGHT: Optional[str] = "entropy"
#: Nominal binning limit for entropy peaks (wider than the classic scores' 1000).
ENTROPY_MAX_MZ = 5000


def entropy_peaks(spectrum: Spectrum) -> np.ndarray:
    """(n, 2) float32 ``[m/z, intensity]`` nominal peaks, base peak 1, as ms-entropy takes them."""
    return _many_entropy_peaks([spectrum])[0]


def _many_entropy_peaks(spectra: Sequence[Spectrum]) -> list[np.ndarray]:
    """`entropy_peaks` of each spectrum, binned in one vectorised pass (a candidate list at a time)."""
    if not spectra:
        return []
    offsets = np.concatenate([[0], np.cumsum([len(s.mz) for s in spectra])])
    counts, bins, inten = nominal_rows(offsets, np.concatenate([s.mz for s in spectra]),
                                       np.concatenate([s.intensities for s in spectra]), ENTROPY_MAX_MZ)
    peaks = np.column_stack([bins.astype(np.float32), inten.astype(np.float32)])
    return np.split(peaks, np.cumsum(counts)[:-1])


def _pair_function(intensity_weight: Optional[str]):
    try:
        import ms_entropy
    except ImportError:
        raise ConfigError("entropy similarity needs ms-entropy: pip install 'llm4ms[baselines]'") from None
    if intensity_weight == "entropy":
        return ms_entropy.calculate_entropy_similarity
    if intensity_weight is None:
        return ms_entropy.calculate_unweighted_entropy_similarity
    raise ConfigError(f"intensity_weight must be 'entropy' or None, not {intensity_weight!r}")


def _score(similarity, pa: np.ndarray, pb: np.ndarray, tolerance: float, noise_threshold: float) -> float:
    if pa.size == 0 or pb.size == 0:
        return 0.0
    return float(similarity(pa, pb, ms2_tolerance_in_da=tolerance, noise_threshold=noise_threshold))


def entropy_pairs(pairs: Iterable[tuple[Spectrum, Spectrum]], tolerance: float = TOLERANCE_DA,
                  noise_threshold: float = NOISE_THRESHOLD,
                  intensity_weight: Optional[str] = INTENSITY_WEIGHT) -> np.ndarray:
    """Entropy similarity of each ``(a, b)`` pair, float32 in [0, 1] (0 when either side has no peak)."""
    similarity = _pair_function(intensity_weight)
    return np.asarray([_score(similarity, entropy_peaks(a), entropy_peaks(b), tolerance, noise_threshold)
                       for a, b in pairs], dtype=np.float32)


def entropy_matrix(queries: Sequence[Spectrum], candidates: Sequence[Spectrum], tolerance: float = TOLERANCE_DA,
                   noise_threshold: float = NOISE_THRESHOLD,
                   intensity_weight: Optional[str] = INTENSITY_WEIGHT) -> np.ndarray:
    """Dense (n_queries, n_candidates) float32 entropy similarities, scored pair by pair."""
    similarity = _pair_function(intensity_weight)
    lib = _many_entropy_peaks(candidates)
    out = np.zeros((len(queries), len(lib)), dtype=np.float32)
    for row, query in enumerate(queries):
        q = entropy_peaks(query)
        out[row] = [_score(similarity, q, c, tolerance, noise_threshold) for c in lib]
    return out
