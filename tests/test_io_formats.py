"""MGF, CSV/TXT tables, JCAMP-DX, format detection and metadata keys."""
from __future__ import annotations

import numpy as np
import pytest

from llm4ms.errors import SpectrumFormatError
from llm4ms.io import ReadReport, detect_format, normalize_metadata, read_spectra
from tests._io_helpers import write

# ---- MGF ------------------------------------------------------------------------------------------
MGF = """
COM=a file comment header
ION=global default
BEGIN IONS
TITLE=Scan 1
PEPMASS=301.14 12000
CHARGE=2+
SMILES=CCO
INCHIKEY=LFQSCWFLJHTTHZ-UHFFFAOYSA-N
110.5 10 b1
120.25 20
END IONS

BEGIN IONS
TITLE=Scan 2
SPECTRUMID=CCMSLIB0001
PEPMASS=150.0
CHARGE=1-
ION=own value
50 5
END IONS
"""


def test_mgf_headers_peaks_and_defaults(tmp_path):
    first, second = read_spectra(write(tmp_path, "x.mgf", MGF))
    assert first.name == "Scan 1" and first.id == "Scan 1"  # no id given: TITLE is the id
    assert first.precursor_mz == pytest.approx(301.14)
    assert first.metadata["precursor_intensity"] == 12000.0
    assert first.metadata["charge"] == 2 and second.metadata["charge"] == -1
    assert first.smiles == "CCO" and first.inchikey14 == "LFQSCWFLJHTTHZ"
    np.testing.assert_allclose(first.mz, [110.5, 120.25])
    assert second.id == "CCMSLIB0001"
    assert first.metadata["ion"] == "global default" and second.metadata["ion"] == "own value"


@pytest.mark.parametrize("text, line, message", [
    ("BEGIN IONS\nTITLE=a\n10 1\n", 1, "missing END IONS"),
    ("BEGIN IONS\nTITLE=a\n10 zz\nEND IONS\n", 3, "non-numeric"),
    ("BEGIN IONS\nTITLE=a\nEND IONS\n", 1, "no peaks"),
    ("10 1\n", 1, "outside BEGIN IONS"),
])
def test_mgf_errors(tmp_path, text, line, message):
    path = write(tmp_path, "bad.mgf", text)
    with pytest.raises(SpectrumFormatError) as info:
        list(read_spectra(path))
    assert info.value.line == line and info.value.record == 1 and message in str(info.value)


def test_mgf_skip_invalid(tmp_path):
    text = "BEGIN IONS\nTITLE=a\n1 x\nEND IONS\n" + "BEGIN IONS\nTITLE=b\n1 1\nEND IONS\n"
    report = ReadReport()
    spectra = list(read_spectra(write(tmp_path, "s.mgf", text), skip_invalid=True, report=report))
    assert [s.name for s in spectra] == ["b"] and report.skipped == 1


# ---- tables ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, text", [
    ("measuredA.csv", "mz,intensity\n41,54.6\n43,146.4\n57,16.3\n"),
    ("measuredA.csv", "41,54.6\n43,146.4\n57,16.3\n"),
    ("measuredA.tsv", "m/z\tAbundance\n41\t54.6\n43\t146.4\n57\t16.3\n"),
    ("measuredA.txt", "41 54.6\n43   146.4\n# a comment\n57 16.3\n"),
    ("measuredA.txt", "41;54.6\n43;146.4\n57;16.3\n"),
    ("measuredA.csv.gz", "41,0.546\n43,1.464\n57,0.163\n"),
])
def test_two_column_peak_lists(tmp_path, name, text):
    (spectrum,) = read_spectra(write(tmp_path, name, text))
    assert spectrum.name == "measuredA" and spectrum.id == "measuredA"
    np.testing.assert_array_equal(spectrum.mz, [41, 43, 57])
    assert spectrum.intensities[1] == pytest.approx(146.4 if not name.endswith("gz") else 1.464)


def test_table_errors(tmp_path):
    with pytest.raises(SpectrumFormatError) as info:
        list(read_spectra(write(tmp_path, "t.csv", "mz,intensity\n41,1\n43,abc\n")))
    assert info.value.line == 3 and "non-numeric" in str(info.value)
    with pytest.raises(SpectrumFormatError, match="no m/z and intensity"):
        list(read_spectra(write(tmp_path, "u.csv", "a,b,c\n1,2,3\n")))
    with pytest.raises(SpectrumFormatError, match="no peaks"):
        list(read_spectra(write(tmp_path, "v.csv", "mz,intensity\n")))


def test_long_table_groups_rows_by_id(tmp_path):
    text = ('spectrum_id,name,smiles,mz,intensity\n'
            's1,"2-Butene, (Z)-",C/C=C\\C,41,100\n'
            's1,"2-Butene, (Z)-",C/C=C\\C,56,50\n'
            's2,Thiophenethiol,Sc1cccs1,116,999\n')
    first, second = read_spectra(write(tmp_path, "long.csv", text))
    assert first.id == "s1" and first.name == "2-Butene, (Z)-" and first.smiles == "C/C=C\\C"
    np.testing.assert_array_equal(first.mz, [41, 56])
    assert second.id == "s2" and second.n_peaks == 1
    broken = text + "s1,again,C,43,1\n"
    report = ReadReport()
    spectra = list(read_spectra(write(tmp_path, "long2.csv", broken), skip_invalid=True, report=report))
    assert len(spectra) == 2 and report.skipped == 1 and "not consecutive" in report.errors[0]


# ---- JCAMP-DX -------------------------------------------------------------------------------------
JCAMP = """
##TITLE=Benzene
##JCAMP-DX=4.24
##DATA TYPE=MASS SPECTRUM
##CAS REGISTRY NO=71-43-2
##MOLFORM=C6 H6
##MW=78
##NPOINTS=4
##PEAK TABLE=(XY..XY)
50,160 51,180; 52,190
78,9999
##END=
$$ a comment between blocks
##TITLE=Toluene
##PEAK TABLE=(XY..XY)
91,9999 92,6000
##END=
"""


def test_jcamp_peak_tables(tmp_path):
    benzene, toluene = read_spectra(write(tmp_path, "x.jdx", JCAMP))
    assert benzene.name == "Benzene" and benzene.metadata["cas"] == "71-43-2"
    assert benzene.formula == "C6 H6" and benzene.metadata["mol_weight"] == 78.0
    np.testing.assert_array_equal(benzene.mz, [50, 51, 52, 78])
    np.testing.assert_array_equal(benzene.intensities, [160, 180, 190, 9999])
    assert toluene.name == "Toluene" and toluene.n_peaks == 2


def test_jcamp_link_file_and_xydata_affn(tmp_path):
    text = """
    ##TITLE=compound file
    ##JCAMP-DX=5.01
    ##DATA TYPE=LINK
    ##BLOCKS=1
    ##TITLE=profile
    ##XFACTOR=1
    ##YFACTOR=2
    ##FIRSTX=50
    ##LASTX=55
    ##NPOINTS=6
    ##XYDATA=(X++(Y..Y))
    50 1 0 3
    53 0 5 6
    ##END=
    ##END=
    """
    (spectrum,) = read_spectra(write(tmp_path, "link.dx", text))
    assert spectrum.name == "profile"
    np.testing.assert_array_equal(spectrum.mz, [50, 52, 54, 55])
    np.testing.assert_array_equal(spectrum.intensities, [2, 6, 10, 12])


def test_jcamp_compressed_xydata_is_a_clear_error(tmp_path):
    text = ("##TITLE=asdf\n##FIRSTX=1\n##LASTX=8\n##NPOINTS=8\n##XYDATA=(X++(Y..Y))\n"
            "1@A1J2K3%\n##END=\n")
    with pytest.raises(SpectrumFormatError) as info:
        list(read_spectra(write(tmp_path, "c.jdx", text)))
    assert "ASDF" in str(info.value) and info.value.line == 6 and info.value.record == 1


# ---- detection and keys ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, fmt", [("a.msp", "msp"), ("a.MSP.gz", "msp"), ("b.mgf", "mgf"),
                                       ("c.csv", "table"), ("c.tsv.gz", "table"), ("c.txt", "table"),
                                       ("d.jdx", "jcamp"), ("d.dx", "jcamp"), ("d.jcamp", "jcamp")])
def test_detect_format(name, fmt):
    assert detect_format(name) == fmt


def test_unknown_format_lists_supported(tmp_path):
    path = write(tmp_path, "a.xyz", "Name: A\n1 1\n")
    with pytest.raises(SpectrumFormatError) as info:
        read_spectra(path)
    assert ".msp" in str(info.value) and ".jdx" in str(info.value) and "a.xyz" in str(info.value)
    (spectrum,) = read_spectra(path, format="msp")
    assert spectrum.name == "A"
    with pytest.raises(SpectrumFormatError, match="unknown format"):
        read_spectra(path, format="mzml")


@pytest.mark.parametrize("raw_key, canonical", [
    ("NAME", "name"), ("compound_name", "name"), ("title", "name"), ("DB#", "id"), ("ACCESSION", "id"),
    ("spectrum_id", "id"), ("SPECTRUMID", "id"), ("ID", "id"), ("INCHIKEY", "inchikey"),
    ("InChI", "inchi"), ("SMILES", "smiles"), ("FORMULA", "formula"), ("ExactMass", "exact_mass"),
    ("exact_mass", "exact_mass"), ("EXACTMASS", "exact_mass"), ("MW", "mol_weight"),
    ("MolecularWeight", "mol_weight"), ("mol_weight", "mol_weight"), ("PrecursorMZ", "precursor_mz"),
    ("PEPMASS", "precursor_mz"), ("PRECURSORTYPE", "precursor_type"), ("adduct", "precursor_type"),
    ("IONMODE", "ion_mode"), ("Ion_mode", "ion_mode"), ("POLARITY", "ion_mode"),
    ("RI", "retention_index"), ("RETENTION_INDEX", "retention_index"),
    ("RETENTIONINDEX", "retention_index"), ("RT", "retention_time"), ("RETENTIONTIME", "retention_time"),
    ("CAS", "cas"), ("CASNO", "cas"), ("INSTRUMENT_TYPE", "instrument_type"), ("INSTRUMENT", "instrument"),
    ("IONIZATION", "ionization"), ("COLLISION_ENERGY", "collision_energy"), ("LICENSE", "license"),
    ("AUTHORS", "authors"), ("COMMENT", "comment"), ("Comments", "comment"),
    ("Spectrum_type", "ms_level"), ("MS_LEVEL", "ms_level"),
])
def test_synonyms(raw_key, canonical):
    assert canonical in normalize_metadata({raw_key: "1"})


def test_value_parsing():
    meta = normalize_metadata({"PEPMASS": "301.1 2000", "Ion_mode": "N", "MS_LEVEL": "MS2", "RI": "abc",
                               "ExactMass": "46.04", "Collision Energy": "35 eV", "My Key": "v",
                               "POLARITY": "+", "Spectrum_type": "2"})
    assert meta["precursor_mz"] == 301.1 and meta["ion_mode"] == "negative" and meta["ms_level"] == 2
    assert meta["retention_index"] == "abc" and meta["exact_mass"] == 46.04
    assert meta["collision_energy"] == "35 eV" and meta["my_key"] == "v"
    assert normalize_metadata({"POLARITY": "+"})["ion_mode"] == "positive"
    assert normalize_metadata({"Spectrum_type": "MS1"})["ms_level"] == 1
