"""Energy-conditioned predictor training and weight averaging (issue 13).

Other-energy spectra get rows of their own and train through a per-group scale/shift that leaves 70 eV
predictions (group 0) untouched, so the saved predictor is the plain network.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from llm4ms.data.split import compound_split
from llm4ms.predict.featurize import FeaturizerSettings
from llm4ms.predict.predictor import EIPredictor
from llm4ms.predict.training import (CompoundTable, EnergyConditioning, N_ENERGY_GROUPS, TrainSettings,
                                     build_compound_table, energy_group, evaluate_loss, train)
from llm4ms.spectrum import Spectrum

KEYS = {"LFQSCWFLJHTTHZ": "CCO", "UHOVQNZJYSORNB": "c1ccccc1", "XLYOFNOQVPJJNP": "O",
        "QWENRTYMTSOGBR": "C1=NC=NN1", "OKKJLVBELUTLKV": "CO", "CSCPPACGZOOCGX": "CC(C)=O",
        "IKHGUXGNUITLKF": "CC=O", "KFZMGEQAYNKOFK": "CC(C)O", "YXFVVABEGXRONW": "Cc1ccccc1",
        "VNWKTOKETHGBQD": "C"}


def _spectrum(key: str, peaks: dict[int, float]) -> Spectrum:
    return Spectrum(np.array(sorted(peaks), float), np.array([peaks[m] for m in sorted(peaks)]),
                    {"inchikey": key + "-UHFFFAOYSA-N", "smiles": KEYS[key], "id": key})


def test_energy_groups():
    assert [energy_group(e) for e in (70.0, 65.0, 80.0, None, float("nan"))] == [0] * 5
    assert [energy_group(e) for e in (13.5, 17.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 120.0)] == \
        [1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert max(energy_group(e) for e in (7.0, 20.0, 500.0)) < N_ENERGY_GROUPS


def test_compound_table_keeps_energy_groups_apart_for_train_compounds():
    train_key = next(k for k in KEYS if compound_split(k) == "train")
    other_key = next(k for k in KEYS if compound_split(k) != "train")
    spectra = [_spectrum(train_key, {31: 999, 45: 100}), _spectrum(train_key, {45: 999}),
               _spectrum(train_key, {31: 999, 45: 300})]
    table = build_compound_table(spectra, FeaturizerSettings(n_bits=64), max_mz=100, groups=[0, 2, 0])
    assert table.keys == [train_key, train_key] and list(table.conditions) == [0, 2]
    assert table.targets[1][45] == 1.0 and table.targets[1][31] == 0.0   # the 20 eV row alone
    assert table.targets[0][31] == 1.0                                     # 70 eV replicates averaged
    assert np.isclose(table.targets[0][45], (np.sqrt(100 / 999) + np.sqrt(300 / 999)) / 2)
    plain = build_compound_table(spectra[:1], FeaturizerSettings(n_bits=64), max_mz=100, groups=[0])
    assert plain.conditions is None
    with pytest.raises(ValueError, match="TRAIN"):
        build_compound_table([_spectrum(other_key, {31: 999})], FeaturizerSettings(n_bits=64), max_mz=100,
                             groups=[1])


def test_conditioning_leaves_70_ev_predictions_alone():
    torch.manual_seed(0)
    predictor = EIPredictor.new(FeaturizerSettings(n_bits=16), hidden=(32,), max_mz=80, dropout=0.0)
    net = EnergyConditioning(predictor.model).eval()
    with torch.no_grad():
        net.scale.normal_()
        net.shift.normal_()
    x = torch.rand(4, predictor.featurizer.n_features)
    m = torch.tensor([40, 50, 60, 70])
    with torch.no_grad():
        plain = predictor.model(x, m)
        assert torch.equal(net(x, m, torch.zeros(4, dtype=torch.long)), plain)
        assert not torch.allclose(net(x, m, torch.full((4,), 2, dtype=torch.long)), plain)


def _table(n: int = 80, low_energy: int = 40, bins: int = 81) -> CompoundTable:
    """70 eV rule: a peak at a feature-chosen m/z plus M-15; the 'low-energy' rows keep only M."""
    rng = np.random.default_rng(0)
    settings = FeaturizerSettings(n_bits=16)
    x = rng.random((n + low_energy, settings.n_features), dtype=np.float32)
    masses = rng.integers(40, 75, n + low_energy).astype(np.int64)
    y = np.zeros((n + low_energy, bins), dtype=np.float32)
    y[np.arange(n), (x[:n, 0] * 30).astype(int) + 5] = 1.0
    y[np.arange(n), masses[:n] - 15] = 0.7
    y[np.arange(n, n + low_energy), masses[n:]] = 1.0
    splits = np.array(["train"] * 55 + ["validation"] * 25 + ["train"] * low_energy)
    conditions = np.array([0] * n + [2] * low_energy, dtype=np.int64)
    return CompoundTable(keys=[str(i) for i in range(n + low_energy)], smiles=[""] * (n + low_energy),
                         splits=splits, features=x, masses=masses, targets=y, conditions=conditions)


def _train(table: CompoundTable, settings: TrainSettings) -> tuple[EIPredictor, dict]:
    torch.manual_seed(0)
    predictor = EIPredictor.new(FeaturizerSettings(n_bits=16), hidden=(64,), max_mz=80, dropout=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return predictor, train(predictor, table, settings)
    finally:
        torch.set_num_threads(threads)


def test_conditioned_training_saves_the_plain_network_and_is_not_misled_by_other_energies():
    table = _table()
    settings = TrainSettings(epochs=30, batch_size=16, lr=5e-3, patience=30)
    predictor, result = _train(table, settings)
    fresh = EIPredictor.new(FeaturizerSettings(n_bits=16), hidden=(64,), max_mz=80, dropout=0.0)
    assert predictor.model.state_dict().keys() == fresh.model.state_dict().keys()
    val = table.splits == "validation"
    assert np.isclose(evaluate_loss(predictor, table.features[val], table.masses[val], table.targets[val],
                                    settings), result["best_val_loss"], atol=1e-6)
    # the same rows taken as 70 eV spectra teach the wrong rule: conditioning must do better on validation
    as_70 = CompoundTable(**{**table.__dict__, "conditions": None})
    _, unconditioned = _train(as_70, settings)
    assert result["best_val_loss"] < unconditioned["best_val_loss"]


def test_validation_rows_must_be_70_ev():
    table = _table()
    table.conditions[np.flatnonzero(table.splits == "validation")[0]] = 1
    with pytest.raises(ValueError, match="validation rows"):
        _train(table, TrainSettings(epochs=1))


def test_weight_averaging_keeps_the_averaged_weights_it_validated():
    table = CompoundTable(**{**_table(low_energy=0).__dict__, "conditions": None})
    settings = TrainSettings(epochs=12, batch_size=16, lr=5e-3, patience=30, ema=0.9)
    predictor, result = _train(table, settings)
    _, raw = _train(table, TrainSettings(epochs=12, batch_size=16, lr=5e-3, patience=30))
    val = table.splits == "validation"
    assert np.isclose(evaluate_loss(predictor, table.features[val], table.masses[val], table.targets[val],
                                    settings), result["best_val_loss"], atol=1e-6)
    assert result["best_val_loss"] != raw["best_val_loss"]
