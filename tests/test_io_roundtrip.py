"""Writers round-trip through the readers; matchms conversion; the real shared data files."""
from __future__ import annotations

import numpy as np
import pytest

from llm4ms.io import ReadReport, read_spectra, write_mgf, write_msp
from llm4ms.spectrum import Spectrum
from tests._io_helpers import shared_file


def _spectra() -> list[Spectrum]:
    rng = np.random.default_rng(0)
    nominal = Spectrum(mz=[41, 43, 57, 71], intensities=[120, 999, 340, 15],
                       metadata={"name": "Hexane", "id": "X-1", "inchikey": "VLKZOEOYAKHREP-UHFFFAOYSA-N",
                                 "smiles": "CCCCCC", "formula": "C6H14", "exact_mass": 86.10955,
                                 "retention_index": 600.0, "ms_level": 1, "ion_mode": "positive",
                                 "comment": "line one", "ionization_energy": "70 eV"})
    accurate = Spectrum(mz=np.sort(rng.uniform(50, 500, 25)), intensities=rng.uniform(0, 1, 25),
                        metadata={"name": "Accurate; with: colon", "id": "X-2", "precursor_mz": 501.2345,
                                  "precursor_type": "[M+H]+", "ms_level": 2})
    return [nominal, accurate]


def _same(a: Spectrum, b: Spectrum) -> None:
    np.testing.assert_array_equal(a.mz, b.mz)  # shortest repr text reads back bit-exact
    np.testing.assert_array_equal(a.intensities, b.intensities)
    for key, value in a.metadata.items():
        assert b.metadata.get(key) == value, key


@pytest.mark.parametrize("name", ["out.msp", "out.msp.gz", "out.mgf", "out.mgf.gz"])
def test_write_read_round_trip(tmp_path, name):
    writer = write_msp if ".msp" in name else write_mgf
    spectra = _spectra()
    assert writer(iter(spectra), tmp_path / name) == 2
    back = list(read_spectra(tmp_path / name))
    assert len(back) == 2
    for a, b in zip(spectra, back):
        _same(a, b)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_msp_text_is_nist_style(tmp_path):
    write_msp(_spectra()[:1], tmp_path / "a.msp")
    text = (tmp_path / "a.msp").read_text()
    lines = text.splitlines()
    assert lines[0] == "Name: Hexane" and lines[1] == "DB#: X-1"
    for expected in ("InChIKey: VLKZOEOYAKHREP-UHFFFAOYSA-N", "ExactMass: 86.10955", "RI: 600",
                     "Spectrum_type: MS1", "Ion_mode: positive", "Num Peaks: 4", "43 999", "71 15"):
        assert expected in lines, expected
    assert text.endswith("71 15\n\n")


def test_failed_write_leaves_no_file(tmp_path):
    def broken():
        yield _spectra()[0]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_msp(broken(), tmp_path / "partial.msp")
    assert list(tmp_path.iterdir()) == []


def test_matchms_round_trip():
    pytest.importorskip("matchms")
    original = _spectra()[0]
    back = Spectrum.from_matchms(original.to_matchms())
    np.testing.assert_array_equal(back.mz, original.mz)
    np.testing.assert_array_equal(back.intensities, original.intensities)
    for key in ("name", "id", "inchikey", "smiles", "formula"):
        assert back.metadata.get(key) == original.metadata[key], key
    assert back.metadata["exact_mass"] == pytest.approx(original.metadata["exact_mass"])


# ---- real shared files ------------------------------------------------------------------------------
def test_massbank_ei_all_reads_completely():
    path = shared_file("massbank_ei/massbank_ei_all.msp")
    report = ReadReport()
    count = ids = 0
    for spectrum in read_spectra(path, report=report):
        count += 1
        ids += spectrum.id is not None
        assert spectrum.n_peaks > 0
    assert count == 13342 and ids == 13342
    assert report.read == 13342 and report.skipped == 0 and report.errors == []


def test_pnnl_reads_one_spectrum_per_name_line():
    path = shared_file("pnnl_gcms/PNNLMetV20191015_clean.msp")
    names = sum(1 for line in path.open(encoding="utf-8") if line.lower().startswith("name:"))
    spectra = list(read_spectra(path))
    assert len(spectra) == names > 1000
    assert all(s.name for s in spectra)
    assert sum(s.get("retention_index") is not None for s in spectra) == names


def test_fastei_measured_spectra():
    path = shared_file("fastei/fastei_10_measured.msp")
    spectra = list(read_spectra(path))
    assert len(spectra) == 10
    assert all(s.inchikey and s.smiles and s.n_peaks > 0 for s in spectra)
