"""The bundled default library: measured files + candidate structures predicted at first use, cached."""
from __future__ import annotations

import gzip

import pytest

import llm4ms.defaults as defaults
from llm4ms.io import read_spectra, write_msp

from _fakes import FakeEncoder, random_spectra


def test_bundled_files_are_present_and_readable():
    measured = defaults.default_library_sources()
    assert [p.name for p in measured] == ["massbank_ei_ccby.msp"]
    spectra = list(read_spectra(measured[0]))
    assert len(spectra) == 470
    assert all(s.get("license") in ("CC BY", "CC BY-SA") and s.get("authors") for s in spectra)
    with gzip.open(defaults.default_candidate_structures(), "rt") as handle:
        rows = handle.read().splitlines()
    assert rows[0] == "id,name,smiles" and len(rows) == 11_510


def test_default_library_predicts_embeds_once_and_reuses(tmp_path, monkeypatch):
    folder = tmp_path / "resources"
    folder.mkdir()
    write_msp(random_spectra(20, seed=5), folder / "measured.msp")
    (folder / "candidates_insilico.csv.gz").write_bytes(gzip.compress(
        b"id,name,smiles\nc1,ethanol,CCO\nc2,benzene,c1ccccc1\nc3,bad,not-a-smiles\nc4,toluene,Cc1ccccc1\n"))
    monkeypatch.setattr(defaults, "DEFAULT_LIBRARY_SPECTRA", folder)
    monkeypatch.setenv("LLM4MS_CACHE", str(tmp_path / "cache"))
    encoder = FakeEncoder()
    library = defaults.default_library(encoder, show_progress=False)
    assert len(library) == 23  # 20 measured + 3 predicted (the invalid SMILES is counted and skipped)
    names = [library.metadata_row(i)["name"] for i in range(20, 23)]
    assert names == ["ethanol", "benzene", "toluene"]
    assert library.spectrum(21).molecular_mass == pytest.approx(78.047, abs=0.01)
    again = FakeEncoder()
    assert len(defaults.default_library(again, show_progress=False)) == 23
    assert again.encoded == 0  # cached: nothing embedded twice
    monkeypatch.setattr(defaults, "bundled_predictor_identity", lambda: "another-predictor")
    third = FakeEncoder()
    assert len(defaults.default_library(third, show_progress=False)) == 23
    assert third.encoded == 23  # a new bundled predictor: its spectra are embedded, the old ones not reused


def test_no_default_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(defaults, "DEFAULT_MODEL_DIR", tmp_path / "none")
    with pytest.raises(defaults.ConfigError, match="no --model given"):
        defaults.load_encoder(None)


def test_bundled_models_by_name(tmp_path, monkeypatch):
    from llm4ms.errors import ConfigError

    loaded = []
    monkeypatch.setattr(defaults, "_load_model", lambda reference, device=None: loaded.append(reference) or reference)
    monkeypatch.setattr(defaults, "BUNDLED_MODELS", {**defaults.BUNDLED_MODELS, "msms": tmp_path / "absent"})
    with pytest.raises(ConfigError, match="does not ship the msms model"):
        defaults.load_encoder("msms")
    shipped = tmp_path / "msms_model"
    shipped.mkdir()
    (shipped / "llm4ms_config.json").write_text("{}")
    monkeypatch.setattr(defaults, "BUNDLED_MODELS", {**defaults.BUNDLED_MODELS, "msms": shipped})
    assert defaults.load_encoder("msms") == str(shipped)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ei").mkdir()  # a folder of that name in the working directory wins
    assert defaults.load_encoder("ei") == "ei"
    assert defaults.load_encoder("some/hub-id") == "some/hub-id"
