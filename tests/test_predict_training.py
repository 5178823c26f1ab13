"""Training data for the predictor: replicates averaged per compound, split by InChIKey, loss goes down."""
from __future__ import annotations

import numpy as np
import torch

from llm4ms.data.split import compound_split
from llm4ms.io import read_spectra
from llm4ms.predict.featurize import FeaturizerSettings
from llm4ms.predict.model import LossSettings, spectrum_loss
from llm4ms.predict.predictor import EIPredictor
from llm4ms.predict.training import TrainSettings, build_compound_table, train

MSP = """NAME: ETHANOL
DB#: X1
INCHIKEY: LFQSCWFLJHTTHZ-UHFFFAOYSA-N
SMILES: CCO
NUM PEAKS: 2
31 999
45 500

NAME: ETHANOL (replicate)
DB#: X2
INCHIKEY: LFQSCWFLJHTTHZ-UHFFFAOYSA-N
SMILES: OCC
NUM PEAKS: 2
31 999
45.2 100

NAME: BENZENE
DB#: X3
INCHIKEY: UHOVQNZJYSORNB-UHFFFAOYSA-N
SMILES: c1ccccc1
NUM PEAKS: 3
78 999
77 250
51 180

NAME: TIN
DB#: X4
INCHIKEY: AFCAKJKUYFLYFK-UHFFFAOYSA-N
SMILES: C[Sn](C)(C)C
NUM PEAKS: 1
165 999
"""


def test_compound_table_averages_replicates_in_sqrt_space(tmp_path):
    path = tmp_path / "t.msp"
    path.write_text(MSP)
    spectra = list(read_spectra(path))
    assert [s.id for s in spectra] == ["X1", "X2", "X3", "X4"]
    table = build_compound_table(spectra, FeaturizerSettings(n_bits=128), max_mz=200)
    assert table.keys == ["LFQSCWFLJHTTHZ", "UHOVQNZJYSORNB"] and table.n_spectra == 4
    assert table.rejected == {"unsupported_element": 1}
    eth = table.targets[0]
    assert eth[31] == 1.0
    assert eth[45] == np.float32((np.sqrt(500 / 999) + np.sqrt(100 / 999)) / 2)
    assert list(table.masses) == [46, 78]
    assert list(table.splits) == [compound_split("LFQSCWFLJHTTHZ"), compound_split("UHOVQNZJYSORNB")]


def test_spectrum_loss_prefers_the_right_spectrum():
    target = torch.zeros(1, 100)
    target[0, [20, 60]] = torch.tensor([1.0, 0.5])
    close, far = target.clone(), torch.zeros(1, 100)
    close[0, 21] = 0.1
    far[0, [10, 30]] = 1.0
    loss = LossSettings(weighted_share=0.5)
    assert float(spectrum_loss(target, target, loss)) < 1e-6
    assert float(spectrum_loss(close, target, loss)) < float(spectrum_loss(far, target, loss))


def test_train_reduces_validation_loss():
    rng = np.random.default_rng(0)
    n, bins = 60, 101
    settings = FeaturizerSettings(n_bits=16)
    x = rng.random((n, settings.n_features), dtype=np.float32)
    masses = rng.integers(60, 100, n)
    # a learnable rule: peak at feature-0-dependent m/z plus a loss of 15 from M
    y = np.zeros((n, bins), dtype=np.float32)
    y[np.arange(n), (x[:, 0] * 40).astype(int) + 10] = 1.0
    y[np.arange(n), masses - 15] = 0.7
    from llm4ms.predict.training import CompoundTable

    splits = np.array(["train"] * 45 + ["validation"] * 15)
    table = CompoundTable(keys=[str(i) for i in range(n)], smiles=[""] * n, splits=splits, features=x,
                          masses=masses.astype(np.int64), targets=y)
    torch.manual_seed(0)
    predictor = EIPredictor.new(settings, hidden=(64,), max_mz=bins - 1, dropout=0.0)
    from llm4ms.predict.training import evaluate_loss

    ts = TrainSettings(epochs=25, batch_size=15, lr=5e-3, patience=25)
    before = evaluate_loss(predictor, *table.subset("validation"), ts)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on shared cores
    try:
        result = train(predictor, table, ts)
    finally:
        torch.set_num_threads(threads)
    assert result["best_val_loss"] < before * 0.7
    assert result["n_train"] == 45 and result["n_validation"] == 15
