"""The learned molecular-ion evidence (`llm4ms.molecular_ion`) and retrieval by the classic score."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _training_helpers import synthetic_spectra
from llm4ms.errors import ConfigError
from llm4ms.molecular_ion import (FEATURE_NAMES, IonProfile, MolecularIonModel, ion_features, load_ion_model,
                                  train_ion_model, training_table)
from llm4ms.ranking import MassPrior, Ranking, parse_prior, rerank
from llm4ms.spectrum import Spectrum


def _toluene() -> Spectrum:
    """Toluene-like EI spectrum: molecular ion 92 with its M+1, base peak 91 (M-H), tropylium fragments."""
    mz = np.array([39.0, 51.0, 63.0, 65.0, 91.0, 92.0, 93.0])
    return Spectrum(mz, np.array([5.0, 4.0, 4.0, 11.0, 100.0, 62.0, 4.3]), {})


def test_features_read_the_high_mass_end():
    rows = ion_features(_toluene(), np.array([92, 78, 150, 10]))
    named = [dict(zip(FEATURE_NAMES, row)) for row in rows]
    true, low, high, unusable = named
    assert true["peak_M"] == pytest.approx(np.sqrt(0.62)) and true["peak_M-1"] == pytest.approx(1.0)
    assert true["share_above_M+2"] == 0.0 and true["beyond_last_peak"] == 0.0
    assert low["share_above_M+2"] > 0.5 and low["peak_M"] == 0.0  # 91-93 lie above a mass of 78
    assert high["beyond_last_peak"] == 1.0 and high["gap_to_last_peak"] == pytest.approx((150 - 93) / 100)
    assert not any(unusable.values())  # a mass too small to be a molecule gives an all-zero row
    profile = IonProfile.of(_toluene())
    np.testing.assert_array_equal(ion_features(_toluene(), np.array([92]), profile), rows[:1])


def test_bundled_model_prefers_the_mass_the_spectrum_supports():
    model = load_ion_model("bundled")
    odds = model.log_odds(_toluene(), np.array([92.06, 78.05, 106.08, 150.1, np.nan, 16.0, 2500.0]))
    assert odds[0] == odds[:4].max() and odds[0] > 0  # true mass over too low (peaks above) and too high (nothing near)
    assert odds[4] == 0.0 and odds[5] == 0.0  # unknown mass, or no molecule's: no evidence either way
    assert odds[6] < 0  # far heavier than anything recorded (beyond the query's grid): evidence against
    assert model.info["feature_version"] == 1 and "TRAIN" in model.info["data"]


def _spectra_with_masses(n_compounds: int = 12, seed: int = 0) -> list[Spectrum]:
    """Synthetic spectra whose molecular mass is their highest peak (the molecular ion)."""
    out = []
    for i, s in enumerate(synthetic_spectra(n_compounds, 2, seed=seed)):
        out.append(s.copy(metadata={**s.metadata, "exact_mass": float(s.mz.max())}))
    return out


def test_train_save_load_round_trip(tmp_path):
    features, labels, groups = training_table(_spectra_with_masses(), negatives=5)
    assert features.shape[1] == len(FEATURE_NAMES) and labels.sum() == len(np.unique(groups))
    model = train_ion_model(features, labels, trees=20, leaves=7, info={"data": "synthetic"})
    model.save(tmp_path / "ion")
    again = MolecularIonModel.load(tmp_path / "ion")
    query = _spectra_with_masses()[0]
    masses = np.array([query.molecular_mass, query.molecular_mass - 30, query.molecular_mass + 40])
    np.testing.assert_allclose(again.log_odds(query, masses), model.log_odds(query, masses))
    info = json.loads((tmp_path / "ion" / "molecular_ion.json").read_text())
    info["feature_version"] = 0
    (tmp_path / "ion" / "molecular_ion.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="retrain"):
        MolecularIonModel.load(tmp_path / "ion")
    with pytest.raises(ConfigError, match="not a molecular-ion model"):
        MolecularIonModel.load(tmp_path)


def test_prior_with_ion_weight_lifts_the_supported_candidate():
    query = _toluene()
    masses = np.array([150.1, 92.06])  # index 0: scored higher by the spectrum score, mass unsupported
    classic = {0: 0.80, 1: 0.75}
    plain = rerank(Ranking(fusion=0.0), query, np.array([0, 1]), np.zeros(2),
                   lambda q, c: np.array([classic[i] for i in c]), masses, k=2)[0]
    assert plain.tolist() == [0, 1]
    ranking = Ranking(fusion=0.0, prior=MassPrior(ion_weight=0.05))
    assert ranking.reranks and ranking.prior.active and "molecular-ion model" in ranking.describe()
    with_ion = rerank(ranking, query, np.array([0, 1]), np.zeros(2),
                      lambda q, c: np.array([classic[i] for i in c]), masses, k=2)[0]
    assert with_ion.tolist() == [1, 0]
    assert Ranking.from_dict(ranking.to_dict()) == ranking
    assert parse_prior("0.2,2.5,0.005,0.02", None) == MassPrior(0.2, 2.5, 0.005, ion_weight=0.02)


def test_classic_index_matches_the_score_matrix():
    from llm4ms.similarity.named import ClassicIndex, score_matrix

    spectra = synthetic_spectra(20, 2, seed=3)
    queries, library = spectra[:5], spectra[5:]
    top = ClassicIndex("cosine_sqrt", library).top(queries, 4)
    dense = score_matrix("cosine_sqrt", queries, library)
    for row in range(len(queries)):
        expected = np.lexsort((np.arange(len(library)), -dense[row]))[:4]
        assert top[row].tolist() == expected.tolist()
    assert ClassicIndex("cosine", library).top(queries, 1000).shape == (5, len(library))
    for name in ("cosine_sqrt", "wcs"):
        index, picked = ClassicIndex(name, library), np.array([7, 2, 11])
        np.testing.assert_allclose(index.scores(queries[1], picked),
                                   score_matrix(name, queries[1:2], [library[i] for i in picked])[0], atol=1e-6)
    with pytest.raises(ConfigError):
        ClassicIndex("entropy", library)


def _encoded_library(tmp_path, n_compounds: int, model_seed: int, spectra_seed: int):
    """(encoder, queries, library spectra, `Library`): a tiny peak model and half the synthetic spectra as library."""
    from llm4ms.library import Library
    from llm4ms.model import SpectrumEncoder
    from llm4ms.model.peak_model import build_peak_model

    build_peak_model(tmp_path / "model", max_mz=300, hidden_size=32, num_layers=1, heads=2, intermediate_size=64,
                     seed=model_seed)
    encoder = SpectrumEncoder.from_pretrained(tmp_path / "model")
    spectra = _spectra_with_masses(n_compounds, seed=spectra_seed)
    queries, library_spectra = spectra[0::2], spectra[1::2]
    return encoder, queries, library_spectra, Library.build(library_spectra, tmp_path / "lib", encoder,
                                                            show_progress=False)


def test_classic_retrieval_finds_what_the_embedding_misses_and_search_equals_evaluate(tmp_path):
    from llm4ms.evaluate.embedding_scorer import EncoderScorer

    encoder, queries, library_spectra, library = _encoded_library(tmp_path, 15, model_seed=1, spectra_seed=5)
    shallow = Ranking(fusion=0.1, depth=1, prior=MassPrior(ion_weight=0.02))
    deep = Ranking(fusion=0.1, depth=1, classic_depth=len(library_spectra), fused_depth=0,
                   prior=MassPrior(ion_weight=0.02))
    exhaustive = Ranking(fusion=0.1, depth=len(library_spectra), prior=MassPrior(ion_weight=0.02))
    hits = {name: [[h.library_index for h in row] for row in library.search(queries, k=3, encoder=encoder,
                                                                            ranking=r)]
            for name, r in (("shallow", shallow), ("deep", deep), ("exhaustive", exhaustive))}
    assert hits["deep"] == hits["exhaustive"]  # the classic side retrieves what depth 1 leaves out
    assert hits["shallow"] != hits["exhaustive"]  # embedding retrieval alone (k = 3 deep) misses some
    scorer = EncoderScorer(encoder=encoder, ranking=deep).fit(library_spectra)
    idx, _ = scorer.search(queries, k=3)
    assert [row[row >= 0].tolist() for row in idx] == hits["deep"]


def test_approximate_retrieval_adds_the_spectra_of_the_likeliest_masses(tmp_path):
    """`Ranking.plausible_masses`: with approximate classic retrieval, every spectrum at the query's likeliest nominal
    masses is a candidate; covering every mass, the search equals exhaustive scoring; evaluation ranks alike."""
    from dataclasses import replace

    from llm4ms.evaluate.embedding_scorer import EncoderScorer
    from llm4ms.ranking import IonOdds, MassTable

    encoder, queries, library_spectra, library = _encoded_library(tmp_path, 15, model_seed=1, spectra_seed=5)
    prior = MassPrior(ion_weight=0.02)
    exhaustive = Ranking(fusion=0.1, depth=len(library_spectra), prior=prior)
    approximate = Ranking(fusion=0.1, depth=1, classic_depth=1, classic_approximate=True, prior=prior)

    def searched(ranking):
        return [[h.library_index for h in row] for row in library.search(queries, k=3, encoder=encoder,
                                                                         ranking=ranking)]

    every_mass = replace(approximate, plausible_masses=10_000)
    assert searched(every_mass) == searched(exhaustive)
    assert searched(replace(approximate, plausible_masses=0)) != searched(exhaustive)  # depth 1 + 1 misses some
    assert "likeliest molecular masses" in approximate.describe()
    assert "likeliest" not in replace(approximate, plausible_masses=0).describe()
    assert Ranking.from_dict(approximate.to_dict()) == approximate
    with pytest.raises(ConfigError, match="plausible_masses"):
        Ranking(plausible_masses=-1)
    scorer = EncoderScorer(encoder=encoder, ranking=approximate).fit(library_spectra)
    idx, _ = scorer.search(queries, k=3)
    assert [row[row >= 0].tolist() for row in idx] == searched(approximate)

    masses = np.array([s.molecular_mass for s in library_spectra], dtype=np.float64)
    masses[0] = np.nan  # an unknown mass is never "likely"
    odds = IonOdds(approximate, queries, masses, MassTable(masses))
    nominal = np.rint(masses)
    for row in range(len(queries)):
        best = odds.masses.nominal[np.nanargmax(np.where(np.isfinite(odds.masses.nominal), odds.table[row], -np.inf))]
        np.testing.assert_array_equal(odds.plausible_rows(row, 1), np.flatnonzero(nominal == best))
        assert odds.plausible_rows(row, 0).size == 0
        assert set(odds.plausible_rows(row, 10_000)) == set(range(1, len(masses)))


def test_shipped_ei_ranking_uses_the_bundled_ion_model():
    from llm4ms.defaults import load_encoder
    from llm4ms.ranking import model_ranking
    from llm4ms.reranker import load_reranker

    ranking = model_ranking(load_encoder(None))
    assert ranking.prior.ion_weight > 0 and ranking.prior.ion_model == "bundled"
    # the fused selection's depth leaves a margin over the list the re-ranker reads (float32 selection, exact re-score)
    assert ranking.classic_retrieval and ranking.fused_depth >= 2 * load_reranker(ranking.reranker).top
    assert "molecular-ion model" in ranking.describe()


def test_training_script_trains_on_the_train_split_only(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    from llm4ms.data.split import compound_split
    from llm4ms.io.msp import write_msp

    spectra = _spectra_with_masses(40, seed=7)
    write_msp(spectra, tmp_path / "spectra.msp")
    script = Path(__file__).resolve().parents[1] / "data_prep" / "train_molecular_ion.py"
    spec = importlib.util.spec_from_file_location("train_molecular_ion", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path / "ion"), "--spectra", str(tmp_path / "spectra.msp"),
                        "--trees", "10", "--leaves", "7"]) == 0
    n_train = sum(compound_split(s.inchikey14) == "train" for s in spectra)
    info = MolecularIonModel.load(tmp_path / "ion").info
    assert f"{n_train} TRAIN-split spectra" in info["data"] and 0 < n_train < len(spectra)


def test_fused_retrieval_selects_the_exhaustive_fused_top_and_search_equals_evaluate(tmp_path, monkeypatch):
    """Selecting the classic side by the whole fused score finds the fused top of the whole library at a depth where
    selecting by the classic score alone does not (a strong prior moves candidates up from deep in both lists)."""
    from dataclasses import replace

    from llm4ms.evaluate.embedding_scorer import EncoderScorer

    encoder, queries, library_spectra, library = _encoded_library(tmp_path, 40, model_seed=2, spectra_seed=7)
    prior = MassPrior(weight=0.5, margin=1.5, ion_weight=0.05)
    fused = Ranking(fusion=0.3, depth=1, classic_depth=4, fused_depth=4, prior=prior)
    by_classic = replace(fused, fused_depth=0)
    exhaustive = Ranking(fusion=0.3, depth=len(library_spectra), prior=prior)
    assert "top 4 of the whole library by the fused score" in fused.describe()
    assert "top 4 by cosine_sqrt" in by_classic.describe()
    hits = {name: [[h.library_index for h in row] for row in library.search(queries, k=4, encoder=encoder,
                                                                            ranking=r)]
            for name, r in (("fused", fused), ("classic", by_classic), ("exhaustive", exhaustive))}
    assert hits["fused"] == hits["exhaustive"]
    assert hits["classic"] != hits["exhaustive"]  # the classic score's own top 4 (+ embedding top 1) misses some
    scorer = EncoderScorer(encoder=encoder, ranking=fused).fit(library_spectra)
    idx, _ = scorer.search(queries, k=4)
    assert [row[row >= 0].tolist() for row in idx] == hits["fused"]
    assert Ranking.from_dict({**fused.to_dict(), "fused_depth": 0}) == by_classic
    # the threshold from a sample of high-U rows (`high_rows`), as on a large library: still the exhaustive top
    import llm4ms.ranking as ranking_module

    original, partial_sets = ranking_module.high_rows, []

    def sampled_rows(values, count, least):
        rows = original(values, count, least, step=2)
        partial_sets.append(rows.size < values.size)
        return rows

    monkeypatch.setattr(ranking_module.FusedSelection, "PROBE", 2)
    monkeypatch.setattr(ranking_module, "high_rows", sampled_rows)
    sampled = [[h.library_index for h in row] for row in library.search(queries, k=4, encoder=encoder, ranking=fused)]
    assert any(partial_sets) and sampled == hits["exhaustive"]
    # the search's one table of molecular-ion log-odds (`IonOdds`) gives what asking the model per list gives
    with_table = library.search(queries, k=4, encoder=encoder, ranking=fused)
    monkeypatch.setattr(ranking_module.IonOdds, "for_search", classmethod(lambda cls, *args: None))
    per_list = library.search(queries, k=4, encoder=encoder, ranking=fused)
    assert [[(h.library_index, h.score) for h in row] for row in with_table] == \
        [[(h.library_index, h.score) for h in row] for row in per_list]


def test_log_odds_table_equals_one_call_per_query():
    model = load_ion_model("bundled")
    queries = [_toluene(), *synthetic_spectra(3, 1, seed=8)]
    masses = np.array([92.0, 78.05, np.nan, 150.2, 20.0, 240.0, 92.4])
    table = model.log_odds_table(queries, masses, threads=2)
    assert table.shape == (len(queries), masses.size)
    for row, query in zip(table, queries):
        np.testing.assert_allclose(row, model.log_odds(query, masses), rtol=1e-12, atol=1e-12)
    assert (table[:, [2, 4]] == 0).all()  # unknown mass, and a mass no molecule has: no evidence
    assert model.log_odds_table([], masses).shape == (0, masses.size)
