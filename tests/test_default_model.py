"""The default-model pipeline pieces (cross-fitted predictions, in-silico hard negatives) and the shipped model."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from llm4ms.spectrum import Spectrum
from llm4ms.training.crossfit import CrossfitSettings, crossfit_predictions, fold_of
from llm4ms.training.mining import build_triples, nearest_predicted

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "llm4ms" / "resources" / "model"


def _spectrum(key: str, peaks: dict[float, float], **meta) -> Spectrum:
    mz = sorted(peaks)
    return Spectrum(np.array(mz, dtype=float), np.array([peaks[m] for m in mz], dtype=float),
                    {"inchikey": key, "id": meta.pop("id", key), **meta})


def test_fold_of_is_stable_balanced_and_case_insensitive():
    keys = [f"KEY{i:011d}" for i in range(3000)]
    folds = [fold_of(k, 3) for k in keys]
    assert folds == [fold_of(k.lower(), 3) for k in keys]
    counts = np.bincount(folds, minlength=3)
    assert counts.min() > 850  # roughly a third each
    with pytest.raises(ValueError):
        fold_of("ABC", 0)


def test_nearest_predicted_skips_own_compound_and_ranks_by_cosine():
    measured = [_spectrum("AAAAAAAAAAAAAA", {41: 1.0, 43: 0.5, 57: 0.2})]
    predicted = [_spectrum("AAAAAAAAAAAAAA", {41: 1.0, 43: 0.5, 57: 0.2}),  # own compound: never a negative
                 _spectrum("BBBBBBBBBBBBBB", {41: 1.0, 43: 0.4}),              # close look-alike
                 _spectrum("CCCCCCCCCCCCCC", {91: 1.0, 92: 0.6}),              # unrelated
                 _spectrum("DDDDDDDDDDDDDD", {41: 0.3, 57: 1.0})]
    out = nearest_predicted(measured, ["AAAAAAAAAAAAAA"], predicted, k=2)
    assert out.tolist() == [[1, 3]]
    short = nearest_predicted(measured, ["AAAAAAAAAAAAAA"], predicted[:2], k=2)
    assert short.tolist() == [[1, -1]]


def test_build_triples_with_predicted_negatives_uses_predicted_look_alikes():
    base = {41: 1.0, 43: 0.6, 57: 0.3}
    keys = [c * 14 for c in "ABCDEF"]
    measured = [_spectrum(k, {**base, 60 + 7 * i: 0.8}, id=f"m{i}") for i, k in enumerate(keys)]
    predicted = [_spectrum(k, {**base, 60 + 7 * i: 0.5}, id=f"p{i}") for i, k in enumerate(keys)]
    triples = build_triples(measured, num_negatives=2, predicted=predicted, predicted_negatives=True, seed=1)
    with_pred = [t for t in triples if str(t["positive"].id).startswith("p")]
    assert len(with_pred) == len(keys) and len(triples) == 2 * len(keys)
    for t in with_pred:
        assert t["positive"].inchikey14 == t["anchor_key"]
        assert len(t["negatives"]) == 2
        assert all(str(n.id).startswith("p") and n.inchikey14 != t["anchor_key"] for n in t["negatives"])
    # without the flag the predicted triple keeps measured negatives (previous behaviour)
    plain = build_triples(measured, num_negatives=2, predicted=predicted, seed=1)
    assert all(str(n.id).startswith("m") for t in plain for n in t["negatives"])


def test_crossfit_never_predicts_a_compound_with_a_predictor_that_saw_it(monkeypatch):
    import llm4ms.predict.training as training
    from llm4ms.predict.featurize import FeaturizerSettings

    smiles = ["C" * n + "O" for n in range(1, 13)] + ["C" * n + "N" for n in range(1, 7)]
    n = len(smiles)
    keys = [f"{chr(65 + i % 26)}{i:013d}" for i in range(n)]
    splits = np.array(["train"] * 14 + ["validation"] * 4)
    width = FeaturizerSettings(n_bits=64).n_features
    rng = np.random.default_rng(0)
    table = training.CompoundTable(keys=keys, smiles=smiles, splits=splits,
                                   features=rng.random((n, width), dtype=np.float32),
                                   masses=np.full(n, 60, dtype=np.int64),
                                   targets=rng.random((n, 1001), dtype=np.float32))
    seen_by_fold: list[set] = []
    real_train = training.train

    def spy(predictor, fold_table, settings):
        seen_by_fold.append({k for k, s in zip(fold_table.keys, fold_table.splits) if s == "train"})
        return real_train(predictor, fold_table, settings)

    monkeypatch.setattr(training, "train", spy)
    settings = CrossfitSettings(folds=3, n_bits=64, hidden=(16,), epochs=1, max_minutes=0.2)
    predicted, info = crossfit_predictions([], settings, table=table)
    train_keys = set(keys[:14])
    got = [p.inchikey14 for p in predicted]
    assert len(got) == len(set(got)) and set(got) <= train_keys and len(got) >= 10
    assert [i["fold"] for i in info] == [0, 1, 2]
    for p in predicted:
        fold = int(re.search(r"pred-cv(\d)-", p.id).group(1))
        assert fold == fold_of(p.inchikey14, 3)
        assert p.inchikey14 not in seen_by_fold[fold]
    assert all(seen <= train_keys for seen in seen_by_fold)


@pytest.mark.skipif(not (SHIPPED / "llm4ms_config.json").exists(), reason="default model not built")
def test_shipped_model_loads_encodes_and_documents_itself():
    from llm4ms.model import SpectrumEncoder

    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert size < 60e6
    encoder = SpectrumEncoder.from_pretrained(SHIPPED)
    spectra = [_spectrum("AAAAAAAAAAAAAA", {41: 1.0, 43: 0.6, 57: 0.3}),
               _spectrum("AAAAAAAAAAAAAA", {41: 1.0, 43: 0.55, 57: 0.35}),
               _spectrum("BBBBBBBBBBBBBB", {77: 1.0, 105: 0.9, 182: 0.4})]
    vectors = encoder.encode(spectra)
    assert vectors.shape == (3, encoder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # a trained model: near-replicates are closer
    config = json.loads((SHIPPED / "llm4ms_config.json").read_text())
    training = config["training"]
    assert "CC BY-NC-SA" in json.dumps(training) and "build_default_model" in json.dumps(training)
    assert any("test" in k for k in config["scores"]) and any("validation" in k for k in config["scores"])
    card = (SHIPPED / "README.md").read_text()
    assert "llm4ms search --query" in card and "llm4ms embed --spectra" in card
    assert not re.search(r"llm4ms (embed|search) [^-\s]", card)  # no positional file arguments


def test_crossfit_with_predictor_v2_options_trains_seeds_per_fold_on_held_out_compounds(monkeypatch):
    import llm4ms.predict.training as training
    from llm4ms.predict.featurize import FeaturizerSettings

    smiles = ["C" * n + "O" for n in range(1, 13)] + ["C" * n + "N" for n in range(1, 7)]
    n = len(smiles)
    keys = [f"{chr(65 + i % 26)}{i:013d}" for i in range(n)]
    width = FeaturizerSettings(n_bits=64, extra=("chem",)).n_features
    rng = np.random.default_rng(0)
    table = training.CompoundTable(keys=keys, smiles=smiles, splits=np.array(["train"] * 14 + ["validation"] * 4),
                                   features=rng.random((n, width), dtype=np.float32),
                                   masses=np.full(n, 60, dtype=np.int64),
                                   targets=rng.random((n, 1001), dtype=np.float32))
    calls: list[tuple[set, int]] = []
    real_train = training.train

    def spy(predictor, fold_table, settings):
        calls.append(({k for k, s in zip(fold_table.keys, fold_table.splits) if s == "train"}, settings.seed))
        return real_train(predictor, fold_table, settings)

    monkeypatch.setattr(training, "train", spy)
    settings = CrossfitSettings(folds=3, n_bits=64, hidden=(16,), epochs=1, max_minutes=0.2, extra=("chem",),
                                members=2, isotope_envelope="anchor")
    predicted, info = crossfit_predictions([], settings, table=table)
    assert len(calls) == 6 and len({seed for _, seed in calls}) == 6  # two seeds per fold, all different
    assert [i["fold"] for i in info] == [0, 1, 2] and all(len(i["best_epoch"]) == 2 for i in info)
    for p in predicted:
        fold = int(re.search(r"pred-cv(\d)-", p.id).group(1))
        assert all(p.inchikey14 not in seen for seen, _ in calls[2 * fold:2 * fold + 2])
        assert "prediction_confidence" not in p.metadata
