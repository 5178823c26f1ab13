"""Accurate-mass MS/MS baselines behind the `Scorer` interface: cosine, modified cosine and Flash entropy.

Two paths, one score each:

- **Candidate lists** (a precursor window, a mass filter): each query is scored only against its candidates,
  with the reference pair scores of `llm4ms.similarity.accurate` (matchms `CosineGreedy` /
  `ModifiedCosineGreedy`, 0.01 Da) or, for entropy, with ms-entropy's identity search over the index (the
  same scores as `calculate_entropy_similarity`, restricted to the window).
- **Open search** (no candidates: every library spectrum): pairwise matchms scores over a 50 k library are far
  too slow (about 0.2 ms per pair, 10 s per query), so the cosines come from matchms `FlashSimilarity`
  (score_type "cosine"; matching_mode "fragment" for the cosine, "hybrid" = fragment or neutral-loss match for
  the modified cosine; no extra cleaning, float64) and entropy from ms-entropy's `FlashEntropySearch`
  open search.

Agreement of the Flash cosines with the pair scores (`FLASH_AGREEMENT`; MassBank-data 2025.05.1, cleaned MS/MS,
positive mode; each query against its 100 best Flash hits plus 100 random library spectra):

- 100 random spectra vs the 66,412 positive spectra (19,982 pairs): cosine max |difference| 0.0008, no pair above
  0.001; modified cosine max 0.017, 0.03 % of pairs above 0.001; top-1 and top-10 identical for every query.
- 50 validation queries of `benchmarks/msms_recall.py` vs their 65,863-spectrum library (about 10,000 pairs):
  cosine max 0.021, 0.02 % of pairs above 0.001; modified cosine max 0.021, 0.11 % above 0.001; top-1 and
  top-10 identical for every query.

The differences are fragment pairs exactly at the tolerance (93.0 vs 93.01 at 0.01 Da: `CosineGreedy` counts
it, the Flash index's float arithmetic may not) and the order in which greedy matching takes tied pairs.
`benchmarks/msms_recall.py` measures the agreement again on each run (`flash_agreement`) and stores it with
the result.

Scores are computed at the recorded m/z: `fit` takes the spectra as they are (the MS/MS sets are already
cleaned by `llm4ms.msms.clean_msms`); entropy applies ms-entropy's own cleaning (`entropy_hr_clean`).
"""
from __future__ import annotations

import functools
import sys
from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.evaluate.scorers import Candidates, Scorer, _check_candidates, search_by_chunks, top_k
from llm4ms.similarity.accurate import (COSINE_TOLERANCE_DA, ENTROPY_NOISE_THRESHOLD, ENTROPY_TOLERANCE_DA,
                                        PRECURSOR_REMOVAL_DA, entropy_hr_clean, matchms_cosine_scores,
                                        matchms_peaks_spectrum)
from llm4ms.spectrum import Spectrum

#: measured agreement of the Flash open-search cosines with the matchms pair scores (see the module docstring)
FLASH_AGREEMENT = {
    "data": "MassBank-data 2025.05.1, cleaned MS/MS, positive mode",
    "sample": "each query vs its 100 best Flash hits + 100 random library spectra",
    "cosine_hr": {"max_abs_diff": [0.00084, 0.0208], "pairs_over_0.001": [0.0, 0.0002], "top1_same": 1.0,
                  "top10_overlap": 1.0},
    "modified_cosine": {"max_abs_diff": [0.0169, 0.0208], "pairs_over_0.001": [0.00025, 0.0011], "top1_same": 1.0,
                        "top10_overlap": 1.0},
    "runs": ["100 random spectra vs 66,412 (19,982 pairs)",
             "50 validation queries of benchmarks/msms_recall.py vs 65,863 (about 10,000 pairs)"],
}


class _CandidateScorer(Scorer):
    """Open search through `score_chunk` (an index); candidate lists through `candidate_scores` (exact pairs)."""

    def candidate_scores(self, query: Spectrum, candidates: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def search(self, queries: Sequence[Spectrum], k: int = 10,
               candidates: Candidates = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k per query: open search without candidates (also for a query whose entry is None), else only
        its candidates are scored."""
        _check_candidates(candidates, len(queries))
        if candidates is None:
            return search_by_chunks(self.score_chunk, queries, k, self.n_library, None, self.chunk_size)
        nq = len(queries)
        indices = np.full((nq, k), -1, dtype=np.int64)
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        open_rows = [i for i in range(nq) if candidates[i] is None]
        if open_rows:
            idx, sc = search_by_chunks(self.score_chunk, [queries[i] for i in open_rows], k, self.n_library,
                                       None, self.chunk_size)
            indices[open_rows], scores[open_rows] = idx, sc
        for row in range(nq):
            cand = candidates[row]
            if cand is None:
                continue
            cand = np.asarray(cand, dtype=np.int64)
            if cand.size == 0:
                continue
            values = np.zeros(self.n_library, dtype=np.float32)
            values[cand] = self.candidate_scores(queries[row], cand)
            idx, val = top_k(values, k, cand)
            indices[row, :idx.size] = idx
            scores[row, :idx.size] = val
        return indices, scores


class MatchmsCosineScorer(_CandidateScorer):
    """Cosine at accurate m/z: matchms `CosineGreedy` on candidate lists, `FlashSimilarity` for open search."""

    name = "cosine_hr"
    modified = False

    def __init__(self, tolerance: float = COSINE_TOLERANCE_DA, chunk_size: int = 512, n_jobs: int = 1) -> None:
        super().__init__(chunk_size)
        self.tolerance = tolerance
        self.n_jobs = n_jobs
        self._library: list = []

    def settings(self) -> dict[str, Any]:
        similarity = "ModifiedCosineGreedy" if self.modified else "CosineGreedy"
        return {"tolerance_da": self.tolerance, "mz_power": 0.0, "intensity_power": 1.0, "mz": "as recorded",
                "candidate_lists": f"matchms {similarity} per pair",
                "open_search": f"matchms FlashSimilarity(score_type='cosine', matching_mode="
                               f"'{'hybrid' if self.modified else 'fragment'}', noise_cutoff=0, float64)",
                "flash_agreement": {**FLASH_AGREEMENT[self.name], "runs": FLASH_AGREEMENT["runs"]},
                **({"missing_precursor": "plain cosine for that pair"} if self.modified else {})}

    def _flash(self):
        from matchms.similarity import FlashSimilarity

        return FlashSimilarity(score_type="cosine", matching_mode="hybrid" if self.modified else "fragment",
                               tolerance=self.tolerance, remove_precursor=False, noise_cutoff=0.0,
                               normalize_to_half=False, dtype=np.float64)

    def fit(self, library: Sequence[Spectrum]) -> "MatchmsCosineScorer":
        self._library = [matchms_peaks_spectrum(s) for s in library]
        self.n_library = len(self._library)
        return self

    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        """Open-search scores (len(queries), n_library) from `FlashSimilarity.matrix`."""
        if not self._library:
            return np.zeros((len(queries), 0), dtype=np.float32)
        flash = self._flash()
        module = sys.modules.get(type(flash).__module__)
        bar = getattr(module, "tqdm", None)
        if bar is not None:  # matchms draws one progress bar per chunk: noise in a benchmark log
            module.tqdm = functools.partial(bar, disable=True)
        try:
            block = flash.matrix([matchms_peaks_spectrum(q) for q in queries], self._library, n_jobs=self.n_jobs)
        finally:
            if bar is not None:
                module.tqdm = bar
        return np.nan_to_num(np.asarray(block, dtype=np.float32), nan=0.0)

    def candidate_scores(self, query: Spectrum, candidates: np.ndarray) -> np.ndarray:
        return matchms_cosine_scores([matchms_peaks_spectrum(query)], [self._library[j] for j in candidates],
                                     self.modified, self.tolerance)[0]


class ModifiedCosineScorer(MatchmsCosineScorer):
    """Modified cosine at accurate m/z: `ModifiedCosineGreedy` on candidates, Flash "hybrid" for open search."""

    name = "modified_cosine"
    modified = True


class FlashEntropyHRScorer(_CandidateScorer):
    """Entropy similarity at accurate m/z with `ms_entropy.FlashEntropySearch` (Li & Fiehn 2023).

    Open search scores every library spectrum; a candidate list (the precursor window) is scored by the
    index's identity search over the precursor range the candidates span, then restricted to the candidates.
    Peaks are cleaned by `llm4ms.similarity.accurate.entropy_hr_clean` (ms-entropy's `clean_spectrum`: fragments
    up to precursor m/z - 1.6 Da, 1 % noise floor, peaks within 2 x tolerance centroided), so the index gives
    the pair score `scores("entropy_hr", ...)` exactly. Spectra without a precursor m/z are indexed under a
    placeholder precursor of -1 (never inside a window) with all their fragments kept.
    """

    name = "entropy_hr"

    def __init__(self, tolerance: float = ENTROPY_TOLERANCE_DA, noise_threshold: float = ENTROPY_NOISE_THRESHOLD,
                 chunk_size: int = 256) -> None:
        super().__init__(chunk_size)
        self.tolerance = tolerance
        self.noise_threshold = noise_threshold
        self._search: Any = None
        self._order: Optional[np.ndarray] = None      # index position -> library index
        self._position: Optional[np.ndarray] = None   # library index -> index position (-1: not indexed)
        self._precursors = np.zeros(0)

    def settings(self) -> dict[str, Any]:
        return {"tolerance_da": self.tolerance, "noise_threshold": self.noise_threshold,
                "intensity_weight": "entropy", "precursor_ions_removal_da": PRECURSOR_REMOVAL_DA,
                "min_ms2_difference_in_da": 2.0 * self.tolerance, "mz": "as recorded",
                "open_search": "FlashEntropySearch.open_search",
                "candidate_lists": "FlashEntropySearch.identity_search over the candidates' precursor range"}

    def fit(self, library: Sequence[Spectrum]) -> "FlashEntropyHRScorer":
        from ms_entropy import FlashEntropySearch

        records = []
        top = 1.0
        precursors = np.full(len(library), np.nan)
        for i, spectrum in enumerate(library):
            peaks = entropy_hr_clean(spectrum, self.tolerance, self.noise_threshold)
            if peaks.size:
                top = max(top, float(peaks[:, 0].max()))
            pmz = spectrum.precursor_mz
            known = pmz is not None and np.isfinite(pmz) and pmz > 0
            precursors[i] = pmz if known else np.nan
            records.append({"precursor_mz": float(pmz) if known else -1.0, "peaks": peaks, "llm4ms_index": i})
        self._search = FlashEntropySearch(max_ms2_tolerance_in_da=self.tolerance, intensity_weight="entropy")
        indexed = self._search.build_index(records, max_indexed_mz=top + 1.0, clean_spectra=False)
        self._order = np.array([r["llm4ms_index"] for r in indexed], dtype=np.int64)
        self._position = np.full(len(library), -1, dtype=np.int64)
        self._position[self._order] = np.arange(self._order.size)
        self._precursors = precursors
        self.n_library = len(library)
        return self

    def _query_peaks(self, query: Spectrum) -> np.ndarray:
        if self._search is None:
            raise RuntimeError("call fit(library) before searching")
        return entropy_hr_clean(query, self.tolerance, self.noise_threshold)

    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        out = np.zeros((len(queries), self.n_library), dtype=np.float32)
        for row, query in enumerate(queries):
            peaks = self._query_peaks(query)
            if peaks.size and self._order.size:
                out[row, self._order] = self._search.open_search(peaks=peaks, ms2_tolerance_in_da=self.tolerance)
        return out

    def candidate_scores(self, query: Spectrum, candidates: np.ndarray) -> np.ndarray:
        peaks = self._query_peaks(query)
        out = np.zeros(candidates.size, dtype=np.float32)
        positions = self._position[candidates]
        known = self._precursors[candidates]
        windowed = (positions >= 0) & np.isfinite(known)
        if peaks.size == 0 or not np.any(positions >= 0):
            return out
        if windowed.any():
            low, high = float(known[windowed].min()), float(known[windowed].max())
            # identity search over [low, high] (+ a margin for the index's float32 precursors)
            row = self._search.identity_search(precursor_mz=(low + high) / 2,
                                               ms1_tolerance_in_da=(high - low) / 2 + 0.01,
                                               peaks=peaks, ms2_tolerance_in_da=self.tolerance)
            out[windowed] = row[positions[windowed]]
        rest = (positions >= 0) & ~windowed  # candidates without a precursor (a mass filter may list them)
        if rest.any():
            row = self._search.open_search(peaks=peaks, ms2_tolerance_in_da=self.tolerance)
            out[rest] = row[positions[rest]]
        return out


def flash_agreement(scorer: MatchmsCosineScorer, queries: Sequence[Spectrum], n_top: int = 100,
                    n_random: int = 100, seed: int = 0) -> dict[str, Any]:
    """How closely a fitted cosine scorer's open-search (Flash) scores agree with its matchms pair scores.

    Each query is compared with its `n_top` best Flash hits and `n_random` random library spectra (seeded):
    the largest and mean absolute score difference over those pairs, the fraction above 0.001 and 0.01, and
    per query whether the best hit and the top 10 among those pairs are the same under both scores.
    """
    rng = np.random.default_rng(seed)
    flash = scorer.score_chunk(list(queries))
    diffs, same_top1, overlap10 = [], [], []
    for row, query in enumerate(queries):
        top = np.argsort(-flash[row], kind="stable")[:n_top]
        random = rng.choice(scorer.n_library, size=min(n_random, scorer.n_library), replace=False)
        cand = np.unique(np.concatenate([top, random]))
        exact = scorer.candidate_scores(query, cand)
        fast = flash[row][cand]
        diffs.append(np.abs(exact.astype(np.float64) - fast))
        best_exact = cand[np.lexsort((cand, -exact))][:10]
        best_fast = cand[np.lexsort((cand, -fast))][:10]
        same_top1.append(bool(best_exact[0] == best_fast[0]))
        overlap10.append(len(set(best_exact.tolist()) & set(best_fast.tolist())) / max(best_exact.size, 1))
    every = np.concatenate(diffs) if diffs else np.zeros(0)
    return {"queries": len(queries), "pairs": int(every.size),
            "max_abs_diff": float(every.max()) if every.size else 0.0,
            "mean_abs_diff": float(every.mean()) if every.size else 0.0,
            "pairs_over_0.001": float(np.mean(every > 1e-3)) if every.size else 0.0,
            "pairs_over_0.01": float(np.mean(every > 1e-2)) if every.size else 0.0,
            "top1_same": float(np.mean(same_top1)) if same_top1 else 1.0,
            "top10_overlap": float(np.mean(overlap10)) if overlap10 else 1.0}
