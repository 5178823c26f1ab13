"""Concepts with one owner: the mass filter (llm4ms.mass), Recall@k (llm4ms.metrics), format detection (llm4ms.io.formats)."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from llm4ms.errors import SpectrumFormatError
from llm4ms.io.formats import (detect_format, estimate_record_count, format_name, sniff_format, spectrum_suffix,
                               suffix_for)
from llm4ms.mass import mass_window, sort_by_mass


def test_mass_window_ignores_unknown_masses_and_returns_ascending_indices():
    masses = np.array([100.0, np.nan, 100.4, 99.6, 101.0, 100.0])
    sorted_masses, order = sort_by_mass(masses)
    assert sorted_masses.tolist() == [99.6, 100.0, 100.0, 100.4, 101.0] and order.tolist() == [3, 0, 5, 2, 4]
    assert mass_window(sorted_masses, order, 100.1, 0.5).tolist() == [0, 2, 3, 5]
    assert mass_window(sorted_masses, order, 100.0, 0.0).tolist() == [0, 5]
    assert mass_window(sorted_masses, order, 300.0, 0.5).size == 0


@pytest.mark.parametrize("name, suffix, fmt", [("a.MSP", ".msp", "msp"), ("x/b.mgf.GZ", ".mgf.gz", "mgf"),
                                               ("c.tsv", ".tsv", "table"), ("d.jdx.gz", ".jdx.gz", "jcamp")])
def test_detect_format_and_suffix(name, suffix, fmt):
    assert spectrum_suffix(name) == suffix and detect_format(name) == fmt


def test_format_names_suffixes_and_sniffing():
    assert format_name("CSV") == "table" and format_name("jdx") == "jcamp"
    with pytest.raises(SpectrumFormatError, match="unknown format"):
        format_name("mzml")
    with pytest.raises(SpectrumFormatError, match="unknown spectrum file extension"):
        detect_format("a.xyz")
    assert [suffix_for(f) for f in ("msp", "mgf", "table", "jcamp")] == [".msp", ".mgf", ".txt", ".jdx"]
    assert sniff_format("BEGIN IONS\nPEPMASS=1\n1 1\nEND IONS\n") == "mgf"
    assert sniff_format("##TITLE=x\n##JCAMP-DX=4.24\n") == "jcamp"
    assert sniff_format("Name: A\nNum Peaks: 1\n1 1\n") == "msp"
    assert sniff_format("41 10\n57 100\n") == "table"


def test_estimate_record_count(tmp_path):
    (tmp_path / "a.msp").write_text("Name: A\nNum Peaks: 1\n1 1\n\nNAME: B\nNum Peaks: 1\n1 1\n")
    with gzip.open(tmp_path / "b.mgf.gz", "wt") as handle:
        handle.write("BEGIN IONS\n1 1\nEND IONS\nbegin ions\n1 1\nEND IONS\nBEGIN IONS\n1 1\nEND IONS\n")
    (tmp_path / "c.csv").write_text("mz,intensity\n1,1\n")
    assert estimate_record_count(tmp_path / "a.msp") == 2
    assert estimate_record_count(tmp_path / "b.mgf.gz") == 3
    assert estimate_record_count(tmp_path / "c.csv") is None
    assert estimate_record_count(tmp_path / "d.xyz") is None
