"""Hybrid ranking (embedding + classic score) and the mass-plausibility prior; search == evaluate."""
from __future__ import annotations

import numpy as np
import pytest

from _training_helpers import synthetic_spectra
from llm4ms.errors import ConfigError
from llm4ms.ranking import MassPrior, Ranking, parse_prior, rerank, resolve_ranking
from llm4ms.spectrum import Spectrum


def _query() -> Spectrum:
    # peaks at 50 (100 %), 120 (25 %), 150 (4 %), 151 (0.5 %: below min_relative, ignored)
    return Spectrum(np.array([50.0, 120.0, 150.0, 151.0]), np.array([100.0, 25.0, 4.0, 0.5]), {})


def test_prior_penalises_the_share_of_signal_above_the_molecular_ion():
    prior = MassPrior(weight=1.0, margin=1.5, min_relative=0.01)
    w = np.sqrt([1.0, 0.25, 0.04])
    pen = prior.penalties(_query(), np.array([200.0, 148.0, 149.0, 100.0, 10.0, np.nan]))
    assert pen[0] == 0.0                                  # everything below M + margin
    assert pen[1] == pytest.approx(w[2] / w.sum())        # only the small 150 peak is above 149.5
    assert pen[2] == 0.0                                  # 150 <= 149 + 1.5: an isotope-sized gap is allowed
    assert pen[3] == pytest.approx((w[1] + w[2]) / w.sum())
    assert pen[4] == pytest.approx(1.0)
    assert pen[5] == 0.0                                  # unknown mass: no penalty
    assert not MassPrior().penalties(_query(), np.array([10.0])).any()  # weight 0 = off


def test_rerank_fuses_scores_and_breaks_ties_by_index():
    ranking = Ranking(fusion=0.5, depth=10)
    candidates = np.array([7, 3, 5])
    embedding = np.array([0.9, 0.5, 0.5])
    classic = {7: 0.1, 3: 0.7, 5: 0.7}
    idx, score = rerank(ranking, _query(), candidates, embedding, lambda q, c: np.array([classic[i] for i in c]),
                        None, k=3)
    assert idx.tolist() == [3, 5, 7]  # 0.6, 0.6 (tie: lower index first), 0.5
    np.testing.assert_allclose(score, [0.6, 0.6, 0.5], atol=1e-6)
    embedding_only = rerank(Ranking(), _query(), candidates, embedding, lambda q, c: 1 / 0, None, k=2)[0]
    assert embedding_only.tolist() == [7, 3]  # fusion 1: the classic score is never computed


def test_ranking_round_trip_and_overrides():
    ranking = Ranking(fusion=0.3, depth=200, prior=MassPrior(0.2, 2.5, 0.02))
    assert Ranking.from_dict(ranking.to_dict()) == ranking
    assert resolve_ranking(ranking, prior=False).prior.weight == 0
    assert resolve_ranking(ranking, rerank="wcs").fusion == 0 and resolve_ranking(ranking, rerank="wcs").classic == "wcs"
    with pytest.raises(ConfigError):
        Ranking(fusion=1.5)
    with pytest.raises(ConfigError):
        Ranking(classic="nonsense")
    with pytest.raises(ConfigError):
        Ranking.from_dict({"fusion": 0.5, "surprise": 1})
    assert parse_prior("off", ranking.prior) is None
    assert parse_prior("model", ranking.prior) == ranking.prior
    assert parse_prior("0.1,2", None) == MassPrior(0.1, 2.0)
    with pytest.raises(ConfigError):
        parse_prior("-1", None)


@pytest.fixture(scope="module")
def fitted_model(tmp_path_factory):
    """A small peak model with a stored hybrid ranking and prior."""
    import json

    from llm4ms.model.peak_model import build_peak_model

    folder = tmp_path_factory.mktemp("ranked") / "model"
    build_peak_model(folder, max_mz=300, hidden_size=32, num_layers=1, heads=2, intermediate_size=64, seed=1)
    config = json.loads((folder / "llm4ms_config.json").read_text())
    config["ranking"] = Ranking(fusion=0.4, depth=6, prior=MassPrior(0.3, 1.5, 0.01)).to_dict()
    (folder / "llm4ms_config.json").write_text(json.dumps(config))
    return folder


def _with_masses(spectra):
    return [s.copy(metadata={**s.metadata, "exact_mass": float(s.mz.max()) + (i % 3) * 20 - 20})
            for i, s in enumerate(spectra)]


def test_search_and_evaluate_rank_identically(fitted_model, tmp_path):
    from llm4ms.evaluate.embedding_scorer import EncoderScorer
    from llm4ms.model import SpectrumEncoder
    from llm4ms.library import Library

    spectra = _with_masses(synthetic_spectra(15, 2, seed=2))
    queries, library_spectra = spectra[0::2], spectra[1::2]
    encoder = SpectrumEncoder.from_pretrained(fitted_model)
    library = Library.build(library_spectra, tmp_path / "lib", encoder, show_progress=False)
    hits = library.search(queries, k=5, encoder=encoder)
    scorer = EncoderScorer(encoder=encoder).fit(library_spectra)
    idx, scores = scorer.search(queries, k=5)
    assert scorer.ranking.reranks and scorer.ranking.prior.active
    for row, query_hits in enumerate(hits):
        assert [h.library_index for h in query_hits] == idx[row][idx[row] >= 0].tolist()
        np.testing.assert_allclose([h.score for h in query_hits], scores[row][: len(query_hits)], atol=1e-5)
    plain = library.search(queries, k=5, encoder=encoder, ranking=Ranking())
    assert any([h.library_index for h in a] != [h.library_index for h in b] for a, b in zip(hits, plain))


def test_evaluate_reports_every_method_with_and_without_the_prior(fitted_model):
    from llm4ms.evaluate.runner import evaluate, markdown_table

    spectra = _with_masses(synthetic_spectra(10, 2, seed=4))
    spectra = [s.copy(metadata={**s.metadata, "formula": "C10H10O" if i % 4 < 2 else "C9H8O2"})
               for i, s in enumerate(spectra)]
    result = evaluate(spectra[0::2], spectra[1::2], ["cosine_sqrt", "llm4ms"], ks=(1, 10),
                      method_options={"llm4ms": {"model": str(fitted_model)}}, prior=MassPrior(0.3, 1.5, 0.01))
    for name in ("cosine_sqrt", "llm4ms"):
        entry = result["methods"][name]
        assert "recall_with_prior" in entry and "recall_isomer_subset" in entry
    assert result["methods"]["llm4ms"]["settings"]["ranking"]["prior"]["weight"] == 0.3
    assert result["counts"]["isomer_subset"] > 0
    assert "R@1 prior" in markdown_table(result)
