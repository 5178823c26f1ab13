"""Reading spectrum text held in memory (`llm4ms.io.read_spectra_text`): the same readers, decoding and checks
as a file, so a string, bytes, gzip bytes or a UTF-16 upload read exactly as the same content on disk."""
from __future__ import annotations

import codecs
import gzip

import numpy as np
import pytest

from llm4ms.errors import SpectrumFormatError
from llm4ms.io import ReadReport, read_spectra, read_spectra_text

MSP = ("Name: Alpha\nDB#: A1\nExactMass: 58.04\nNum Peaks: 2\n41 10\n43 100\n\n"
       "Name: Beta\nNum Peaks: 3\n27 5\n29 20\n31 999\n")


def _names(spectra):
    return [s.name for s in spectra]


def test_str_reads_like_the_same_file(tmp_path):
    path = tmp_path / "q.msp"
    path.write_text(MSP, encoding="utf-8")
    from_file = list(read_spectra(path))
    report = ReadReport()
    from_text = list(read_spectra_text(MSP, "msp", name="q.msp", report=report))
    assert _names(from_text) == _names(from_file) == ["Alpha", "Beta"]
    for a, b in zip(from_text, from_file):
        assert np.array_equal(a.mz, b.mz) and np.array_equal(a.intensities, b.intensities)
        assert a.metadata == b.metadata
    assert report.read == 2 and report.path == "q.msp" and report.encoding == ""  # a str is not decoded


def test_str_line_endings_and_leading_bom_character():
    text = "\ufeff" + MSP.replace("\n", "\r\n")
    assert _names(read_spectra_text(text, "msp")) == ["Alpha", "Beta"]
    assert _names(read_spectra_text(MSP.replace("\n", "\r"), "msp")) == ["Alpha", "Beta"]


def test_bytes_utf8_and_latin1_fallback():
    report = ReadReport()
    assert _names(read_spectra_text(MSP.encode("utf-8"), "msp", report=report)) == ["Alpha", "Beta"]
    assert report.encoding == "utf-8"
    report = ReadReport()
    (spectrum,) = read_spectra_text("Name: Café\nNum Peaks: 1\n41 10\n".encode("latin-1"), "msp", report=report)
    assert spectrum.name == "Café" and report.encoding == "latin-1"
    assert _names(read_spectra_text(bytearray(MSP.encode()), "msp")) == ["Alpha", "Beta"]
    assert _names(read_spectra_text(memoryview(MSP.encode()), "msp")) == ["Alpha", "Beta"]


def test_gzip_bytes_are_unpacked_by_their_magic_bytes():
    report = ReadReport()
    spectra = list(read_spectra_text(gzip.compress(MSP.encode("utf-8")), "msp", name="q.msp.gz", report=report))
    assert _names(spectra) == ["Alpha", "Beta"] and report.encoding == "utf-8"
    with pytest.raises(SpectrumFormatError, match=r"q\.msp\.gz: not a readable gzip file"):
        list(read_spectra_text(gzip.compress(MSP.encode())[:30], "msp", name="q.msp.gz"))


@pytest.mark.parametrize("codec, bom", [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                                        ("utf-32-le", codecs.BOM_UTF32_LE), ("utf-8", codecs.BOM_UTF8)])
def test_bytes_with_a_byte_order_mark(codec, bom):
    report = ReadReport()
    data = bom + MSP.replace("Alpha", "Café").encode(codec)
    spectra = list(read_spectra_text(data, "msp", report=report))
    assert _names(spectra) == ["Café", "Beta"] and spectra[1].n_peaks == 3
    assert report.encoding == codec[:6].rstrip("-")


def test_utf16_gzip_bytes():
    data = gzip.compress(codecs.BOM_UTF16_LE + MSP.encode("utf-16-le"))
    report = ReadReport()
    assert _names(read_spectra_text(data, "msp", report=report)) == ["Alpha", "Beta"]
    assert report.encoding == "utf-16"


def test_bad_record_names_the_source_record_and_line():
    bad = MSP.replace("29 20", "29 abc")
    with pytest.raises(SpectrumFormatError) as err:
        list(read_spectra_text(bad, "msp", name="upload.msp"))
    assert (err.value.path, err.value.record, err.value.line) == ("upload.msp", 2, 11)
    assert str(err.value).startswith("upload.msp, record 2, line 11: ")
    with pytest.raises(SpectrumFormatError, match=r"^pasted text, record 2, line 11: "):
        list(read_spectra_text(bad.encode("utf-16"), "msp", name="pasted text"))  # the same line when decoded


def test_skip_invalid_fills_the_report():
    report = ReadReport()
    spectra = list(read_spectra_text(MSP.replace("29 20", "29 abc"), "msp", skip_invalid=True, report=report))
    assert _names(spectra) == ["Alpha"] and report.read == 1 and report.skipped == 1
    assert "line 11" in report.errors[0]


def test_require_searchable_and_empty_data():
    zero = "Name: Z\nNum Peaks: 1\n41 0\n"
    assert not next(read_spectra_text(zero, "msp")).is_searchable
    with pytest.raises(SpectrumFormatError, match="^q, record 1, line 3: no peak with positive intensity"):
        list(read_spectra_text(zero, "msp", name="q", require_searchable=True))
    for empty in ("", b""):
        with pytest.raises(SpectrumFormatError, match="x: empty file"):
            list(read_spectra_text(empty, "msp", name="x"))


def test_binary_data_is_refused():
    with pytest.raises(SpectrumFormatError, match="NUL"):
        list(read_spectra_text(b"\x00\x01\x02 not text", "msp", name="blob"))
    with pytest.raises(SpectrumFormatError, match="NUL"):
        list(read_spectra_text("41 10\x00\n", "table", name="blob"))


def test_format_is_required_aliases_and_peak_list_names():
    peaks = "mz,intensity\n41,10\n43,100\n"
    (spectrum,) = read_spectra_text(peaks, "csv", name="my peaks.csv")
    assert spectrum.name == spectrum.id == "my peaks" and spectrum.n_peaks == 2  # a file's stem, as on disk
    (spectrum,) = read_spectra_text(peaks, "table", name="pasted text", default_name="pasted")
    assert spectrum.name == "pasted" and spectrum.id == "pasted"
    with pytest.raises(SpectrumFormatError, match="unknown format 'xls'"):
        read_spectra_text(peaks, "xls", name="a.xls")
    with pytest.raises(TypeError, match="pass a path to read_spectra"):
        read_spectra_text(123, "msp")


def test_every_format_reads_from_memory():
    from llm4ms.io.formats import sniff_format

    texts = {
        "mgf": "BEGIN IONS\nTITLE=m1\nPEPMASS=100\n41 10\n43 100\nEND IONS\n",
        "jcamp": "##TITLE=j1\n##JCAMP-DX=5.01\n##DATA TYPE=MASS SPECTRUM\n##NPOINTS=2\n##PEAK TABLE=(XY..XY)\n"
                 "41,10 43,100\n##END=\n",
        "msp": MSP,
        "table": "41\t10\n43\t100\n",
    }
    for fmt, text in texts.items():
        assert sniff_format(text) == fmt
        spectra = list(read_spectra_text(text.encode("utf-8"), fmt, name=f"x.{fmt}"))
        assert spectra and all(s.n_peaks >= 2 for s in spectra), fmt


def test_gzip_and_stem_helpers_of_the_format_owner():
    from llm4ms.io.formats import is_gzip, is_gzip_data, spectrum_stem

    assert is_gzip_data(gzip.compress(b"x")) and not is_gzip_data(b"Name: x") and not is_gzip_data(b"")
    assert is_gzip("a.MSP.GZ") and not is_gzip("a.msp")
    assert [spectrum_stem(n) for n in ("data/q.msp.gz", "q.csv", "my peaks.TXT.GZ", "noext")] == [
        "q", "q", "my peaks", "noext"]
