"""Predictor v2 pieces: isotope envelope, extra feature blocks, residual/MoE body, ensembles with a
PredictionConfidence field, config versioning (old folders still load) and the extra-data selector."""
from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from llm4ms.data.split import compound_split
from llm4ms.errors import ConfigError
from llm4ms.io import read_spectra, write_msp
from llm4ms.predict.featurize import EXTRA_BLOCKS, FeaturizerSettings, featurize
from llm4ms.predict.isotopes import apply_envelope, isotope_envelope
from llm4ms.spectrum import formula_counts, mass_from_formula
from llm4ms.predict.model import ModelConfig, NEIMSEnsemble, NEIMSModel, build_model
from llm4ms.predict.predictor import CONFIDENCE_KEY, EIPredictor, OutputSettings

SMALL = FeaturizerSettings(n_bits=128)


# ---- isotope envelope -------------------------------------------------------------------------------
def test_formula_counts_one_reader_for_masses_and_envelopes():
    assert formula_counts("C2H6O") == {"C": 2, "H": 6, "O": 1}
    assert formula_counts("C2H5(CH3)2N") == {"C": 4, "H": 11, "N": 1}
    assert formula_counts("C6H5Br+") is None and formula_counts("Xx2") is None
    assert abs(mass_from_formula("C2H5(CH3)2N") - mass_from_formula("C4H11N")) < 1e-9
    assert isotope_envelope("C4H12N+")[1] == isotope_envelope("C4H12N")[1] > 0.04  # charge sign ignored


def test_isotope_envelope_known_formulas():
    ch3cl = isotope_envelope("CH3Cl")
    assert ch3cl[0] == 1.0
    assert ch3cl[2] == pytest.approx(24.22 / 75.78, rel=0.01)  # M+2/M = 0.32 (37Cl)
    assert ch3cl[1] == pytest.approx(0.011, abs=0.002)        # 13C (+ 2H)
    assert isotope_envelope("C6H6")[1] == pytest.approx(6 * 1.07 / 98.93, rel=0.05)  # about 0.065
    br2 = isotope_envelope("CH2Br2")  # 1 : 2 : 1
    assert br2[2] == pytest.approx(1.95, rel=0.02) and br2[4] == pytest.approx(0.95, rel=0.02)
    assert len(isotope_envelope("C10H8", 4)) == 4


def test_apply_envelope_modes():
    row = np.zeros(20)
    row[10], row[11], row[12] = 0.5, 0.9, 0.1  # the network's guess around M = 10
    env = isotope_envelope("CH3Cl", 6)
    anchored = apply_envelope(row.copy(), 10, env, "anchor")
    assert anchored[10] == 0.5 and anchored[12] == pytest.approx(0.5 * env[2])
    assert anchored[9] == 0.0 and anchored[16:].sum() == 0.0
    fitted = apply_envelope(row.copy(), 10, env, "fit")
    np.testing.assert_allclose(fitted[10:16] / fitted[10], env)
    # a molecular ion near the end of the range is cut, not an error
    apply_envelope(np.ones(12), 10, env, "anchor")
    with pytest.raises(ValueError):
        apply_envelope(row.copy(), 10, env, "nope")


# ---- features ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [("chem",), ("maccs",), ("atompair",), ("chem", "maccs")])
def test_extra_feature_blocks(extra):
    settings = FeaturizerSettings(n_bits=128, extra=extra)
    assert settings.n_features == SMALL.n_features + sum(EXTRA_BLOCKS[e] for e in extra)
    item = featurize("CC(=O)OCC(Cl)c1ccccc1", settings)
    assert item.ok and item.features.shape == (settings.n_features,)
    assert np.isfinite(item.features).all()
    np.testing.assert_array_equal(item.features[:SMALL.n_features], featurize("CC(=O)OCC(Cl)c1ccccc1", SMALL).features)
    assert FeaturizerSettings.from_dict(settings.to_dict()) == settings


def test_old_featurizer_config_has_no_extra():
    old = {"n_bits": 2048, "radius": 2, "max_mass": 1000.0, "allowed_elements": ["C", "H"]}
    assert FeaturizerSettings.from_dict(old).extra == ()
    with pytest.raises(ValueError):
        FeaturizerSettings(extra=("nonsense",))


# ---- networks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch,experts", [("mlp", 0), ("resmlp", 0), ("resmlp", 4), ("mlp", 2)])
def test_bodies_keep_shape_and_mass_mask(arch, experts):
    cfg = ModelConfig(n_features=SMALL.n_features, max_mz=200, hidden=(16, 16), arch=arch, n_experts=experts)
    model = build_model(cfg).eval()
    assert isinstance(model, NEIMSModel)
    masses = torch.tensor([40, 150])
    with torch.no_grad():
        out = model(torch.rand(2, SMALL.n_features), masses)
    assert out.shape == (2, 201) and (out >= 0).all()
    assert out[0, 46:].eq(0).all() and out[1, 156:].eq(0).all()


def test_ensemble_is_the_mean_of_its_members():
    cfg = ModelConfig(n_features=SMALL.n_features, max_mz=100, hidden=(8,))
    torch.manual_seed(0)
    members = [NEIMSModel(cfg).eval() for _ in range(3)]
    ens = NEIMSEnsemble.from_models(members).eval()
    x, m = torch.rand(2, SMALL.n_features), torch.tensor([50, 60])
    with torch.no_grad():
        expected = torch.stack([mm(x, m) for mm in members]).mean(0)
        torch.testing.assert_close(ens(x, m), expected)
    assert ens.config.n_members == 3
    with pytest.raises(ValueError):
        NEIMSEnsemble.from_models([members[0], NEIMSModel(ModelConfig(n_features=SMALL.n_features, max_mz=100,
                                                                          hidden=(4,)))])


# ---- predictor: new kinds save/load, confidence, old folders -----------------------------------------
def _ensemble_predictor():
    torch.manual_seed(1)
    cfg = ModelConfig(n_features=SMALL.n_features, hidden=(16,), arch="resmlp", n_experts=2)
    ens = NEIMSEnsemble.from_models([NEIMSModel(cfg) for _ in range(3)])
    return EIPredictor(ens, SMALL, OutputSettings(isotope_envelope="anchor"))


def test_ensemble_roundtrip_kind_and_confidence(tmp_path):
    pred = _ensemble_predictor()
    folder = pred.save_pretrained(tmp_path / "ens")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == "neims-ensemble" and cfg["format_version"] == 2
    assert cfg["model"]["n_members"] == 3 and cfg["model"]["arch"] == "resmlp"
    assert cfg["output"]["isotope_envelope"] == "anchor"
    again = EIPredictor.from_pretrained(folder)
    assert isinstance(again.model, NEIMSEnsemble) and again.output.isotope_envelope == "anchor"
    a, b = pred.predict(["CCCl", "CCO"]), again.predict(["CCCl", "CCO"])
    for s, t in zip(a, b):
        np.testing.assert_array_equal(s.mz, t.mz)
        conf = t.get(CONFIDENCE_KEY)
        assert conf is not None and 0.0 <= conf <= 1.0
        assert conf == pytest.approx(s.get(CONFIDENCE_KEY), abs=0.02)
    # the field reaches the MSP library and reads back
    write_msp(b, tmp_path / "lib.msp")
    text = (tmp_path / "lib.msp").read_text()
    assert "PredictionConfidence: " in text
    back = list(read_spectra(tmp_path / "lib.msp"))
    assert len(back) == 2
    assert [x.get(CONFIDENCE_KEY) for x in back] == [round(x.get(CONFIDENCE_KEY), 3) for x in b]  # floats
    # chloroethane: M = 64, M+2/M written from the formula
    s = b[0]
    inten = dict(zip(s.mz.tolist(), s.intensities.tolist()))
    if inten.get(64.0, 0) > 50:
        assert inten.get(66.0, 0) / inten[64.0] == pytest.approx(0.32, abs=0.02)


def test_single_model_writes_no_confidence_and_keeps_kind(tmp_path):
    torch.manual_seed(0)
    pred = EIPredictor.new(SMALL, hidden=(16,), arch="resmlp")
    folder = pred.save_pretrained(tmp_path / "res")
    assert json.loads((folder / "config.json").read_text())["model_type"] == "neims-resmlp"
    s = EIPredictor.from_pretrained(folder).predict(["CCO"])[0]
    assert s.get(CONFIDENCE_KEY) is None


def test_version1_folder_still_loads(tmp_path):
    """A folder as written before v2 (no arch / n_members / extra / envelope keys) loads unchanged."""
    torch.manual_seed(0)
    pred = EIPredictor.new(SMALL, hidden=(16,))
    folder = pred.save_pretrained(tmp_path / "old")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["format_version"] = 1
    cfg["model_type"] = "neims-mlp"
    for key in ("arch", "n_experts", "n_members"):
        cfg["model"].pop(key)
    cfg["featurizer"].pop("extra")
    for key in ("isotope_envelope", "confidence"):
        cfg["output"].pop(key)
    (folder / "config.json").write_text(json.dumps(cfg))
    old = EIPredictor.from_pretrained(folder)
    assert isinstance(old.model, NEIMSModel) and old.output.isotope_envelope == ""
    np.testing.assert_allclose(old.predict(["CCO"])[0].intensities, pred.predict(["CCO"])[0].intensities,
                               rtol=1e-2, atol=0.5)
    cfg["model_type"] = "neims-transformer-from-the-future"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError):
        EIPredictor.from_pretrained(folder)


# ---- extra training data ------------------------------------------------------------------------------
def _keys_by_split():
    keys = ["LFQSCWFLJHTTHZ", "UHOVQNZJYSORNB", "XLYOFNOQVPJJNP", "QWENRTYMTSOGBR", "OKKJLVBELUTLKV",
            "CSCPPACGZOOCGX", "IKHGUXGNUITLKF", "KFZMGEQAYNKOFK", "YXFVVABEGXRONW", "VNWKTOKETHGBQD"]
    out: dict[str, str] = {}
    for k in keys:
        out.setdefault(compound_split(k), k)
    return out


def test_extra_train_spectra_keeps_only_new_train_compounds(tmp_path):
    from llm4ms.predict.training import extra_train_spectra

    by_split = _keys_by_split()
    if "train" not in by_split:
        pytest.skip("no train-split key among the fixed examples")
    train_key = by_split["train"]
    rows = [("A1", train_key, "0", "", "MS", "50.0"),        # kept
            ("A2", train_key, "0", "", "MS", "20.0"),        # energy too low
            ("A3", train_key, "0", "2 TMS", "MS", "70.0"),   # derivatised
            ("A4", train_key, "1", "", "MS", "70.0"),        # already in the nominal set
            ("A5", "NOTKNOWNKEYXXX", "0", "", "MS", "50.0")]  # excluded below (already a nominal compound)
    for split, key in by_split.items():
        if split != "train":
            rows.append((f"H-{split}", key, "0", "", "MS", "50.0"))  # held-out compound: never added
    header = "accession\tinchikey\tin_nominal_set\tderivative\tms_type\tionization_energy_eV\n"
    (tmp_path / "index.tsv").write_text(header + "".join(
        "\t".join((a, k + "-UHFFFAOYSA-N", n, d, t, e)) + "\n" for a, k, n, d, t, e in rows))
    msp = "".join(f"NAME: {a}\nDB#: {a}\nINCHIKEY: {k}-UHFFFAOYSA-N\nSMILES: CCO\nNUM PEAKS: 1\n31 999\n\n"
                  for a, k, *_ in rows)
    (tmp_path / "all.msp").write_text(msp)
    got = extra_train_spectra(tmp_path / "all.msp", tmp_path / "index.tsv", 40.0, {"NOTKNOWNKEYXXX"})
    assert [s.get("id") for s in got] == ["A1"]


def test_batch_signature_of_default_output_matches_parts_written_before_v2():
    """A half-finished `llm4ms predict` run from before the v2 output settings still resumes."""
    from llm4ms.predict import batch

    predictor = EIPredictor.new(SMALL)
    before_v2 = {"scale": 999.0, "min_relative": 0.002, "max_peaks": 150, "decimals": 2}
    assert batch._output_settings(predictor) == before_v2
    predictor.output = OutputSettings(isotope_envelope="anchor")
    assert batch._output_settings(predictor)["isotope_envelope"] == "anchor"  # a change does count
