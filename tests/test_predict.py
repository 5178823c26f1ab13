"""In-silico EI prediction: featuriser refusals, NEIMS model geometry, predictor, CLI and resume."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from llm4ms.errors import ConfigError
from llm4ms.predict import featurize as fz
from llm4ms.predict.featurize import FeaturizerSettings, featurize, featurize_many
from llm4ms.predict.model import ModelConfig, NEIMSModel, mass_mask, reverse_to_mz
from llm4ms.predict.predictor import BUNDLED_DIR, EIPredictor

SMALL = FeaturizerSettings(n_bits=256)
MARGIN = 5


@pytest.fixture(scope="module")
def predictor_dir(tmp_path_factory):
    """The bundled weights if shipped, else a tiny random predictor saved to disk."""
    if (BUNDLED_DIR / "model.safetensors").is_file():
        return BUNDLED_DIR
    torch.manual_seed(0)
    pred = EIPredictor.new(SMALL, hidden=(32,), mass_margin=MARGIN)
    return pred.save_pretrained(tmp_path_factory.mktemp("predictor"))


@pytest.fixture(scope="module")
def predictor(predictor_dir):
    return EIPredictor.from_pretrained(predictor_dir)


# ---- featuriser -------------------------------------------------------------------------------------
@pytest.mark.parametrize("smiles,reason", [
    ("", fz.EMPTY),
    ("C1CC", fz.INVALID_SMILES),            # unclosed ring
    ("c1cccc1", fz.INVALID_SMILES),         # cannot kekulise
    ("CC(=O)[O-].[Na+]", fz.MULTIPLE_FRAGMENTS),
    ("C[Se]C", fz.UNSUPPORTED_ELEMENT),
    ("C[Sn](C)(C)C", fz.UNSUPPORTED_ELEMENT),
])
def test_featurize_rejects_with_reason(smiles, reason):
    item = featurize(smiles, SMALL)
    assert not item.ok and item.features is None
    assert item.reason == reason and item.detail


def test_featurize_mass_limit_is_configurable():
    heavy = "C" * 80  # C80H162, about 1123 Da
    assert featurize(heavy, SMALL).reason == fz.MASS_TOO_HIGH
    assert featurize("c1ccccc1", FeaturizerSettings(n_bits=256, max_mass=50.0)).reason == fz.MASS_TOO_HIGH
    assert featurize(heavy, FeaturizerSettings(n_bits=256, max_mass=1500.0)).ok


def test_featurize_metadata_and_features():
    item = featurize("OCC", SMALL)
    assert item.ok
    assert item.metadata["smiles"] == "CCO"
    assert item.metadata["inchikey"] == "LFQSCWFLJHTTHZ-UHFFFAOYSA-N"
    assert item.metadata["formula"] == "C2H6O"
    assert item.metadata["exact_mass"] == pytest.approx(46.0419, abs=1e-3)
    assert item.nominal_mass == 46
    assert item.features.shape == (SMALL.n_features,) and item.features.dtype == np.float32
    assert (item.features >= 0).all() and item.features[:256].sum() > 0
    # different molecules, different fingerprints; charged single-fragment nitro groups are fine
    assert not np.array_equal(item.features, featurize("CCCO", SMALL).features)
    assert featurize("C[N+](=O)[O-]", SMALL).ok


def test_featurize_many_parallel_matches_serial():
    smiles = ["CCO", "bad(", "c1ccccc1O", "CCN"] * 20
    serial = featurize_many(smiles, SMALL, n_jobs=1)
    parallel = featurize_many(smiles, SMALL, n_jobs=2)
    assert [a.reason for a in serial] == [b.reason for b in parallel]
    for a, b in zip(serial, parallel):
        if a.ok:
            np.testing.assert_array_equal(a.features, b.features)


# ---- model geometry ---------------------------------------------------------------------------------
def test_reverse_head_index_j_lands_at_mass_minus_j():
    n_bins = 201
    reverse = torch.zeros(3, n_bins)
    masses = torch.tensor([100, 150, 60])
    for b, j in enumerate([15, 0, 42]):
        reverse[b, j] = 1.0
    out = reverse_to_mz(reverse, masses)
    assert out.shape == (3, n_bins)
    assert out.argmax(dim=1).tolist() == [85, 150, 18]
    assert out.sum(dim=1).tolist() == [1.0, 1.0, 1.0]
    # bins beyond the molecular mass never receive reverse intensity
    full = reverse_to_mz(torch.ones(3, n_bins), masses)
    for b, m in enumerate(masses.tolist()):
        assert full[b, : m + 1].eq(1).all() and full[b, m + 1:].eq(0).all()


def test_model_shapes_gate_and_mass_mask():
    cfg = ModelConfig(n_features=SMALL.n_features, max_mz=300, hidden=(16, 8), mass_margin=MARGIN)
    model = NEIMSModel(cfg).eval()
    x = torch.rand(4, SMALL.n_features)
    masses = torch.tensor([50, 120, 200, 299])
    with torch.no_grad():
        out = model(x, masses)
        assert out.shape == (4, 301) and (out >= 0).all()
        for b, m in enumerate(masses.tolist()):
            assert out[b, m + MARGIN + 1:].eq(0).all()
        # force the gate shut: only the reverse head speaks, so a loss of 15 shows at M - 15
        model.gate.weight.zero_(); model.gate.bias.fill_(-50.0)
        model.reverse_head.weight.zero_(); model.reverse_head.bias.zero_(); model.reverse_head.bias[15] = 1.0
        out = model(x, masses)
    assert out.argmax(dim=1).tolist() == [35, 105, 185, 284]
    assert mass_mask(torch.tensor([10]), 20, 2)[0].tolist() == [1.0] * 13 + [0.0] * 7


# ---- predictor --------------------------------------------------------------------------------------
def test_predict_valid_invalid_and_metadata(predictor):
    smiles = ["CCO", "not a smiles", "c1ccc(cc1)C(=O)O", "[Na+].[Cl-]", "ClC(Cl)(Cl)Cl"]
    ids = ["a", "b", "c", "d", "e"]
    spectra, report = predictor.predict_with_report(smiles, ids=ids, names=["ethanol", None, None, None, None])
    assert [s is None for s in spectra] == [False, True, False, True, False]
    assert report.reasons[1] == fz.INVALID_SMILES and report.reasons[3] == fz.MULTIPLE_FRAGMENTS
    assert report.n_predicted == 3 and report.skipped == {fz.INVALID_SMILES: 1, fz.MULTIPLE_FRAGMENTS: 1}
    assert "read 5, predicted 3, skipped 2" in report.summary()
    margin = predictor.model.config.mass_margin
    for s, expected_key in zip([spectra[0], spectra[2], spectra[4]],
                               ["LFQSCWFLJHTTHZ", "WPYMKLBDIGXBTP", "VZGDMQKNWNREIO"]):
        assert s.inchikey14 == expected_key
        assert s.intensities.max() == pytest.approx(999.0)
        assert (s.intensities > 0).all() and 0 < s.n_peaks <= predictor.output.max_peaks
        assert s.mz.max() <= np.floor(float(s.get("exact_mass")) + 0.5) + margin
        assert np.all(s.mz == np.round(s.mz))
    assert spectra[0].name == "ethanol" and spectra[0].id == "a" and spectra[0].smiles == "CCO"
    assert spectra[2].name == "c" and spectra[2].id == "c" and spectra[2].formula == "C7H6O2"
    assert predictor.predict(["CCO"])[0] is not None


def test_predict_is_batch_independent(predictor):
    smiles = ["CCO", "CCCCCCCC", "c1ccccc1N", "CC(C)=O"]
    whole = predictor.predict(smiles, batch_size=64)
    one_by_one = predictor.predict(smiles, batch_size=1)
    for a, b in zip(whole, one_by_one):
        np.testing.assert_array_equal(a.mz, b.mz)
        np.testing.assert_allclose(a.intensities, b.intensities, atol=0.02)


def test_save_and_reload_roundtrip(tmp_path, predictor):
    folder = predictor.save_pretrained(tmp_path / "p", readme="# test\n")
    again = EIPredictor.from_pretrained(folder)
    assert (folder / "README.md").read_text() == "# test\n"
    a, b = predictor.predict(["CCOC(C)=O"])[0], again.predict(["CCOC(C)=O"])[0]
    np.testing.assert_array_equal(a.mz, b.mz)
    np.testing.assert_allclose(a.intensities, b.intensities, rtol=1e-2, atol=0.5)
    with pytest.raises(ConfigError):
        EIPredictor.from_pretrained(tmp_path / "nothing-here")
    from llm4ms.predict.predictor import folder_identity

    assert folder_identity(folder) == again.identity != "untrained"  # the cache key needs no network built
    with pytest.raises(ConfigError):
        folder_identity(tmp_path / "nothing-here")
