"""MS/MS reading (MGF and MSP dialects, MassBank records), metadata keys, and `clean_msms`."""
from __future__ import annotations

import numpy as np
import pytest

from llm4ms.errors import SpectrumFormatError
from llm4ms.io import read_massbank, read_spectra, read_spectra_text, write_mgf, write_msp
from llm4ms.io.keys import adduct_ion_mode
from llm4ms.spectrum import Spectrum

GNPS_MGF = """\
BEGIN IONS
PEPMASS=418.13730 1523.0
CHARGE=1+
MSLEVEL=2
SOURCE_INSTRUMENT=LC-ESI-qTof
IONMODE=Positive
NAME=Temafloxacin M+H
SMILES=CC1CN(CCN1)C1=CC2=C(C=C1F)C(=O)C(=CN2C1=CC=C(F)C=C1F)C(O)=O
SPECTRUMID=CCMSLIB00000001547
44.04953\t56.6
331.10531\t286.3
400.12671\t999
END IONS
"""

MATCHMS_MGF = """\
BEGIN IONS
TITLE=Genistein
PRECURSOR_MZ=269.04555
ADDUCT=[M-H]-
IONMODE=negative
COLLISION_ENERGY=35.0
INSTRUMENT_TYPE=LC-ESI-ITFT
INSTRUMENT=Q Exactive Plus Orbitrap
FRAGMENTATION_MODE=HCD
INCHIKEY=TZBJGXHYKVUXJN-UHFFFAOYSA-N
133.02952 120
224.04781 45.5
269.04558 1000
END IONS
"""

MASSBANK_MSP = """\
NAME: Temafloxacin
DB#: MSBNK-EPA-ENTACT_AGILENT001413
INCHIKEY: QKDHBVNJCZBTMR-UHFFFAOYSA-N
PRECURSORMZ: 418.13730
PRECURSORTYPE: [M+H]+
IONMODE: Positive
INSTRUMENT_TYPE: ESI-QTOF
INSTRUMENT: Agilent 6530
COLLISION_ENERGY: 40
SPECTRUM_TYPE: MS2
LICENSE: CC BY
AUTHORS: EPA
NUM PEAKS: 2
44.0495 56.6495
400.1267 999
"""

NIST_MSP = """\
Name: Genistein
Precursor_type: [M-H]-
Spectrum_type: MS2
PrecursorMZ: 269.0455
Instrument_type: HCD
Collision_energy: NCE=35%
Ion_mode: N
Num Peaks: 2
133.0295 120
224.0478 45.5
"""

MSDIAL_MSP = """\
NAME: Caffeine
PRECURSORMZ: 195.08765
PRECURSORTYPE: [M+H]+
INSTRUMENTTYPE: LC-ESI-QTOF
COLLISIONENERGY: 20
Num Peaks: 1
138.06619 100
"""

MASSBANK_RECORD = """\
ACCESSION: MSBNK-Test-TS000001
RECORD_TITLE: Temafloxacin; LC-ESI-QTOF; MS2; CE: 40 eV; [M+H]+
AUTHORS: Jane Doe, Example University
LICENSE: CC BY
COPYRIGHT: Copyright (C) 2020 Example
COMMENT: first comment
CH$NAME: Temafloxacin
CH$NAME: Temafloxacine
CH$FORMULA: C21H18F3N3O3
CH$EXACT_MASS: 417.1300
CH$SMILES: CC1CN(CCN1)C1=CC2=C(C=C1F)C(=O)C(=CN2C1=CC=C(F)C=C1F)C(O)=O
CH$IUPAC: N/A
CH$LINK: INCHIKEY QKDHBVNJCZBTMR-UHFFFAOYSA-N
AC$INSTRUMENT: Agilent 6530 Q-TOF
AC$INSTRUMENT_TYPE: LC-ESI-QTOF
AC$MASS_SPECTROMETRY: MS_TYPE MS2
AC$MASS_SPECTROMETRY: ION_MODE POSITIVE
AC$MASS_SPECTROMETRY: COLLISION_ENERGY 40 eV
AC$MASS_SPECTROMETRY: FRAGMENTATION_MODE CID
MS$FOCUSED_ION: PRECURSOR_M/Z 418.1373
MS$FOCUSED_ION: PRECURSOR_TYPE [M+H]+
PK$SPLASH: splash10-0a4i-0009000000-1234
PK$ANNOTATION: m/z tentative_formula
  400.1267 C21H17F3N3O2+
PK$NUM_PEAK: 3
PK$PEAK: m/z int. rel.int.
  44.04953 56649.5 56
  331.10531 286269 286
  400.12671 999000 999
//
"""


def test_gnps_mgf_keeps_precursor_mode_instrument_and_exact_mz():
    (s,) = read_spectra_text(GNPS_MGF, "mgf")
    assert s.mz.tolist() == [44.04953, 331.10531, 400.12671]  # as written, never rounded
    assert s.precursor_mz == 418.1373 and s.get("precursor_intensity") == 1523.0
    assert s.ion_mode == "positive" and s.get("ms_level") == 2 and s.get("charge") == 1
    assert s.get("instrument") == "LC-ESI-qTof" and s.id == "CCMSLIB00000001547"
    assert s.precursor_type is None  # GNPS puts the adduct only into the name


def test_matchms_mgf_keeps_adduct_collision_energy_and_fragmentation():
    (s,) = read_spectra_text(MATCHMS_MGF, "mgf")
    assert s.mz.tolist() == [133.02952, 224.04781, 269.04558]
    assert s.precursor_mz == 269.04555 and s.precursor_type == "[M-H]-" and s.ion_mode == "negative"
    assert s.get("collision_energy") == 35.0 and s.get("fragmentation_mode") == "HCD"
    assert s.get("instrument") == "Q Exactive Plus Orbitrap" and s.get("instrument_type") == "LC-ESI-ITFT"


@pytest.mark.parametrize("text, expected", [
    (MASSBANK_MSP, dict(precursor_mz=418.1373, precursor_type="[M+H]+", ion_mode="positive",
                        instrument_type="ESI-QTOF", instrument="Agilent 6530", collision_energy=40.0, ms_level=2,
                        license="CC BY", authors="EPA", id="MSBNK-EPA-ENTACT_AGILENT001413")),
    (NIST_MSP, dict(precursor_mz=269.0455, precursor_type="[M-H]-", ion_mode="negative", instrument_type="HCD",
                    collision_energy="NCE=35%", ms_level=2)),
    (MSDIAL_MSP, dict(precursor_mz=195.08765, precursor_type="[M+H]+", instrument_type="LC-ESI-QTOF",
                      collision_energy=20.0)),
])
def test_msp_dialects_keep_msms_metadata(text, expected):
    (s,) = read_spectra_text(text, "msp")
    for key, value in expected.items():
        assert s.metadata[key] == value, key
    assert s.mz.tolist() == [float(line.split()[0]) for line in text.strip().splitlines() if line[0].isdigit()]


def test_ion_mode_from_the_adduct_when_not_recorded():
    (s,) = read_spectra_text(MSDIAL_MSP, "msp")
    assert "ion_mode" not in s.metadata and s.ion_mode == "positive"
    assert [adduct_ion_mode(a) for a in ("[M+H]+", "[M-2H]2-", "[M]+*", "M+H", None)] == \
        ["positive", "negative", "positive", None, None]
    assert Spectrum([1.0], [1.0], {"ion_mode": "negative", "precursor_type": "[M+H]+"}).ion_mode == "negative"


def test_msms_metadata_and_mz_survive_mgf_and_msp_round_trips(tmp_path):
    spectra = list(read_spectra_text(MATCHMS_MGF + "\n" + GNPS_MGF, "mgf"))
    for write, name in ((write_mgf, "x.mgf"), (write_msp, "x.msp")):
        write(spectra, tmp_path / name)
        back = list(read_spectra(tmp_path / name))
        for a, b in zip(spectra, back):
            assert b.mz.tolist() == a.mz.tolist()
            for key in ("precursor_mz", "precursor_type", "ion_mode", "collision_energy", "instrument"):
                assert b.get(key) == a.get(key), (name, key)


def test_bad_precursor_is_one_line_naming_file_record_and_line():
    text = MATCHMS_MGF.replace("PRECURSOR_MZ=269.04555", "PRECURSOR_MZ=abc")
    with pytest.raises(SpectrumFormatError, match=r"q\.mgf, record 1, line 3: precursor m/z is not a number"):
        list(read_spectra_text(text, "mgf", name="q.mgf"))


def test_massbank_record(tmp_path):
    path = tmp_path / "MSBNK-Test-TS000001.txt"
    path.write_text(MASSBANK_RECORD)
    (s,) = read_massbank(path)
    assert s.mz.tolist() == [44.04953, 331.10531, 400.12671] and s.intensities.tolist() == [56649.5, 286269, 999000]
    assert s.id == "MSBNK-Test-TS000001" and s.name == "Temafloxacin" and s.get("synonyms") == "Temafloxacine"
    assert s.inchikey == "QKDHBVNJCZBTMR-UHFFFAOYSA-N" and "inchi" not in s.metadata  # N/A is absent
    assert s.precursor_mz == 418.1373 and s.precursor_type == "[M+H]+" and s.ion_mode == "positive"
    assert s.get("ms_level") == 2 and s.get("collision_energy") == "40 eV" and s.get("fragmentation_mode") == "CID"
    assert s.get("instrument") == "Agilent 6530 Q-TOF" and s.get("instrument_type") == "LC-ESI-QTOF"
    assert s.get("license") == "CC BY" and s.get("authors") == "Jane Doe, Example University"
    assert s.get("exact_mass") == 417.13 and s.formula == "C21H18F3N3O3"


@pytest.mark.parametrize("change, message", [
    (("PK$NUM_PEAK: 3", "PK$NUM_PEAK: 4"), r"record 1, line \d+: PK\$NUM_PEAK says 4 but 3 peaks were found"),
    (("  331.10531 286269 286", "  331.1O531 286269 286"), r"line 28: non-numeric peak value '331.1O531'"),
    (("//\n", ""), r"record 1, line 1: record ends without '//'"),
])
def test_bad_massbank_record_is_one_line(tmp_path, change, message):
    path = tmp_path / "MSBNK-Test-TS000002.txt"
    path.write_text(MASSBANK_RECORD.replace(*change))
    with pytest.raises(SpectrumFormatError, match=message) as info:
        list(read_massbank(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# ---- cleaning ------------------------------------------------------------------------------------------------


def _msms(mz, intensities, **meta) -> Spectrum:
    return Spectrum(np.array(mz, float), np.array(intensities, float),
                    {"name": "q", "precursor_mz": 300.1234, "precursor_type": "[M+H]+", **meta})


def test_clean_msms_chain():
    pytest.importorskip("matchms")
    from llm4ms.msms import clean_msms

    s = _msms([50.0, 100.12345, 100.12545, 150.2, 200.00001, 299.0, 300.1234, 301.127],
              [0.5, 80.0, 30.0, 100.0, 20.0, 40.0, 500.0, 60.0], collision_energy=20.0)
    out = clean_msms(s)
    # precursor (and its isotope) and everything above 300.1234 - 1.6 gone; 299.0 is above 298.5234 too
    # 100.12545 is a near-duplicate of the more intense 100.12345; 50.0 is below 1 % of the base peak
    assert out.mz.tolist() == [100.12345, 150.2, 200.00001]
    assert out.intensities.tolist() == [0.8, 1.0, 0.2]
    assert out.metadata == s.metadata  # untouched: nothing derived by matchms leaks in
    assert s.n_peaks == 8  # the input is not changed


def test_clean_msms_settings():
    pytest.importorskip("matchms")
    from llm4ms.errors import ConfigError
    from llm4ms.msms import MSMSCleaning, clean_msms, select_near_duplicates

    s = _msms([100.0, 100.004, 150.0, 200.0], [10.0, 9.0, 100.0, 30.0])
    assert clean_msms(s, merge_tolerance=0).n_peaks == 4
    assert clean_msms(s, merge_tolerance=10, merge_unit="ppm").n_peaks == 4  # 10 ppm of 100 = 0.001 Da
    assert clean_msms(s, merge_tolerance=50, merge_unit="ppm").mz.tolist() == [100.0, 150.0, 200.0]
    assert clean_msms(s, noise=0.2).mz.tolist() == [150.0, 200.0]
    assert clean_msms(s, max_peaks=1).mz.tolist() == [150.0]
    assert clean_msms(s, min_peaks=5) is None
    no_precursor = Spectrum(s.mz, s.intensities, {"name": "x"})
    assert clean_msms(no_precursor).mz.tolist() == [100.0, 150.0, 200.0]  # step 3 skipped
    assert clean_msms(no_precursor, MSMSCleaning(require_precursor=True)) is None
    only_precursor = _msms([300.1234], [10.0])
    assert clean_msms(only_precursor) is None
    with pytest.raises(ConfigError, match="merge_unit"):
        MSMSCleaning(merge_unit="mDa")
    # the most intense peak of a cluster keeps its own m/z; a chain is cut at each kept apex's window
    chain = Spectrum([10.0, 10.004, 10.008, 10.012], [5.0, 9.0, 7.0, 1.0])
    assert select_near_duplicates(chain, 0.005).mz.tolist() == [10.004, 10.012]
