"""Scorers: each finds the known right answer on tiny synthetic spectra; formulas checked by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from llm4ms.evaluate import get_scorer
from llm4ms.similarity import composite_score, weighted_peaks
from llm4ms.evaluate.scorers import top_k
from llm4ms.spectrum import Spectrum


def make(peaks: dict[float, float], key: str = "", mass: float | None = None, name: str = "") -> Spectrum:
    mz = np.array(sorted(peaks), dtype=float)
    meta = {"inchikey": key, "name": name}
    if mass is not None:
        meta["exact_mass"] = mass
    return Spectrum(mz, np.array([peaks[m] for m in sorted(peaks)], dtype=float), meta)


def synthetic_library(n: int = 12, seed: int = 0) -> list[Spectrum]:
    """Distinct random EI-like spectra: 8-15 integer peaks in 30..300, one library entry per compound."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mz = np.sort(rng.choice(np.arange(30, 300), size=rng.integers(8, 16), replace=False))
        inten = rng.uniform(1, 100, size=mz.size)
        inten[rng.integers(mz.size)] = 999.0
        out.append(Spectrum(mz.astype(float), inten, {"inchikey": f"KEY{i:011d}-X-N", "exact_mass": 100.0 + i}))
    return out


def noisy_copy(spectrum: Spectrum, rng: np.random.Generator, scale: float = 0.08) -> Spectrum:
    inten = spectrum.intensities * rng.uniform(1 - scale, 1 + scale, size=spectrum.n_peaks)
    return Spectrum(spectrum.mz + rng.uniform(-0.2, 0.2, size=spectrum.n_peaks), inten, dict(spectrum.metadata))


METHODS = {
    "cosine": {}, "cosine_sqrt": {}, "wcs": {}, "composite": {"rerank": 5}, "entropy": {},
    "spec2vec": {"iterations": 5, "vector_size": 32, "window": 50},
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_scorer_finds_noisy_replicates(method):
    library = synthetic_library()
    rng = np.random.default_rng(1)
    queries = [noisy_copy(library[i], rng) for i in (3, 7, 0)]
    scorer = get_scorer(method, **METHODS[method]).fit(library)
    idx, scores = scorer.search(queries, k=3)
    assert idx.shape == (3, 3) and idx.dtype == np.int64 and scores.dtype == np.float32
    assert list(idx[:, 0]) == [3, 7, 0]
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must be best first"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_candidates_restrict_and_pad(method):
    library = synthetic_library()
    rng = np.random.default_rng(2)
    queries = [noisy_copy(library[5], rng), noisy_copy(library[9], rng)]
    scorer = get_scorer(method, **METHODS[method]).fit(library)
    cands = [np.array([1, 2], dtype=np.int64), None]  # query 0: its true match (5) excluded
    idx, scores = scorer.search(queries, k=4, candidates=cands)
    assert set(idx[0, :2]) == {1, 2}
    assert list(idx[0, 2:]) == [-1, -1] and np.all(np.isneginf(scores[0, 2:]))
    assert idx[1, 0] == 9 and np.all(idx[1] >= 0)


def test_wcs_matches_hand_computation():
    q = make({50: 100.0, 60: 50.0, 70: 10.0})
    lib = make({50: 80.0, 60: 60.0, 80: 20.0})
    # by hand: W = mz^3 * I^0.6 with I scaled to max 1; DP = (sum WqWl)^2 / (sum Wq^2 sum Wl^2)
    wq = {50: 50**3 * 1.0**0.6, 60: 60**3 * 0.5**0.6, 70: 70**3 * 0.1**0.6}
    wl = {50: 50**3 * 1.0**0.6, 60: 60**3 * 0.75**0.6, 80: 80**3 * 0.25**0.6}
    num = sum(wq[m] * wl.get(m, 0.0) for m in wq) ** 2
    expected = num / (sum(v * v for v in wq.values()) * sum(v * v for v in wl.values()))
    scorer = get_scorer("wcs").fit([lib])
    assert scorer.score_chunk([q])[0, 0] == pytest.approx(expected, rel=1e-5)
    cosine = get_scorer("cosine").fit([lib]).score_chunk([q])[0, 0]
    assert cosine == pytest.approx((1 * 1 + 0.5 * 0.75) / math.sqrt((1 + 0.25 + 0.01) * (1 + 0.5625 + 0.0625)),
                                   rel=1e-5)


def test_composite_matches_hand_computation():
    q = make({41: 30.0, 50: 100.0, 60: 50.0, 70: 10.0})
    lib = make({41: 20.0, 50: 80.0, 60: 60.0, 80: 20.0})
    qi = {41: 0.3, 50: 1.0, 60: 0.5, 70: 0.1}
    li = {41: 0.25, 50: 1.0, 60: 0.75, 80: 0.25}
    wq = {m: m**3 * v**0.6 for m, v in qi.items()}
    wl = {m: m**3 * v**0.6 for m, v in li.items()}
    dp = sum(wq[m] * wl.get(m, 0) for m in wq) ** 2 / (sum(v * v for v in wq.values()) * sum(v * v for v in wl.values()))
    shared = [41, 50, 60]
    ratios = [(wl[b] * wq[a]) / (wl[a] * wq[b]) for a, b in zip(shared[:-1], shared[1:])]
    f_r = sum(min(r, 1 / r) for r in ratios) / len(ratios)
    expected = (4 * dp + 3 * f_r) / (4 + 3)
    scorer = get_scorer("composite").fit([lib])
    idx, scores = scorer.search([q], k=1)
    assert idx[0, 0] == 0
    assert scores[0, 0] == pytest.approx(expected, rel=1e-5)
    assert composite_score(*weighted_peaks(q, 3, 0.6), *weighted_peaks(lib, 3, 0.6), dp) == pytest.approx(expected, rel=1e-9)
    assert expected != pytest.approx(dp, rel=1e-3)  # the ratio term really changes the score


def test_composite_reranks_dp_order():
    # Both candidates share the same peaks; the one with matching intensity ratios must win under
    # composite even if its DP is a little lower.
    q = make({50: 100.0, 51: 50.0, 52: 25.0, 53: 12.0})
    a = make({50: 100.0, 51: 50.0, 52: 25.0, 53: 12.0, 200: 3.0})   # same ratios + one extra heavy peak
    b = make({50: 100.0, 51: 52.0, 52: 27.0, 53: 40.0})            # closer DP? ratios differ at 53
    wcs = get_scorer("wcs").fit([a, b]).score_chunk([q])[0]
    comp_idx, comp = get_scorer("composite").fit([a, b]).search([q], k=2)
    assert set(comp_idx[0]) == {0, 1}
    # composite is a different function of the pair than DP
    assert not np.allclose(np.sort(comp[0]), np.sort(wcs), atol=1e-4)


def test_entropy_scores_match_ms_entropy_pairwise():
    from ms_entropy import calculate_entropy_similarity

    library = synthetic_library(6)
    rng = np.random.default_rng(3)
    query = noisy_copy(library[2], rng)
    scorer = get_scorer("entropy").fit(library)
    row = scorer.score_chunk([query])[0]
    qpeaks = np.column_stack([np.floor(query.mz + 0.5), query.intensities]).astype(np.float32)
    for j, spectrum in enumerate(library):
        lpeaks = np.column_stack([spectrum.mz, spectrum.intensities]).astype(np.float32)
        ref = calculate_entropy_similarity(qpeaks, lpeaks, ms2_tolerance_in_da=0.49, noise_threshold=0.01)
        assert row[j] == pytest.approx(ref, abs=1e-4)


def test_entropy_maps_resorted_index_back():
    # library given in descending order of max m/z; ms-entropy sorts it ascending internally
    library = [make({40: 10.0, 300 - 20 * i: 100.0}, key=f"K{i}") for i in range(5)]
    scorer = get_scorer("entropy").fit(library)
    for i in range(5):
        idx, _ = scorer.search([library[i]], k=1)
        assert idx[0, 0] == i


def test_top_k_tie_break_and_padding():
    row = np.array([0.5, 0.9, 0.5, 0.1], dtype=np.float32)
    idx, val = top_k(row, 3)
    assert list(idx) == [1, 0, 2] and val[0] == pytest.approx(0.9)
    idx, val = top_k(row, 5, np.array([3, 2]))
    assert list(idx) == [2, 3]


def test_encoder_scorer_with_stub_encoder():
    class Stub:
        dim = 4

        def encode(self, spectra, batch_size=64):
            return np.array([[s.n_peaks, s.mz.max(), 1.0, 0.0] for s in spectra], dtype=np.float32)

    library = [make({10: 1.0}), make({10: 1.0, 200: 1.0}), make({10: 1.0, 50: 1.0, 90: 1.0})]
    scorer = get_scorer("llm4ms", encoder=Stub()).fit(library)
    idx, scores = scorer.search([make({5: 1.0, 200: 2.0})], k=3)
    assert idx[0, 0] == 1 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_unknown_method_is_a_clear_error():
    from llm4ms.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown method"):
        get_scorer("nope")
