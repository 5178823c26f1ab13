"""Reference spectra mixed into predictions (`llm4ms predict --references`, issue 13)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from llm4ms.cli import main
from llm4ms.errors import ConfigError
from llm4ms.io import read_spectra, write_msp
from llm4ms.predict.featurize import FeaturizerSettings, featurize_many
from llm4ms.predict.predictor import EIPredictor
from llm4ms.predict.references import BlendSettings, ReferenceSpectra
from llm4ms.spectrum import Spectrum

SETTINGS = FeaturizerSettings(n_bits=256)
REFS = {"CCCCO": {31: 999, 56: 400, 41: 300}, "CCCCCO": {31: 999, 42: 500, 55: 450},
        "c1ccccc1C": {91: 999, 92: 600, 65: 100}}


def _reference_spectra() -> list[Spectrum]:
    out = []
    for smi, peaks in REFS.items():
        item = featurize_many([smi], SETTINGS)[0]
        mz = np.array(sorted(peaks), float)
        out.append(Spectrum(mz, np.array([peaks[m] for m in sorted(peaks)], float),
                            {"smiles": smi, "inchikey": item.metadata["inchikey"], "name": smi}))
    return out


@pytest.fixture()
def predictor():
    torch.manual_seed(0)
    return EIPredictor.new(SETTINGS, hidden=(32,), max_mz=200, dropout=0.0)


def _vector(spectrum: Spectrum, n: int = 201) -> np.ndarray:
    v = np.zeros(n)
    v[spectrum.mz.astype(int)] = spectrum.intensities
    return v / np.linalg.norm(v)


def test_neighbours_are_the_most_similar_structures():
    spectra = _reference_spectra()
    refs = ReferenceSpectra.from_spectra(spectra + spectra[2:], SETTINGS, max_mz=200)
    assert len(refs.keys) == 3 and refs.n_spectra == 4  # toluene's replicate averaged into one row
    bits = (np.stack([it.features for it in featurize_many(["CCCCCCO", "Cc1ccccc1C"], SETTINGS)])
            [:, :SETTINGS.n_bits] > 0).astype(np.float32)
    idx, sim = ReferenceSpectra(refs.keys, refs.bits, refs.targets, BlendSettings(k=1)).neighbours(bits)
    # hexanol's Morgan bits (radius 2) are pentanol's: similarity 1; xylene is nearest to toluene
    assert [refs.keys[i] for i in idx[:, 0]] == [spectra[1].inchikey14, spectra[2].inchikey14]
    assert sim[0, 0] == pytest.approx(1.0) and 0.3 < sim[1, 0] < 1.0


def test_blend_weights_and_mass_mask(predictor):
    spectra = _reference_spectra()
    plain = predictor.predict(["CCCCCCO"])[0]
    predictor.use_references(spectra, BlendSettings(k=1, weight=1.0))
    copied = predictor.predict(["CCCCCCO"])[0]  # hexanol (M 102): all weight on the nearest reference
    assert _vector(copied) @ _vector(spectra[1]) == pytest.approx(1.0, abs=1e-3)
    predictor.use_references(spectra, BlendSettings(k=1, weight=0.0))
    assert _vector(predictor.predict(["CCCCCCO"])[0]) @ _vector(plain) == pytest.approx(1.0, abs=1e-3)
    predictor.use_references(spectra, BlendSettings(k=1, weight=1.0))
    ethanol = predictor.predict(["CCO"])[0]  # M 46: a neighbour's m/z 55/56 must not leak above M + 5
    assert ethanol.mz.max() <= 46 + predictor.model.config.mass_margin


def test_identity_names_the_references(predictor):
    base = predictor.identity
    predictor.use_references(_reference_spectra())
    first = predictor.identity
    assert first.startswith(base + "+ref-")
    predictor.use_references(_reference_spectra(), BlendSettings(weight=0.3))
    assert predictor.identity != first


def test_cli_predict_with_references(tmp_path, predictor, capsys):
    model = predictor.save_pretrained(tmp_path / "predictor")
    refs = tmp_path / "refs.msp"
    write_msp(_reference_spectra(), refs)
    smi = tmp_path / "mols.smi"
    smi.write_text("CCCCCCO hexanol\nCc1ccccc1C xylene\n")
    out, plain = tmp_path / "lib.msp", tmp_path / "plain.msp"
    assert main(["predict", "--smiles", str(smi), "--out", str(plain), "--model", str(model), "--no-progress"]) == 0
    assert main(["predict", "--smiles", str(smi), "--out", str(out), "--model", str(model), "--no-progress",
                 "--references", str(refs)]) == 0
    printed = capsys.readouterr().out
    assert "3 reference compounds (3 spectra)" in printed and "predicted 2" in printed
    with_refs, without = list(read_spectra(out)), list(read_spectra(plain))
    assert "+ref-" in with_refs[0].get("comment") and "+ref-" not in without[0].get("comment")
    xylene = _vector(with_refs[1]) @ _vector(_reference_spectra()[2])
    assert xylene > _vector(without[1]) @ _vector(_reference_spectra()[2])
    # references without structures: one line naming the file, non-zero exit, nothing written
    bare = tmp_path / "bare.msp"
    bare.write_text("NAME: x\nNUM PEAKS: 1\n41 999\n\n")
    code = main(["predict", "--smiles", str(smi), "--out", str(tmp_path / "none.msp"), "--model", str(model),
                 "--no-progress", "--references", str(bare)])
    err = capsys.readouterr().err
    assert code != 0 and str(bare) in err and "structure" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none.msp").exists()


def test_blend_settings_are_checked():
    with pytest.raises(ValueError):
        BlendSettings(k=0)
    with pytest.raises(ValueError):
        BlendSettings(weight=1.5)
    with pytest.raises(ConfigError, match="structure"):
        ReferenceSpectra.from_spectra([Spectrum(np.array([41.0]), np.array([1.0]), {})], SETTINGS, 200)
    unparsable = {"smiles": "C1CC", "inchikey": "AAAAAAAAAAAAAA-UHFFFAOYSA-N"}
    with pytest.raises(ConfigError, match="invalid_smiles"):
        ReferenceSpectra.from_spectra([Spectrum(np.array([41.0]), np.array([1.0]), unparsable)], SETTINGS, 200)


def test_benchmark_libraries_can_be_predicted_with_references(tmp_path, predictor, monkeypatch):
    """`build_benchmark.py predict --predictor-references FILE` (the +ref rows of predictor_recall.py)."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("build_benchmark", root / "data_prep" / "build_benchmark.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    model = predictor.save_pretrained(tmp_path / "predictor")
    refs = tmp_path / "refs.msp"
    write_msp(_reference_spectra(), refs)
    libraries = {}
    for label, references in (("plain", None), ("ref", str(refs))):
        folder = tmp_path / label / "insilico_validation"
        folder.mkdir(parents=True)
        header = "inchikey\tsmiles\tname\texact_mass\tsource\n"
        target = "AAAAAAAAAAAAAA-UHFFFAOYSA-N\tCc1ccccc1C\txylene\t106.08\tmassbank\n"
        (folder / "targets.tsv").write_text(header + target)
        (folder / "decoys_10k.tsv").write_text(header + "BBBBBBBBBBBBBB-UHFFFAOYSA-N\tCCCCCCO\thexanol\t102.1\tmoses\n")
        builder.build_predicted(tmp_path / label, "validation", ["10k"], predictor_path=str(model),
                                references=references)
        libraries[label] = list(read_spectra(folder / "library_10k.msp"))
    assert [s.name for s in libraries["ref"]] == ["xylene", "hexanol"]
    toluene = _vector(_reference_spectra()[2])
    assert _vector(libraries["ref"][0]) @ toluene > _vector(libraries["plain"][0]) @ toluene


def test_tandem_spectra_are_left_out_of_the_references():
    spectra = _reference_spectra()
    msms = Spectrum(np.array([41.0, 91.0]), np.array([1.0, 0.5]),
                    {**spectra[2].metadata, "precursor_mz": 93.07, "name": "toluene [M+H]+"})
    refs = ReferenceSpectra.from_spectra(spectra[:2] + [msms], SETTINGS, max_mz=200)
    assert refs.n_tandem_left_out == 1 and len(refs.keys) == 2 and spectra[2].inchikey14 not in refs.keys
    level2 = Spectrum(np.array([41.0]), np.array([1.0]), {**spectra[0].metadata, "ms_level": 2})
    with pytest.raises(ConfigError, match="2 MS/MS spectra left out"):
        ReferenceSpectra.from_spectra([msms, level2], SETTINGS, max_mz=200)
