"""MSP reading: dialects, record boundaries, errors with file/record/line, skip_invalid, gzip, encoding."""
from __future__ import annotations

import numpy as np
import pytest

from llm4ms.errors import SpectrumFormatError
from llm4ms.io import ReadReport, read_spectra
from tests._io_helpers import write

NIST = """
Name: Methanol
DB#: NIST-1
InChIKey: OKKJLVBELUTLKV-UHFFFAOYSA-N
Formula: CH4O
MW: 32
ExactMass: 32.026215
Comments: "SMILES=CO" "computed mass=32.0262"
Num Peaks: 3
15 100; 29 450
31 999

Name: Ethanol
DB#: NIST-2
Num Peaks: 2
31 999
45 300
"""


def test_nist_dialect_metadata_and_peaks(tmp_path):
    spectra = list(read_spectra(write(tmp_path, "nist.msp", NIST)))
    assert [s.name for s in spectra] == ["Methanol", "Ethanol"]
    first = spectra[0]
    assert first.id == "NIST-1"
    assert first.metadata["mol_weight"] == 32.0 and first.metadata["exact_mass"] == 32.026215
    assert first.smiles == "CO"  # taken from the quoted comment pair, the record has no SMILES key
    np.testing.assert_array_equal(first.mz, [15, 29, 31])
    np.testing.assert_array_equal(first.intensities, [100, 450, 999])
    np.testing.assert_array_equal(spectra[1].mz, [31, 45])


def test_massbank_dialect_upper_case_keys(tmp_path):
    text = """
    NAME: Pyrene
    DB#: MSBNK-X-1
    EXACTMASS: 202.07825
    SPECTRUM_TYPE: MS1
    RETENTION_INDEX: 2034
    IONIZATION_ENERGY: 70 eV
    NUM PEAKS: 2
    101.0 120.5
    202.07 999
    """
    (spectrum,) = read_spectra(write(tmp_path, "mb.msp", text))
    meta = spectrum.metadata
    assert meta["ms_level"] == 1 and meta["retention_index"] == 2034.0
    assert meta["ionization_energy"] == "70 eV"  # unknown key: kept, lower-cased
    np.testing.assert_allclose(spectrum.mz, [101.0, 202.07])


def test_riken_dialect_tabs_and_quoted_annotations(tmp_path):
    text = """
    NAME: Caffeine
    PRECURSORMZ: 195.0877
    PRECURSORTYPE: [M+H]+
    IONMODE: Positive
    Ion_mode: P
    Num Peaks: 3
    110.07\t120\t"frag a"
    138.066\t999\t"b2 with spaces"
    195.0877\t500
    """
    (spectrum,) = read_spectra(write(tmp_path, "riken.msp", text))
    assert spectrum.precursor_mz == pytest.approx(195.0877)
    assert spectrum.metadata["precursor_type"] == "[M+H]+"
    assert spectrum.metadata["ion_mode"] == "positive"
    np.testing.assert_allclose(spectrum.intensities, [120, 999, 500])


@pytest.mark.parametrize("peaks", ["73 1000; 74 129; 147 80;", "73:1000 74:129 147:80",
                                   "73,1000 74,129\n147,80", "73 1000\t74 129 147 80"])
def test_golm_and_packed_peak_lines(tmp_path, peaks):
    path = write(tmp_path, "golm.msp", "Name: X\nNum peaks: 3\n" + peaks + "\n")
    (spectrum,) = read_spectra(path)
    np.testing.assert_array_equal(spectrum.mz, [73, 74, 147])
    np.testing.assert_array_equal(spectrum.intensities, [1000, 129, 80])


def test_records_without_blank_lines_and_without_count(tmp_path):
    text = "Name: A\n10 1\n11 2\nName: B\nNumPeaks: 1\n12 3\nDB#: C-1\nName: C\n13 4\n"
    spectra = list(read_spectra(write(tmp_path, "dense.msp", text)))
    assert [s.name for s in spectra] == ["A", "B", "C"]
    assert spectra[2].id == "C-1"
    assert [s.n_peaks for s in spectra] == [2, 1, 1]


def test_zero_peaks_only_when_declared(tmp_path):
    (empty,) = read_spectra(write(tmp_path, "zero.msp", "Name: Z\nNum Peaks: 0\n"))
    assert empty.n_peaks == 0 and empty.name == "Z"
    with pytest.raises(SpectrumFormatError, match="no peaks"):
        list(read_spectra(write(tmp_path, "nopeaks.msp", "Name: Z\nFormula: C\n")))


@pytest.mark.parametrize("body, line, message", [
    ("Name: A\nNum Peaks: 2\n10 1\n11 x\n", 4, "non-numeric peak value 'x'"),
    ("Name: A\nNum Peaks: 2\n10 1\n-11 5\n", 4, "negative m/z"),
    ("Name: A\nNum Peaks: 2\n10 1\n11 nan\n", 4, "NaN"),
    ("Name: A\nNum Peaks: 3\n10 1\n11 5\n", 2, "Num Peaks says 3 but 2 peaks"),
    ("Name: A\nNum Peaks: 2\n10 1 11\n", 3, "m/z without intensity"),
    ("Name: A\njunk line\n10 1\n", 2, "neither 'key: value' nor a peak"),
])
def test_errors_name_file_record_and_line(tmp_path, body, line, message):
    good = "Name: OK\nNum Peaks: 1\n5 5\n\n"
    path = write(tmp_path, "bad.msp", good + body)
    with pytest.raises(SpectrumFormatError) as info:
        list(read_spectra(path))
    err = info.value
    assert (err.path, err.record, err.line) == (str(path), 2, line + 4)
    assert message in str(err) and str(path) in str(err) and "record 2" in str(err)


def test_skip_invalid_counts_and_continues(tmp_path):
    text = ("Name: A\n10 1\n\nName: B\n10 x\n\nName: C\nNum Peaks: 2\n10 1\n\n"
            "Name: D\n10 1\n\nName: E\nFormula: C\n")
    report = ReadReport()
    spectra = list(read_spectra(write(tmp_path, "mixed.msp", text), skip_invalid=True, report=report))
    assert [s.name for s in spectra] == ["A", "D"]
    assert (report.read, report.skipped) == (2, 3)
    assert len(report.errors) == 3
    assert "record 2" in report.errors[0] and "record 3" in report.errors[1] and "record 5" in report.errors[2]


def test_report_keeps_only_first_errors(tmp_path):
    text = "".join(f"Name: R{i}\n10 x\n\n" for i in range(30)) + "Name: ok\n1 1\n"
    report = ReadReport()
    spectra = list(read_spectra(write(tmp_path, "many.msp", text), skip_invalid=True, report=report))
    assert len(spectra) == 1 and report.skipped == 30 and len(report.errors) == ReadReport.max_errors


def test_empty_and_binary_files(tmp_path):
    with pytest.raises(SpectrumFormatError, match="empty file"):
        list(read_spectra(write(tmp_path, "empty.msp", "\n\n")))
    binary = tmp_path / "bin.msp"
    binary.write_bytes(b"\x00\x01\x02PK\x00" * 10)
    with pytest.raises(SpectrumFormatError, match="binary"):
        list(read_spectra(binary))
    with pytest.raises(SpectrumFormatError, match="file not found"):
        read_spectra(tmp_path / "missing.msp")


def test_gzip_and_latin1_fallback(tmp_path):
    (gz,) = read_spectra(write(tmp_path, "a.msp.gz", "Name: Gz\n1 2\n"))
    assert gz.name == "Gz"
    report = ReadReport()
    path = write(tmp_path, "latin.msp", "Name: Café\n1 2\n", encoding="latin-1")
    (spectrum,) = read_spectra(path, report=report)
    assert spectrum.name == "Café" and report.encoding == "latin-1"
    report = ReadReport()
    (spectrum,) = read_spectra(write(tmp_path, "utf.msp", "\ufeffName: Café\n1 2\n"), report=report)
    assert spectrum.name == "Café" and report.encoding == "utf-8"


def test_bad_gzip_is_a_format_error(tmp_path):
    path = tmp_path / "fake.msp.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(SpectrumFormatError, match="gzip"):
        list(read_spectra(path))


def test_reader_streams_lazily(tmp_path):
    text = "Name: A\n1 1\n\nName: B\n1 x\n"
    iterator = read_spectra(write(tmp_path, "lazy.msp", text))
    assert next(iterator).name == "A"  # the bad second record is only met when asked for
    with pytest.raises(SpectrumFormatError):
        next(iterator)


def test_windows_line_endings(tmp_path):
    path = tmp_path / "crlf.msp"
    path.write_bytes(b"Name: A\r\nNum Peaks: 2\r\n10 1\r\n11 2\r\n\r\nName: B\r\n12 3\r\n")
    spectra = list(read_spectra(path))
    assert [s.name for s in spectra] == ["A", "B"] and spectra[0].n_peaks == 2


def test_second_name_without_peaks_is_an_error_for_the_first(tmp_path):
    path = write(tmp_path, "twonames.msp", "Name: A\nFormula: C\nName: B\n10 1\n")
    report = ReadReport()
    spectra = list(read_spectra(path, skip_invalid=True, report=report))
    assert [s.name for s in spectra] == ["B"]
    assert report.skipped == 1 and "record 1" in report.errors[0] and "no peaks" in report.errors[0]
