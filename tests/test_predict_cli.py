"""`llm4ms predict` end to end: MSP output, bad rows counted, tables, resume after a stop."""
from __future__ import annotations

import gzip
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from llm4ms.cli import main
from llm4ms.errors import ConfigError
from llm4ms.io import read_spectra
from llm4ms.predict.batch import predict_file
from llm4ms.predict.featurize import FeaturizerSettings
from llm4ms.predict.predictor import BUNDLED_DIR, EIPredictor

GOOD = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CCCCCC", "CC(C)O", "c1ccncc1", "ClCCl"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    if (BUNDLED_DIR / "model.safetensors").is_file():
        return BUNDLED_DIR
    torch.manual_seed(1)
    pred = EIPredictor.new(FeaturizerSettings(n_bits=256), hidden=(32,))
    return pred.save_pretrained(tmp_path_factory.mktemp("predictor"))


def _names(path):
    return [s.name for s in read_spectra(path)]


def test_cli_smi_with_bad_line(tmp_path, model_dir, capsys):
    smi = tmp_path / "mols.smi"
    smi.write_text("# a comment\nCCO ethanol\nc1ccccc1 benzene\nC1CC broken ring\nCCN ethylamine\n")
    out = tmp_path / "lib.msp"
    rejects = tmp_path / "rejects.tsv"
    code = main(["predict", "--smiles", str(smi), "--out", str(out), "--model", str(model_dir),
                 "--rejects", str(rejects), "--no-progress"])
    assert code == 0
    line = capsys.readouterr().out
    assert "read 4, predicted 3, skipped 1 (invalid_smiles 1)" in line
    spectra = list(read_spectra(out))
    assert [s.name for s in spectra] == ["ethanol", "benzene", "ethylamine"]
    assert spectra[1].inchikey == "UHOVQNZJYSORNB-UHFFFAOYSA-N" and spectra[1].formula == "C6H6"
    assert all(s.intensities.max() == pytest.approx(999) for s in spectra)
    rows = rejects.read_text().splitlines()
    assert len(rows) == 2 and rows[1].split("\t")[:4] == ["4", "broken ring", "C1CC", "invalid_smiles"]
    assert not (tmp_path / "lib.msp.parts").exists()


def test_cli_csv_gz_columns_and_errors(tmp_path, model_dir, capsys):
    src = tmp_path / "mols.csv.gz"
    with gzip.open(src, "wt") as handle:
        handle.write("ID,Structure,label\nm1,CCO,first\nm2,,empty\nm3,CC(=O)C,third\n")
    out = tmp_path / "lib.msp"
    code = main(["predict", "--smiles", str(src), "--out", str(out), "--model", str(model_dir),
                 "--smiles-column", "structure", "--name-column", "label", "--no-progress"])
    assert code == 0
    assert "read 3, predicted 2, skipped 1 (empty_smiles 1)" in capsys.readouterr().out
    spectra = list(read_spectra(out))
    assert [(s.id, s.name) for s in spectra] == [("m1", "first"), ("m3", "third")]
    # a missing column is a one-line error with exit 2, and nothing is written
    code = main(["predict", "--smiles", str(src), "--out", str(tmp_path / "x.msp"), "--model", str(model_dir),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "no SMILES column" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.msp").exists()
    for missing in (tmp_path / "absent.smi", tmp_path / "mols.sdf"):
        if missing.suffix == ".sdf":
            missing.write_text("x\n")
        code = main(["predict", "--smiles", str(missing), "--out", str(tmp_path / "y.msp"),
                     "--model", str(model_dir), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and str(missing) in err and len(err.strip().splitlines()) == 1


def test_resume_after_limit_only_predicts_the_rest(tmp_path, model_dir, monkeypatch):
    src = tmp_path / "mols.tsv"
    src.write_text("smiles\tid\n" + "".join(f"{s}\tmol{i}\n" for i, s in enumerate(GOOD)))
    out = tmp_path / "lib.msp"
    predictor = EIPredictor.from_pretrained(model_dir)
    seen: list[str] = []
    original = EIPredictor.predict_with_report

    def counting(self, smiles, *args, **kwargs):
        seen.extend(smiles)
        return original(self, smiles, *args, **kwargs)

    monkeypatch.setattr(EIPredictor, "predict_with_report", counting)
    first = predict_file(predictor, src, out, chunk_size=3, limit=4, progress=False)
    assert not first.complete and first.read == 4 and first.predicted == 4
    assert _names(out) == [f"mol{i}" for i in range(4)]
    assert (tmp_path / "lib.msp.parts" / "progress.json").is_file()
    seen.clear()
    second = predict_file(predictor, src, out, chunk_size=3, progress=False)
    assert second.complete and second.read == 7 and second.predicted == 7
    assert seen == GOOD[3:]  # chunk 0 reused; the partial chunk 1 and chunk 2 predicted
    assert _names(out) == [f"mol{i}" for i in range(7)]
    assert not (tmp_path / "lib.msp.parts").exists()


def test_resume_refuses_parts_of_another_run(tmp_path, model_dir):
    src = tmp_path / "mols.smi"
    src.write_text("\n".join(GOOD) + "\n")
    out = tmp_path / "lib.msp"
    predictor = EIPredictor.from_pretrained(model_dir)
    predict_file(predictor, src, out, chunk_size=2, limit=3, progress=False)
    with pytest.raises(ConfigError, match="--restart"):
        predict_file(predictor, src, out, chunk_size=4, progress=False)
    done = predict_file(predictor, src, out, chunk_size=4, restart=True, progress=False)
    assert done.complete and done.predicted == len(GOOD) and len(_names(out)) == len(GOOD)
