"""The similarity room: one set of score constants and functions for re-ranking and evaluation alike."""
from __future__ import annotations

import numpy as np
import pytest

from llm4ms.errors import ConfigError
from llm4ms.evaluate import get_scorer
from llm4ms.similarity import (PRESETS, SCORES, entropy_pairs, nominal_peaks, score_matrix, scores,
                               weighted_matrix)
from llm4ms.spectrum import Spectrum


def _library(n: int = 8, seed: int = 0) -> list[Spectrum]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mz = np.sort(rng.choice(np.arange(30, 300), size=rng.integers(6, 14), replace=False)).astype(float)
        out.append(Spectrum(mz + rng.uniform(-0.3, 0.3, mz.size), rng.uniform(1, 999, mz.size), {"name": f"s{i}"}))
    return out


def test_presets_are_the_published_constants():
    assert PRESETS["cosine"] == (0.0, 1.0, False)
    assert PRESETS["cosine_sqrt"] == (0.0, 0.5, False)
    assert PRESETS["wcs"] == (3.0, 0.6, True)  # NIST GC weights, DP = cos^2
    assert PRESETS["wcs"].mz_power == 3.0
    assert set(SCORES) == {"cosine", "cosine_sqrt", "wcs", "composite", "entropy", "cosine_hr", "modified_cosine",
                           "entropy_hr"}


def test_nominal_peaks_round_half_up_keep_largest_and_scale():
    s = Spectrum([40.4, 40.5, 41.49, 1200.0, 50.0], [10.0, 20.0, 5.0, 99.0, 0.0])
    bins, inten = nominal_peaks(s)
    assert bins.tolist() == [40, 41] and inten.tolist() == pytest.approx([0.5, 1.0])


def test_weighted_matrix_rows_are_unit_length():
    m = weighted_matrix(_library(), 3.0, 0.6)
    assert m.shape == (8, 1001) and m.dtype == np.float32
    assert np.linalg.norm(m.toarray(), axis=1) == pytest.approx(np.ones(8), abs=1e-6)


@pytest.mark.parametrize("name", ["cosine", "cosine_sqrt", "wcs"])
def test_score_matrix_equals_the_evaluation_scorer(name):
    library, queries = _library(), _library(3, seed=5)
    matrix = score_matrix(name, queries, library)
    assert matrix.shape == (3, 8) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, get_scorer(name).fit(library).score_chunk(queries))
    np.testing.assert_array_equal(scores(name, queries[1], library), matrix[1])


def test_composite_scores_equal_the_composite_scorer():
    library, queries = _library(), _library(2, seed=7)
    matrix = score_matrix("composite", queries, library)
    idx, best = get_scorer("composite", rerank=len(library)).fit(library).search(queries, k=3)
    for row in range(2):
        assert matrix[row, idx[row]] == pytest.approx(best[row], rel=1e-6)


def test_entropy_pairs_match_the_flash_scorer():
    pytest.importorskip("ms_entropy")
    library, queries = _library(), _library(2, seed=9)
    flash = get_scorer("entropy").fit(library).score_chunk(queries)
    np.testing.assert_allclose(score_matrix("entropy", queries, library), flash, atol=1e-4)
    pair = entropy_pairs([(queries[0], library[3]), (queries[0], Spectrum([], []))])
    assert pair[0] == pytest.approx(flash[0, 3], abs=1e-4) and pair[1] == 0.0


def test_identical_spectra_score_one_and_unknown_names_fail():
    s = _library(1)[0]
    for name in ("cosine", "cosine_sqrt", "wcs", "composite"):
        assert scores(name, s, [s])[0] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ConfigError, match="unknown similarity"):
        scores("nope", s, [s])
