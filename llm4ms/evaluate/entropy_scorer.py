"""Flash entropy search baseline (Li & Fiehn, Nat Methods 20, 1935-1942, 2023; package ms-entropy).

EI spectra have no precursor, so we use the index's open search (every library spectrum is scored,
search_type 0) and keep the molecular ion: `precursor_ions_removal_da=None`, with a nominal placeholder
precursor m/z (largest peak + 1) that only orders the index. Peaks are binned to nominal mass first
(as for every classic method here). The fragment tolerance is 0.49 Da: the index asserts that adjacent
library peaks are more than 2 x tolerance apart, which integer peaks 1 Da apart only satisfy below 0.5;
for integer m/z it matches exactly what 0.5 Da would (the same integer). Entropy weighting and the
library's default 1 % noise threshold are kept.

`FlashEntropySearch.build_index` re-sorts the library by precursor m/z and drops spectra left empty by
cleaning: we carry our own index through its metadata and map scores back to the caller's order.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.evaluate.scorers import Scorer
from llm4ms.similarity.entropy import INTENSITY_WEIGHT, NOISE_THRESHOLD, TOLERANCE_DA, entropy_peaks
from llm4ms.spectrum import Spectrum


class EntropyScorer(Scorer):
    """Entropy similarity via `ms_entropy.FlashEntropySearch` open search over nominal-mass peaks."""

    name = "entropy"

    def __init__(self, tolerance: float = TOLERANCE_DA, noise_threshold: float = NOISE_THRESHOLD,
                 intensity_weight: Optional[str] = INTENSITY_WEIGHT, chunk_size: int = 256) -> None:
        super().__init__(chunk_size)
        self.tolerance = tolerance
        self.noise_threshold = noise_threshold
        self.intensity_weight = intensity_weight
        self._search: Any = None
        self._order: Optional[np.ndarray] = None

    def settings(self) -> dict[str, Any]:
        return {"tolerance_da": self.tolerance, "noise_threshold": self.noise_threshold,
                "intensity_weight": self.intensity_weight, "search": "open (no precursor in EI)",
                "precursor_ions_removal_da": None, "binning": "nominal (round half up)"}

    def fit(self, library: Sequence[Spectrum]) -> "EntropyScorer":
        from ms_entropy import FlashEntropySearch

        records = []
        max_mz = 1.0
        for i, spectrum in enumerate(library):
            peaks = entropy_peaks(spectrum)
            top = float(peaks[:, 0].max()) if peaks.size else 0.0
            max_mz = max(max_mz, top)
            records.append({"precursor_mz": top + 1.0, "peaks": peaks, "llm4ms_index": i})
        self._search = FlashEntropySearch(max_ms2_tolerance_in_da=self.tolerance,
                                          intensity_weight=self.intensity_weight)
        indexed = self._search.build_index(records, max_indexed_mz=max_mz + 2.0,
                                           precursor_ions_removal_da=None,
                                           noise_threshold=self.noise_threshold,
                                           min_ms2_difference_in_da=2.0 * self.tolerance)
        self._order = np.array([r["llm4ms_index"] for r in indexed], dtype=np.int64)
        self.n_library = len(library)
        return self

    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        if self._search is None:
            raise RuntimeError("call fit(library) before searching")
        out = np.zeros((len(queries), self.n_library), dtype=np.float32)
        for row, query in enumerate(queries):
            peaks = entropy_peaks(query)
            if peaks.size == 0:
                continue
            top = float(peaks[:, 0].max())
            clean = self._search.clean_spectrum_for_search(
                precursor_mz=top + 1.0, peaks=peaks, precursor_ions_removal_da=None,
                noise_threshold=self.noise_threshold,
                min_ms2_difference_in_da=2.0 * self.tolerance)
            if clean.size == 0:
                continue
            sims = self._search.open_search(peaks=clean, ms2_tolerance_in_da=self.tolerance)
            out[row, self._order] = sims
        return out
