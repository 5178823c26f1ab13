"""The spectrum -> fingerprint model and the learned re-ranker: encodings, training, storage, and that search and
evaluation apply the re-ranker identically."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from _training_helpers import synthetic_spectra
from llm4ms.errors import ConfigError
from llm4ms.fingerprint_model import (FingerprintConfig, FingerprintModel, spectrum_vector, structure_bits,
                                      train_fingerprint_model)
from llm4ms.ranking import MassPrior, Ranking, resolve_ranking
from llm4ms.reranker import FEATURE_NAMES, Reranker, load_reranker, train_reranker
from llm4ms.spectrum import Spectrum
from llm4ms.structure_matcher import MatcherConfig, train_structure_matcher

SMILES = ["CCO", "CCCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCCCC", "c1ccccc1O", "CC(C)O", "CCOC(=O)C", "ClCCl",
          "c1ccncc1", "CCS", "OCCO", "CC#N", "C1CCCCC1", "CCBr"]
SMALL = FingerprintConfig(max_mz=300, max_loss=50, morgan_bits=128, hidden=64, dropout=0.0)


def _spectra(n_compounds: int = 12, seed: int = 0) -> list[Spectrum]:
    """Synthetic replicate spectra with a structure each; the molecular mass is the highest peak."""
    out = []
    for s in synthetic_spectra(n_compounds, 2, seed=seed):
        c = int(s.inchikey[10:14])
        out.append(s.copy(metadata={**s.metadata, "smiles": SMILES[c % len(SMILES)],
                                    "exact_mass": float(s.mz.max())}))
    return out


def test_spectrum_vector_and_structure_bits():
    s = Spectrum(np.array([41.0, 91.0, 92.0, 350.0]), np.array([20.0, 100.0, 60.0, 0.5]), {})
    v = spectrum_vector(s, SMALL)
    assert v.shape == (SMALL.n_inputs,)
    np.testing.assert_allclose(np.linalg.norm(v[:SMALL.max_mz + 1]), 1.0, rtol=1e-6)
    assert np.flatnonzero(v[:SMALL.max_mz + 1]).tolist() == [41, 91, 92]  # m/z 350 lies beyond the grid
    losses = v[SMALL.max_mz + 1:]
    # from the last peak of >= 1 % (92; the 0.5 % peak at 350 is not it): losses 0 and 1; 92 - 41 = 51 > max_loss
    assert np.flatnonzero(losses).tolist() == [0, 1]
    assert losses[0] == pytest.approx(np.sqrt(0.6)) and losses[1] == pytest.approx(1.0)
    benzene = structure_bits("c1ccccc1", SMALL)
    assert benzene.shape == (SMALL.n_outputs,) and benzene.sum() > 0
    assert structure_bits("not a smiles", SMALL) is None


def test_fingerprint_model_learns_trains_saves_and_checks_its_version(tmp_path):
    spectra = _spectra()
    model = train_fingerprint_model(spectra, SMALL, epochs=300, learning_rate=3e-3, peak_dropout=0.0,
                                    info={"data": "synthetic"})
    probabilities = model.predict(spectra)
    assert probabilities.shape == (len(spectra), SMALL.n_outputs)
    agreement = np.stack([model.agreement(probabilities[i], SMILES[:12])[:, 1] for i in range(len(spectra))])
    own = np.array([int(s.inchikey[10:14]) for s in spectra])
    assert np.mean(agreement.argmax(axis=1) == own) > 0.8  # its own structure fits best (trained on these)
    assert np.isnan(model.agreement(probabilities[0], ["not a smiles"])).all()
    model.save(tmp_path / "fp")
    again = FingerprintModel.load(tmp_path / "fp")
    np.testing.assert_allclose(again.predict(spectra), probabilities, atol=0.02)  # stored as float16
    data = json.loads((tmp_path / "fp" / "fingerprint_model.json").read_text())
    data["config"]["version"] = 0
    (tmp_path / "fp" / "fingerprint_model.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="retrain"):
        FingerprintModel.load(tmp_path / "fp")
    with pytest.raises(ConfigError, match="not a fingerprint model"):
        FingerprintModel.load(tmp_path)


def test_fingerprint_pretraining_teaches_before_the_measured_epochs():
    spectra = _spectra()
    plain = train_fingerprint_model(spectra[:2], SMALL, epochs=1, seed=3)
    assert "pretrain_spectra" not in plain.info["training"]
    same = train_fingerprint_model(spectra[:2], SMALL, epochs=1, seed=3, pretrain=[])
    np.testing.assert_array_equal(same.predict(spectra), plain.predict(spectra))  # no pretraining: same network
    # what the network knows after one measured epoch on two spectra comes from the (here: same) pretraining set
    model = train_fingerprint_model(spectra[:2], SMALL, epochs=1, learning_rate=3e-3, peak_dropout=0.0,
                                    pretrain=spectra, pretrain_epochs=300)
    own = np.array([int(s.inchikey[10:14]) for s in spectra])

    def accuracy(m):
        p = m.predict(spectra)
        return np.mean([m.agreement(p[i], SMILES[:12])[:, 1].argmax() == own[i] for i in range(len(spectra))])

    assert accuracy(model) > 0.8 and accuracy(plain) < 0.5
    assert model.info["training"]["pretrain_spectra"] == len(spectra)
    assert model.info["training"]["pretrain_epochs"] == 300


def _trained_reranker(tmp_path) -> Reranker:
    """A re-ranker whose lists reward a high fingerprint cosine (feature column of fp_cosine)."""
    rng = np.random.default_rng(0)
    n, top = 60, 8
    features = rng.standard_normal((n, top, len(FEATURE_NAMES)))
    labels = np.zeros((n, top), dtype=int)
    labels[np.arange(n), rng.integers(0, top, n)] = 1
    features[..., FEATURE_NAMES.index("fp_cosine")] += 3 * labels
    fingerprint = train_fingerprint_model(_spectra(4), SMALL, epochs=2)
    matcher = train_structure_matcher(_spectra(4), MatcherConfig(dim=16, hidden=32, structure_hidden=32,
                                                                 fingerprint=SMALL), epochs=2)
    reranker = train_reranker(features, labels, fingerprint, top, trees=20, leaves=3, min_child_samples=5,
                              structure_matcher=matcher)
    scored = reranker.rescore(features.reshape(-1, len(FEATURE_NAMES))).reshape(n, top)
    assert np.mean(scored.argmax(axis=1) == labels.argmax(axis=1)) > 0.9
    reranker.save(tmp_path / "reranker")
    again = Reranker.load(tmp_path / "reranker")
    np.testing.assert_allclose(again.rescore(features[0]), reranker.rescore(features[0]))
    assert again.structure_matcher is not None and again.structure_matcher.config == matcher.config
    return again


def test_reranker_round_trip_and_version_check(tmp_path):
    _trained_reranker(tmp_path)
    config = json.loads((tmp_path / "reranker" / "reranker.json").read_text())
    config["feature_version"] = 0
    (tmp_path / "reranker" / "reranker.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="retrain"):
        Reranker.load(tmp_path / "reranker")
    with pytest.raises(ConfigError, match="not a re-ranker"):
        Reranker.load(tmp_path)
    config["feature_version"] = 2
    (tmp_path / "reranker" / "reranker.json").write_text(json.dumps(config))
    (tmp_path / "reranker" / "model.txt").write_text("garbled\n")
    with pytest.raises(ConfigError, match="not a readable LightGBM model"):
        Reranker.load(tmp_path / "reranker")
    weights = tmp_path / "reranker" / "fingerprint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ConfigError, match="unreadable or not this network"):
        FingerprintModel.load(tmp_path / "reranker" / "fingerprint")


def test_search_and_evaluate_apply_the_reranker_identically(tmp_path):
    from llm4ms.evaluate.embedding_scorer import EncoderScorer
    from llm4ms.library import Library
    from llm4ms.model import SpectrumEncoder
    from llm4ms.model.peak_model import build_peak_model

    folder = tmp_path / "reranker"
    _trained_reranker(tmp_path)
    build_peak_model(tmp_path / "model", max_mz=300, hidden_size=32, num_layers=1, heads=2, intermediate_size=64,
                     seed=1)
    encoder = SpectrumEncoder.from_pretrained(tmp_path / "model")
    spectra = _spectra(16, seed=5)
    queries = spectra[0::2]
    library_spectra = [s.copy(metadata={**s.metadata, "prediction_confidence": 0.5 + 0.03 * i})
                       for i, s in enumerate(spectra[1::2])]
    library = Library.build(library_spectra, tmp_path / "lib", encoder, show_progress=False)
    assert library.metadata_row(3)["prediction_confidence"] == pytest.approx(0.59)  # stored for the re-ranker
    assert library._candidates(np.array([3]))[0].get("prediction_confidence") == pytest.approx(0.59)
    fused = Ranking(fusion=0.3, depth=len(library_spectra), prior=MassPrior(weight=0.2, ion_weight=0.02))
    learned = replace(fused, reranker=str(folder))
    assert learned.reranks and "learned re-ranker" in learned.describe()
    assert Ranking.from_dict(learned.to_dict()) == learned
    assert resolve_ranking(learned, prior=False).reranker == ""  # it reads the prior's evidence: off with it
    assert resolve_ranking(learned, learned=False).reranker == "" == resolve_ranking(learned, rerank="wcs").reranker
    assert resolve_ranking(learned).reranker == str(folder)
    hits = library.search(queries, k=5, encoder=encoder, ranking=learned)
    plain = library.search(queries, k=5, encoder=encoder, ranking=fused)
    assert [[h.library_index for h in row] for row in hits] != [[h.library_index for h in row] for row in plain]
    for row in hits:
        scores = [h.score for h in row]
        assert scores == sorted(scores, reverse=True) and 0 <= min(scores) and sum(scores) <= 1 + 1e-5
    scorer = EncoderScorer(encoder=encoder, ranking=learned).fit(library_spectra)
    idx, sc = scorer.search(queries, k=5)
    assert [row[row >= 0].tolist() for row in idx] == [[h.library_index for h in row] for row in hits]
    np.testing.assert_allclose(sc, [[h.score for h in row] for row in hits], atol=1e-6)
    assert load_reranker(str(folder)).top == 8
    from llm4ms.library.structure_cache import build_structure_bits

    config = load_reranker(str(folder)).fingerprint_model.config
    build_structure_bits(library.folder, library.manifest, [s.get("smiles") for s in library_spectra], config,
                         processes=1)
    kept = Library.load(tmp_path / "lib")
    assert kept._structure_bits(config, np.array([0, 2])) is not None  # the re-ranker reads the kept bits now
    again = kept.search(queries, k=5, encoder=encoder, ranking=learned)
    assert [[(h.library_index, h.score) for h in row] for row in again] == \
        [[(h.library_index, h.score) for h in row] for row in hits]
    measured = Library.build(spectra[1::2], tmp_path / "measured", encoder, show_progress=False)  # no confidence
    as_fused = [[(h.library_index, h.score) for h in row]
                for row in measured.search(queries, k=5, encoder=encoder, ranking=fused)]
    assert [[(h.library_index, h.score) for h in row]
            for row in measured.search(queries, k=5, encoder=encoder, ranking=learned)] == as_fused


def test_training_script_fits_on_validation_lists_and_refuses_test_queries(tmp_path):
    import importlib.util
    from pathlib import Path

    from llm4ms.data.split import compound_split
    from llm4ms.io.msp import write_msp
    from llm4ms.model import SpectrumEncoder
    from llm4ms.model.peak_model import build_peak_model
    from llm4ms.ranking import model_ranking

    spectra = _spectra(40, seed=11)
    validation = [s for s in spectra[0::2] if compound_split(s.inchikey14) == "validation"]
    test_split = [s for s in spectra[0::2] if compound_split(s.inchikey14) == "test"]
    assert len(validation) >= 3 and test_split
    write_msp(spectra, tmp_path / "measured.msp")
    write_msp(validation, tmp_path / "queries.msp")
    write_msp(validation + test_split[:1], tmp_path / "with_test.msp")
    write_msp([s.copy(metadata={**s.metadata, "prediction_confidence": 0.8}) for s in spectra[1::2]],
              tmp_path / "library.msp")
    build_peak_model(tmp_path / "model", max_mz=300, hidden_size=32, num_layers=1, heads=2, intermediate_size=64,
                     seed=1)
    script = Path(__file__).resolve().parents[1] / "data_prep" / "train_reranker.py"
    spec = importlib.util.spec_from_file_location("train_reranker", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    common = ["--model", str(tmp_path / "model"), "--libraries", str(tmp_path / "library.msp"),
              "--spectra", str(tmp_path / "measured.msp"), "--fp-epochs", "2", "--top", "6", "--folds", "2",
              "--trees", "5", "--leaves", "3", "--min-child-samples", "2", "--sm-epochs", "2"]
    with pytest.raises(ConfigError, match="test-split"):
        module.main(["--out", str(tmp_path / "refused"), "--queries", str(tmp_path / "with_test.msp"), *common])
    assert module.main(["--out", str(tmp_path / "reranker"), "--queries", str(tmp_path / "queries.msp"),
                        "--write", *common]) == 0
    reranker = Reranker.load(tmp_path / "reranker")
    assert reranker.top == 6 and f"{len(validation)} VALIDATION queries" in reranker.info["queries"]
    n_train = sum(compound_split(s.inchikey14) == "train" for s in spectra)
    assert f"{n_train} TRAIN-split spectra" in reranker.fingerprint_model.info["data"]
    assert model_ranking(SpectrumEncoder.from_pretrained(tmp_path / "model")).reranker == str(tmp_path / "reranker")
    assert "pretraining" not in reranker.fingerprint_model.info
    assert f"{n_train} TRAIN-split spectra" in reranker.structure_matcher.info["data"]
    assert reranker.structure_matcher.config.fingerprint == reranker.fingerprint_model.config
    assert reranker.structure_matcher.info["training"]["epochs"] == 2
    # both structure models reused from folders: nothing is trained again
    assert module.main(["--out", str(tmp_path / "reused"), "--queries", str(tmp_path / "queries.msp"), *common,
                        "--fingerprint-model", str(tmp_path / "reranker" / "fingerprint"),
                        "--structure-matcher", str(tmp_path / "reranker" / "structure_matcher")]) == 0
    reused = Reranker.load(tmp_path / "reused")
    assert reused.structure_matcher.info == reranker.structure_matcher.info
    # pretraining on predicted spectra: only TRAIN-split structures are read
    write_msp(spectra, tmp_path / "predicted.msp")
    assert module.main(["--out", str(tmp_path / "pretrained"), "--queries", str(tmp_path / "queries.msp"),
                        "--fp-pretrain-spectra", str(tmp_path / "predicted.msp"), "--fp-pretrain-epochs", "1",
                        *common]) == 0
    pretrained = Reranker.load(tmp_path / "pretrained")
    assert "pretraining" not in pretrained.structure_matcher.info  # the matcher is not pretrained by default
    info = pretrained.fingerprint_model.info
    assert f"{n_train} predicted spectra of TRAIN-split structures" in info["pretraining"]
    assert info["training"]["pretrain_spectra"] == n_train and info["training"]["pretrain_epochs"] == 1


def test_pretraining_molecules_are_train_split_and_not_excluded(tmp_path):
    import gzip
    import importlib.util
    from pathlib import Path

    from rdkit import Chem

    from llm4ms.data.split import compound_split

    smiles = ["CCO", "CCCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCCCC", "c1ccccc1O", "CC(C)O", "CCOC(=O)C",
              "c1ccncc1", "CCS", "OCCO", "CC#N", "C1CCCCC1", "CCBr", "CCCCO", "CCCCN", "CCCCCl", "CCOCC", "CCCC#N"]
    keys = {s: Chem.MolToInchiKey(Chem.MolFromSmiles(s)) for s in smiles}
    train = [s for s in smiles if compound_split(keys[s][:14]) == "train"]
    assert len(train) >= 3 and len(train) < len(smiles)
    with gzip.open(tmp_path / "moses.csv.gz", "wt") as handle:
        handle.write("SMILES,SPLIT\n" + "".join(f"{s},train\n" for s in smiles + ["not a smiles"]))
    (tmp_path / "decoys.tsv").write_text(f"inchikey\tsmiles\n{keys[train[0]]}\t{train[0]}\n")
    script = Path(__file__).resolve().parents[1] / "data_prep" / "pick_pretraining_molecules.py"
    spec = importlib.util.spec_from_file_location("pick_pretraining_molecules", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "picked.smi"
    assert module.main(["--n", "100", "--out", str(out), "--source", str(tmp_path / "moses.csv.gz"),
                        "--exclude", str(tmp_path / "decoys.tsv")]) == 0
    picked = [line.split()[0] for line in out.read_text().splitlines()]
    assert sorted(picked) == sorted(train[1:])
    assert module.main(["--n", "1", "--out", str(out), "--source", str(tmp_path / "moses.csv.gz")]) == 0
    assert len(out.read_text().splitlines()) == 1
    (tmp_path / "bad.tsv").write_text("smiles\nCCO\n")
    with pytest.raises(ConfigError, match="no 'inchikey' column"):
        module.main(["--out", str(out), "--source", str(tmp_path / "moses.csv.gz"),
                     "--exclude", str(tmp_path / "bad.tsv")])
