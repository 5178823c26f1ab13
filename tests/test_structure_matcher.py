"""The spectrum <-> structure two-tower model (`llm4ms.structure_matcher`): it learns, it is stored, and the
re-ranker reads it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from llm4ms.errors import ConfigError
from llm4ms.fingerprint_model import FingerprintConfig, train_fingerprint_model
from llm4ms.reranker import FEATURE_NAMES, CandidateList, QueryEvidence, Reranker
from llm4ms.structure_matcher import MatcherConfig, StructureMatcher, train_structure_matcher
from test_reranker import SMALL, SMILES, _spectra

TINY = MatcherConfig(dim=16, hidden=64, structure_hidden=64, dropout=0.0, temperature=0.1, members=1,
                     fingerprint=SMALL)


def _accuracy(matcher: StructureMatcher, spectra) -> float:
    """Share of spectra whose own structure (of the 12 candidate SMILES) gets the highest cosine."""
    from llm4ms.fingerprint_model import structure_bits

    bits = np.stack([structure_bits(s, SMALL) for s in SMILES[:12]])
    vectors = matcher.encode_spectra(spectra)
    own = np.array([int(s.inchikey[10:14]) for s in spectra])
    return float(np.mean([matcher.match(vectors[i], bits).argmax() == own[i] for i in range(len(spectra))]))


def test_matcher_learns_which_structure_a_spectrum_belongs_to():
    spectra = _spectra()
    trained = train_structure_matcher(spectra, TINY, epochs=150, batch_size=8, pool_negatives=8,
                                      learning_rate=3e-3, peak_dropout=0.0, seed=0)
    untrained = StructureMatcher(TINY)
    assert _accuracy(trained, spectra) > 0.8 > 0.5 > _accuracy(untrained, spectra)
    vectors = trained.encode_spectra(spectra[:3])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert trained.info["training"]["spectra"] == len(spectra) and "pretrain_spectra" not in trained.info["training"]
    with pytest.raises(ConfigError, match=">= 2 spectra"):
        train_structure_matcher(spectra[:1], TINY, epochs=1)


def test_pretraining_teaches_before_the_measured_epochs():
    spectra = _spectra()
    kw = dict(batch_size=8, pool_negatives=8, learning_rate=3e-3, peak_dropout=0.0, seed=0)
    plain = train_structure_matcher(spectra[:2], TINY, epochs=1, **kw)
    pretrained = train_structure_matcher(spectra[:2], TINY, epochs=1, pretrain=spectra, pretrain_epochs=150, **kw)
    assert _accuracy(pretrained, spectra) > 0.8 > 0.5 > _accuracy(plain, spectra)
    assert pretrained.info["training"]["pretrain_epochs"] == 150


def test_matcher_round_trip_and_bad_folders(tmp_path):
    matcher = train_structure_matcher(_spectra(4), TINY, epochs=2)
    matcher.save(tmp_path / "m")
    again = StructureMatcher.load(tmp_path / "m")
    assert again.config == matcher.config
    spectra = _spectra(4)
    np.testing.assert_allclose(again.encode_spectra(spectra), matcher.encode_spectra(spectra), atol=0.02)  # float16
    parsed = np.array([True, False])
    bits = np.ones((2, SMALL.n_outputs), dtype=np.float32)
    out = again.match(again.encode_spectra(spectra[:1])[0], bits, parsed)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    with pytest.raises(ConfigError, match="not a structure matcher"):
        StructureMatcher.load(tmp_path)
    data = json.loads((tmp_path / "m" / "structure_matcher.json").read_text())
    data["config"]["version"] = 0
    (tmp_path / "m" / "structure_matcher.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="retrain"):
        StructureMatcher.load(tmp_path / "m")
    matcher.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ConfigError, match="unreadable"):
        StructureMatcher.load(tmp_path / "m")
    linear = StructureMatcher(MatcherConfig(dim=8, hidden=16, structure_hidden=0, fingerprint=SMALL))
    linear.save(tmp_path / "lin")
    assert StructureMatcher.load(tmp_path / "lin").config.structure_hidden == 0


def test_reranker_reads_the_matcher_and_refuses_another_encoding():
    fingerprint = train_fingerprint_model(_spectra(4), SMALL, epochs=1)
    matcher = train_structure_matcher(_spectra(4), TINY, epochs=1)
    other = StructureMatcher(MatcherConfig(dim=8, hidden=16, fingerprint=FingerprintConfig()))
    with pytest.raises(ConfigError, match="encode structures differently"):
        Reranker(None, fingerprint, 8, structure_matcher=other)
    from llm4ms.ranking import Ranking

    spectra = _spectra(6)
    column = FEATURE_NAMES.index("structure_match")
    for used in (matcher, None):
        reranker = Reranker(None, fingerprint, 8, structure_matcher=used)
        evidence = reranker.query_evidence(spectra[:1])
        assert isinstance(evidence[0], QueryEvidence) and (evidence[0].structure_vector is None) == (used is None)
        n = 5
        features = reranker.features(spectra[0], Ranking(), np.linspace(1, 0.5, n), np.zeros(n), np.zeros(n),
                                     spectra[1:1 + n], np.full(n, 100.0), evidence[0])
        assert features.shape == (n, len(FEATURE_NAMES))
        if used is None:
            assert np.isnan(features[:, column]).all()
        else:
            bits, parsed = fingerprint.fingerprints([s.smiles for s in spectra[1:1 + n]])
            np.testing.assert_allclose(features[:, column], matcher.match(evidence[0].structure_vector, bits, parsed))
            np.testing.assert_allclose(features[:, column + 1], features[:, column] - features[:, column].max())


def test_lists_featured_and_scored_together_equal_one_by_one(tmp_path):
    """A search features and scores all its lists at once (`features_many`, `rescore_many`): the same numbers as
    list by list, whatever the lists' lengths, unparsable SMILES included."""
    from test_reranker import _trained_reranker

    from llm4ms.ranking import Ranking
    from llm4ms.spectrum import Spectrum

    reranker = _trained_reranker(tmp_path)
    spectra = _spectra(8)
    broken = Spectrum(spectra[0].mz, spectra[0].intensities, {"smiles": "not a smiles"})
    evidence = reranker.query_evidence(spectra[:3])
    lists = [CandidateList(spectra[j], np.linspace(1, 0.5, n), np.zeros(n), np.full(n, 0.3),
                           ([broken] if j == 1 else []) + spectra[3:3 + n - (j == 1)], np.full(n, 100.0 + j),
                           evidence[j]) for j, n in enumerate((5, 3, 2))]
    together = reranker.features_many(Ranking(), lists)
    alone = [reranker.features(item.query, Ranking(), item.fused, item.embedding, item.classic, item.candidates,
                               item.masses, item.evidence) for item in lists]
    assert [f.shape[0] for f in together] == [5, 3, 2]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    column = FEATURE_NAMES.index("structure_match")
    assert np.isnan(together[1][0, column]) and np.isfinite(together[1][1:, column]).all()
    scored = reranker.rescore_many(together)
    for a, f in zip(scored, together):
        np.testing.assert_allclose(a, reranker.rescore(f))
    assert reranker.rescore_many([]) == []


def test_structure_ranking_benchmark_ranks_the_true_structure(tmp_path):
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    from llm4ms.io.msp import write_msp
    from test_reranker import _trained_reranker

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "structure_ranking.py"
    spec = importlib.util.spec_from_file_location("structure_ranking", script)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(script.parent))
    spec.loader.exec_module(module)
    scores = np.array([[0.9, 0.1], [0.5, 0.7], [0.9, 0.2]])  # library x queries
    assert module.true_ranks(scores, np.array(["A", "B", "C"]), ["C", "B"]).tolist() == [2, 1]  # a tie counts against
    assert module.true_ranks(scores[:, :1], np.array(["A", "B", "C"]), ["Z"]).tolist() == [0]
    _trained_reranker(tmp_path)
    spectra = _spectra(6)
    write_msp(spectra[0::2], tmp_path / "q.msp")
    write_msp(spectra[1::2], tmp_path / "lib.msp")
    done = subprocess.run([sys.executable, str(script), "--queries", str(tmp_path / "q.msp"), "--library",
                           str(tmp_path / "lib.msp"), "--reranker", str(tmp_path / "reranker"), "--name", "t",
                           "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "structure_ranking_t.json").read_text())["results"]
    assert set(result) == {"fingerprint network", "structure matcher"}
    assert all(1 <= r <= 6 for label in result for r in result[label]["ranks"])  # every compound is there


def test_members_average_their_cosines_and_round_trip(tmp_path):
    from dataclasses import replace

    spectra = _spectra(4)
    pair = train_structure_matcher(spectra, replace(TINY, members=2), epochs=2, seed=5)
    assert len(pair.members) == 2 and len(pair.info["training"]["final_loss"]) == 2
    singles = [StructureMatcher(TINY, [towers]) for towers in pair.members]
    first = train_structure_matcher(spectra, TINY, epochs=2, seed=5)  # member 0 trains from the same seed
    np.testing.assert_allclose(first.encode_spectra(spectra), singles[0].encode_spectra(spectra), atol=1e-6)
    from llm4ms.fingerprint_model import structure_bits

    bits = np.stack([structure_bits(s, SMALL) for s in SMILES[:5]])
    vector = pair.encode_spectra(spectra[:1])[0]
    assert vector.shape == (2 * TINY.dim,) and np.linalg.norm(vector) == pytest.approx(1.0, rel=1e-5)
    mean = np.mean([m.match(m.encode_spectra(spectra[:1])[0], bits) for m in singles], axis=0)
    np.testing.assert_allclose(pair.match(vector, bits), mean, atol=1e-6)
    pair.save(tmp_path / "pair")
    again = StructureMatcher.load(tmp_path / "pair")
    np.testing.assert_allclose(again.match(again.encode_spectra(spectra[:1])[0], bits), mean, atol=0.02)
    with pytest.raises(ConfigError, match="tower pairs"):
        StructureMatcher(replace(TINY, members=3), pair.members)
