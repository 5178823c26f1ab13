"""Hostile and broken input files (issue 12, "Hardening"): every reader rejects or warns with file/record/line.

Each test names the item of the issue it covers; all of them failed on the readers before
`llm4ms.io.validate` (tracebacks, silent acceptance or silent cuts).
"""
from __future__ import annotations

import codecs
import gzip
import logging
import time

import numpy as np
import pytest

from llm4ms.errors import SpectrumFormatError
from llm4ms.io import ReadReport, read_spectra, require_searchable
from llm4ms.io.validate import MAX_LINE_CHARS, parse_count, parse_number
from llm4ms.spectrum import Spectrum
from tests._io_helpers import write


def _error(path, **kwargs) -> SpectrumFormatError:
    with pytest.raises(SpectrumFormatError) as info:
        list(read_spectra(path, **kwargs))
    return info.value


# ---- Num Peaks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "1e400", "37.9", "-1", "abc", "٣", "4_3", "nan", "0x10"])
def test_num_peaks_must_be_a_whole_number(tmp_path, value):
    """Tracebacks: 87 OverflowError from int(float('inf')); 'Num Peaks: 37.9' was read as 37."""
    path = write(tmp_path, "n.msp", f"Name: OK\nNum Peaks: 1\n5 5\n\nName: A\nNum Peaks: {value}\n10 1\n")
    err = _error(path)
    assert (err.record, err.line) == (2, 6) and "Num Peaks is not a whole number" in str(err)
    report = ReadReport()
    assert [s.name for s in read_spectra(path, skip_invalid=True, report=report)] == ["OK"]
    assert report.skipped == 1


def test_conflicting_num_peaks_lines_are_an_error(tmp_path):
    """Two conflicting Num Peaks lines: the last one used to win."""
    err = _error(write(tmp_path, "c.msp", "Name: A\nNum Peaks: 5\nNum Peaks: 1\n10 1\n"))
    assert (err.record, err.line) == (1, 3) and "conflicting Num Peaks" in str(err)
    (same,) = read_spectra(write(tmp_path, "s.msp", "Name: A\nNum Peaks: 1\nNUM PEAKS: 1\n10 1\n"))
    assert same.n_peaks == 1


# ---- records without Num Peaks: never cut silently ------------------------------------------------
def test_metadata_inside_peaks_of_a_record_without_count_is_an_error(tmp_path):
    """MSP records without Num Peaks were cut at a metadata line; the rest became a nameless record."""
    path = write(tmp_path, "cut.msp", "Name: A\n10 1\n11 2\nComment: x\n12 3\n\nName: B\n13 4\n")
    err = _error(path)
    assert (err.record, err.line) == (1, 4) and "without Num Peaks" in str(err)
    report = ReadReport()
    spectra = list(read_spectra(path, skip_invalid=True, report=report))
    assert [s.name for s in spectra] == ["B"] and report.skipped == 1  # no nameless half record


def test_counted_record_short_of_its_peaks_is_an_error_not_two_records(tmp_path):
    path = write(tmp_path, "short.msp", "Name: A\nNum Peaks: 3\n10 1\nComment: x\n11 2\n12 3\n")
    report = ReadReport()
    assert list(read_spectra(path, skip_invalid=True, report=report)) == []
    assert report.skipped == 1 and "Num Peaks says 3" in report.errors[0]


def test_records_without_count_end_at_blank_line_or_next_name(tmp_path):
    text = "Name: A\n10 1\n11 2\n\nName: B\n12 3\nName: C\nNum Peaks: 1\n13 4\nDB#: D-1\nName: D\n14 5\n"
    assert [(s.name, s.n_peaks) for s in read_spectra(write(tmp_path, "ok.msp", text))] == [
        ("A", 2), ("B", 1), ("C", 1), ("D", 1)]


def test_missing_final_newline_after_uncounted_peaks_warns(tmp_path):
    report = ReadReport()
    (spectrum,) = read_spectra(write(tmp_path, "nl.msp", "Name: A\n10 1\n11 2"), report=report)
    assert spectrum.n_peaks == 2 and report.warning_kinds == {"no_final_newline": 1}
    assert "record 1, line 3" in report.warnings[0]
    report = ReadReport()
    list(read_spectra(write(tmp_path, "counted.msp", "Name: A\nNum Peaks: 2\n10 1\n11 2"), report=report))
    assert report.warned == 0  # the count proves the record complete


# ---- truncated tables and JCAMP-DX ------------------------------------------------------------------
def test_table_without_final_newline_warns_and_cut_row_is_an_error(tmp_path):
    """Truncated CSV files were accepted with the last spectrum cut."""
    report = ReadReport()
    (spectrum,) = read_spectra(write(tmp_path, "t.csv", "mz,intensity\n41,1\n43,16"), report=report)
    assert spectrum.n_peaks == 2 and report.warning_kinds == {"no_final_newline": 1}
    err = _error(write(tmp_path, "u.csv", "mz,intensity\n41,1\n43,2\n5"))
    assert err.line == 4 and "expected m/z and intensity" in str(err)


@pytest.mark.parametrize("text, line, message", [
    ("##TITLE=A\n##PEAK TABLE=(XY..XY)\n50,1 51,2\n", 3, "no ##END="),
    ("##TITLE=A\n##PEAK TABLE=(XY..XY)\n50,1 51,2\n##TITLE=B\n##PEAK TABLE=(XY..XY)\n50,1\n##END=\n", 4,
     "no ##END="),
    ("##TITLE=A\n##NPOINTS=3\n##PEAK TABLE=(XY..XY)\n50,1 51,2\n##END=\n", 2, "##NPOINTS= says 3 but 2"),
    ("##TITLE=A\n##NPOINTS=2.5\n##PEAK TABLE=(XY..XY)\n50,1 51,2\n##END=\n", 2, "NPOINTS= is not a whole"),
    ("##TITLE=A\n##XFACTOR=abc\n##PEAK TABLE=(XY..XY)\n50,1\n##END=\n", 2, "XFACTOR= is not a finite"),
    ("##TITLE=A\n##XFACTOR=1e400\n##PEAK TABLE=(XY..XY)\n50,1\n##END=\n", 2, "XFACTOR= is not a finite"),
    ("##TITLE=A\n##NPOINTS=2\n##NPOINTS=3\n##PEAK TABLE=(XY..XY)\n50,1 51,2\n##END=\n", 3, "conflicting"),
])
def test_truncated_or_inconsistent_jcamp_is_an_error(tmp_path, text, line, message):
    """Truncated JCAMP-DX files were accepted (##END= and ##NPOINTS never checked)."""
    err = _error(write(tmp_path, "a.jdx", text))
    assert err.record == 1 and err.line == line and message in str(err)


# ---- peak values ----------------------------------------------------------------------------------
_BAD_PEAKS = {
    "negative intensity": ("10 -1", "negative intensity"),
    "huge m/z": ("1e308 1", "larger than 100000"),
    "m/z over 1e5": ("100001 1", "larger than 100000"),
    "huge intensity": ("10 1e31", "larger than 1e+30"),
    "overflow": ("1e400 1", "NaN or infinite"),
    "underscore": ("4_3 1", "not a plain ASCII number"),
    "arabic digits": ("٤٣ 1", "not a plain ASCII number"),
    "fullwidth digits": ("４３ 1", "not a plain ASCII number"),
    "underscore annotation": ("10 1 4_3 5", "not a plain ASCII number"),
}


def _peak_file(tmp_path, fmt: str, peak: str):
    first, second = peak.split()[:2]
    rest = " ".join(peak.split()[2:])
    if fmt == "msp":
        return write(tmp_path, "p.msp", f"Name: A\n5 5\n{peak}\n"), 3
    if fmt == "mgf":
        return write(tmp_path, "p.mgf", f"BEGIN IONS\nTITLE=A\n5 5\n{peak}\nEND IONS\n"), 4
    if fmt == "csv":
        return write(tmp_path, "p.csv", f"mz,intensity\n5,5\n{first},{second}\n"), 3
    return write(tmp_path, "p.jdx", f"##TITLE=A\n##PEAK TABLE=(XY..XY)\n5,5\n{first},{second} {rest}\n##END=\n"), 4


@pytest.mark.parametrize("fmt, case", [(fmt, case) for case in _BAD_PEAKS for fmt in ("msp", "mgf", "csv", "jdx")
                                       if fmt in ("msp", "mgf") or case != "underscore annotation"])
def test_bad_peak_values_are_errors_in_every_format(tmp_path, fmt, case):
    """Negative intensities, m/z up to 1e308, intensities > 1e30, '4_3' and non-ASCII digits were accepted."""
    peak, message = _BAD_PEAKS[case]
    path, line = _peak_file(tmp_path, fmt, peak)
    err = _error(path)
    assert err.record == 1 and err.line == line and message in str(err), str(err)


def test_number_parsing_is_strict_ascii():
    assert parse_number("12.5") == 12.5 and parse_number("-1e3") == -1000 and parse_number(".5") == 0.5
    for text in ("4_3", "٤٣", "４３", "1e", "0x10", "1,5", "", "--1", "1 2"):
        assert parse_number(text) is None, text
    assert parse_count("37") == 37 and parse_count("37.9") is None and parse_count("1e400") is None


def test_huge_integers_are_errors_or_text_not_tracebacks(tmp_path):
    """int() of a 5,000-digit string raises ValueError; int-to-float of 1e400 raises OverflowError."""
    digits = "7" * 5000
    text = f"BEGIN IONS\nCHARGE={digits}+\nMSLEVEL={digits}\n10 1\nEND IONS\n"
    (mgf,) = read_spectra(write(tmp_path, "c.mgf", text))
    assert mgf.metadata["charge"] == f"{digits}+" and mgf.metadata["ms_level"] == digits
    jdx = ("##TITLE=A\n##FIRSTX=50\n##LASTX=55\n##NPOINTS=1" + "0" * 400 + "\n##XYDATA=(X++(Y..Y))\n"
           "50 1 0 3\n##END=\n")
    assert "NPOINTS= is not a whole number" in str(_error(write(tmp_path, "n.jdx", jdx)))
    err = _error(write(tmp_path, "n.msp", f"Name: A\nNum Peaks: {digits}\n10 1\n"))
    assert "Num Peaks is not a whole number" in str(err)


def test_non_ascii_digits_in_metadata_are_not_numbers(tmp_path):
    text = "Name: A\nExactMass: ٤٣\nRI: 4_3\nSpectrum_type: MS٢\n10 1\n"
    (spectrum,) = read_spectra(write(tmp_path, "m.msp", text))
    assert spectrum.metadata["exact_mass"] == "٤٣" and spectrum.metadata["retention_index"] == "4_3"
    assert spectrum.metadata["ms_level"] == "MS٢"
    (mgf,) = read_spectra(write(tmp_path, "c.mgf", "BEGIN IONS\nCHARGE=٢+\n10 1\nEND IONS\n"))
    assert mgf.metadata["charge"] == "٢+"


# ---- duplicates and empty spectra ----------------------------------------------------------------
def test_duplicate_mz_merged_keeping_the_largest_with_a_warning(tmp_path, caplog):
    """Duplicate m/z were kept silently (3 of the 10 shipped examples have them)."""
    report = ReadReport()
    with caplog.at_level(logging.WARNING, logger="llm4ms.io"):
        (spectrum,) = read_spectra(write(tmp_path, "d.msp", "Name: A\n10 1\n11 7\n10 5\n11 2\n12 1\n"),
                                   report=report)
    np.testing.assert_array_equal(spectrum.mz, [10, 11, 12])
    np.testing.assert_array_equal(spectrum.intensities, [5, 7, 1])
    assert report.warning_kinds == {"duplicate_mz": 1} and "record 1, line 2" in report.warnings[0]
    assert "duplicate m/z 10, 11" in report.warnings[0]
    assert sum("duplicate m/z" in r.getMessage() for r in caplog.records) == 1  # one line per kind and file


def test_shipped_examples_read_without_warnings_and_duplicates_are_reported(tmp_path):
    from tests._io_helpers import REPO

    for name in ("fastei_10_measured.msp", "fastei_10_measured.mgf"):
        report = ReadReport()
        spectra = list(read_spectra(REPO / "examples" / name, report=report))
        assert len(spectra) == 10 and not report.warning_kinds  # their repeated m/z lines were merged
        assert all(np.all(np.diff(s.mz) > 0) for s in spectra)
    path = tmp_path / "dup.msp"
    path.write_text("Name: D\nNum Peaks: 3\n41 10\n41 30\n43 100\n")
    report = ReadReport()
    (spectrum,) = read_spectra(path, report=report)
    assert report.warning_kinds == {"duplicate_mz": 1}
    assert spectrum.mz.tolist() == [41.0, 43.0] and spectrum.intensities.tolist() == [30.0, 100.0]


@pytest.mark.parametrize("name, text", [
    ("z.msp", "Name: Z\n10 0\n11 0\n"),
    ("n.msp", "Name: Z\nNum Peaks: 0\n"),
    ("z.mgf", "BEGIN IONS\nTITLE=Z\n10 0\nEND IONS\n"),
    ("z.csv", "mz,intensity\n10,0\n11,0\n"),
    ("z.jdx", "##TITLE=Z\n##PEAK TABLE=(XY..XY)\n10,0\n##END=\n"),
])
def test_empty_spectra_are_flagged_and_refused_as_queries(tmp_path, name, text):
    """Empty queries got confident hits (the embedding of empty text); now they are flagged at the input."""
    path = write(tmp_path, name, text)
    report = ReadReport()
    (spectrum,) = read_spectra(path, report=report)
    assert not spectrum.is_searchable and report.warning_kinds == {"unsearchable": 1}
    err = _error(path, require_searchable=True)
    assert err.record == 1 and "cannot be searched" in str(err)
    report = ReadReport()
    assert list(read_spectra(path, require_searchable=True, skip_invalid=True, report=report)) == []
    assert report.skipped == 1
    with pytest.raises(SpectrumFormatError, match="no peak with positive intensity"):
        require_searchable(spectrum)


def test_is_searchable():
    assert Spectrum([10, 11], [0, 3]).is_searchable
    assert not Spectrum([], []).is_searchable
    assert not Spectrum([10], [0]).is_searchable
    assert not Spectrum([10], [-1]).is_searchable
    assert not Spectrum([10], [np.nan]).is_searchable
    assert require_searchable(Spectrum([10], [1])).n_peaks == 1


# ---- precursor m/z --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, text, line", [
    ("p.msp", "Name: A\nPrecursorMZ: abc\n10 1\n", 2),
    ("p.msp", "Name: A\nPRECURSORMZ: 4_3\n10 1\n", 2),
    ("p.msp", "Name: A\nPrecursorMZ: inf\n10 1\n", 2),
    ("p.msp", "Name: A\nPrecursorMZ: 1e400\n10 1\n", 2),
    ("p.msp", "Name: A\nPrecursorMZ: -5\n10 1\n", 2),
    ("p.mgf", "BEGIN IONS\nTITLE=A\nPEPMASS=abc\n10 1\nEND IONS\n", 3),
    ("p.mgf", "PEPMASS=nan 10\nBEGIN IONS\nTITLE=A\n10 1\nEND IONS\n", 1),
])
def test_non_numeric_precursor_is_an_error_at_read_time(tmp_path, name, text, line):
    """Non-numeric PrecursorMZ/PEPMASS was accepted and then crashed search and `embed --skip-invalid`."""
    err = _error(write(tmp_path, name, text))
    assert err.record == 1 and err.line == line and "precursor m/z" in str(err)


def test_numeric_precursor_forms_still_read(tmp_path):
    (a,) = read_spectra(write(tmp_path, "a.mgf", "BEGIN IONS\nPEPMASS=301.14 12000\n10 1\nEND IONS\n"))
    assert a.precursor_mz == pytest.approx(301.14) and a.metadata["precursor_intensity"] == 12000
    (b,) = read_spectra(write(tmp_path, "b.msp", "Name: B\nPrecursorMZ: 195.0877\n10 1\n"))
    assert b.precursor_mz == pytest.approx(195.0877)


# ---- encodings ------------------------------------------------------------------------------------
def test_utf8_bom_with_latin1_body_keeps_the_first_key(tmp_path):
    """A UTF-8 BOM + latin-1 body lost the first name (the BOM bytes became part of the key)."""
    path = tmp_path / "bom.msp"
    path.write_bytes(codecs.BOM_UTF8 + "Name: Café\nNum Peaks: 1\n10 1\n".encode("latin-1"))
    report = ReadReport()
    (spectrum,) = read_spectra(path, report=report)
    assert spectrum.name == "Café" and report.encoding == "latin-1"


@pytest.mark.parametrize("bom, codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
                                        (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be")])
@pytest.mark.parametrize("gz", [False, True])
def test_utf16_and_utf32_files_with_bom_are_decoded(tmp_path, bom, codec, gz):
    """UTF-16/32 files were rejected as 'binary'."""
    data = bom + "Name: Café\r\nNum Peaks: 2\r\n10 1\r\n11 2\r\n".encode(codec)
    path = tmp_path / ("u.msp.gz" if gz else "u.msp")
    path.write_bytes(gzip.compress(data) if gz else data)
    report = ReadReport()
    (spectrum,) = read_spectra(path, report=report)
    assert spectrum.name == "Café" and spectrum.n_peaks == 2 and report.encoding == codec[:6]


def test_broken_utf16_and_binary_files_are_clean_errors(tmp_path):
    path = tmp_path / "bad16.msp"
    path.write_bytes(codecs.BOM_UTF16_LE + "Name: A\n".encode("utf-16-le") + b"\x00\xd8")  # lone surrogate
    assert "UTF-16" in str(_error(path))
    nobom = tmp_path / "nobom.msp"
    nobom.write_bytes("Name: A\n10 1\n".encode("utf-16-le"))
    assert "binary" in str(_error(nobom))


# ---- sizes ------------------------------------------------------------------------------------------
def test_huge_csv_cell_is_a_clean_error(tmp_path):
    """_csv.Error 'field larger than field limit (131072)' escaped as a traceback."""
    err = _error(write(tmp_path, "big.csv", "mz,intensity\n41,1\n" + "9" * 140_000 + ",1\n"))
    assert err.line == 3 and "longer than 131,072 characters" in str(err)
    err = _error(write(tmp_path, "quote.csv", 'mz,intensity\n41,1\n"' + "9" * 140_000 + "\n43,1\n"))
    assert "131,072" in str(err)


def test_line_length_limit(tmp_path):
    err = _error(write(tmp_path, "long.msp", "Name: A\nComments: " + "x" * (MAX_LINE_CHARS + 10) + "\n10 1\n"))
    assert err.line == 2 and "longer than" in str(err)
    (ok,) = read_spectra(write(tmp_path, "ok.msp", "Name: A\nComments: " + "x" * 200_000 + "\n10 1\n"))
    assert len(ok.metadata["comment"]) == 200_000
    err = _error(write(tmp_path, "nonl.csv", "1" * (MAX_LINE_CHARS + 5)))  # no newline at all
    assert err.line == 1 and "longer than" in str(err)


def test_repeated_keys_are_joined_in_linear_time(tmp_path):
    """300,000 repeated Synon: lines took 8-73 s (each repeat copied the whole joined string)."""
    n = 300_000
    text = "Name: A\n" + "".join(f"Synon: s{i}\n" for i in range(n)) + "Synon: s0\n10 1\n"
    path = write(tmp_path, "synon.msp", text)
    start = time.process_time()
    (spectrum,) = read_spectra(path)
    seconds = time.process_time() - start
    synonyms = spectrum.metadata["synon"].split("; ")
    assert len(synonyms) == n and synonyms[:2] == ["s0", "s1"]  # the repeated s0 is not added twice
    assert seconds < 6.0, f"{n} Synon lines took {seconds:.1f} s of CPU"


# ---- no Python exception leaks --------------------------------------------------------------------
@pytest.mark.parametrize("name, data", [
    ("a.msp", b"Name: A\nNum Peaks: 1e400\n10 1\n"),
    ("a.csv", b"mz,intensity\n" + b"1" * 200_000 + b",1\n"),
    ("a.mgf", b"BEGIN IONS\nPEPMASS=\xff\xfe\n10 1\nEND IONS\n"),
    ("a.jdx", "##TITLE=A\n##PEAK TABLE=(XY..XY)\n5٠,1\n##END=\n".encode()),
    ("a.msp.gz", gzip.compress(b"Name: A\n10 1\n")[:-6]),
    ("a.msp", codecs.BOM_UTF32_LE + b"\x00\x00\x11\x00"),  # beyond U+10FFFF
], ids=["num-peaks-overflow", "csv-cell", "latin1-pepmass", "jcamp-digit", "cut-gzip", "utf32-range"])
def test_readers_never_leak_a_python_exception(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SpectrumFormatError):
        list(read_spectra(path))
