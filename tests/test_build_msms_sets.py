"""data_prep/build_msms_sets.py on a tiny synthetic MassBank-data checkout written here."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from llm4ms.data.split import compound_split
from llm4ms.io import read_spectra

SCRIPT = Path(__file__).resolve().parents[1] / "data_prep" / "build_msms_sets.py"

CAFFEINE = ("RYYVLZVUVIJVGH-UHFFFAOYSA-N", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C")
ASPIRIN_SMILES = "CC(=O)Oc1ccccc1C(=O)O"
ASPIRIN_KEY = "BSYNRYMUTXBXSQ-UHFFFAOYSA-N"


def record(accession: str, *, licence: str = "CC BY", ms_type: str = "MS2", inchikey: str | None = CAFFEINE[0],
           smiles: str = CAFFEINE[1], mode: str = "POSITIVE", adduct: str = "[M+H]+", precursor: str = "195.0877",
           peaks: tuple = ((110.07127, 1200), (138.06619, 9990))) -> str:
    lines = [f"ACCESSION: {accession}", f"RECORD_TITLE: test; LC-ESI-QTOF; {ms_type}", "AUTHORS: A. Author, Lab",
             f"LICENSE: {licence}", "CH$NAME: Test compound", "CH$FORMULA: C8H10N4O2", f"CH$SMILES: {smiles}",
             "CH$IUPAC: N/A"]
    if inchikey:
        lines.append(f"CH$LINK: INCHIKEY {inchikey}")
    lines += ["AC$INSTRUMENT: Q Exactive", "AC$INSTRUMENT_TYPE: LC-ESI-ITFT",
              f"AC$MASS_SPECTROMETRY: MS_TYPE {ms_type}", f"AC$MASS_SPECTROMETRY: ION_MODE {mode}",
              "AC$MASS_SPECTROMETRY: COLLISION_ENERGY 35 (nominal)",
              "AC$MASS_SPECTROMETRY: FRAGMENTATION_MODE HCD", f"MS$FOCUSED_ION: PRECURSOR_M/Z {precursor}",
              f"MS$FOCUSED_ION: PRECURSOR_TYPE {adduct}", f"PK$NUM_PEAK: {len(peaks)}", "PK$PEAK: m/z int. rel.int."]
    lines += [f"  {mz} {inten} {int(inten / 10)}" for mz, inten in peaks]
    return "\n".join(lines + ["//"]) + "\n"


@pytest.fixture()
def checkout(tmp_path):
    root = tmp_path / "MassBank-data"
    (root / "Lab_A").mkdir(parents=True)
    (root / "Lab_B").mkdir()
    (root / ".github").mkdir()
    (root / "Lab_A" / "MSBNK-Lab_A-A0000001.txt").write_text(record("MSBNK-Lab_A-A0000001"))
    (root / "Lab_A" / "MSBNK-Lab_A-A0000002.txt").write_text(
        record("MSBNK-Lab_A-A0000002", licence="CC BY-NC-SA", precursor="195.08765"))
    (root / "Lab_B" / "MSBNK-Lab_B-B0000001.txt").write_text(
        record("MSBNK-Lab_B-B0000001", licence="CC0", inchikey=None, smiles=ASPIRIN_SMILES, mode="NEGATIVE",
               adduct="[M-H]-", precursor="179.03498", peaks=((137.02442, 999), (93.03459, 420))))
    (root / "Lab_B" / "MSBNK-Lab_B-B0000002.txt").write_text(record("MSBNK-Lab_B-B0000002", ms_type="MS"))
    (root / ".github" / "MSBNK-ignored-X0000001.txt").write_text("not a record")
    return root


def load_script():
    spec = importlib.util.spec_from_file_location("build_msms_sets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def written(out: Path) -> dict[str, list]:
    sets = {}
    for name in ("train", "validation", "test"):
        path = out / f"{name}.mgf"
        assert path.is_file()
        sets[name] = list(read_spectra(path)) if path.stat().st_size else []
    return sets


def test_sets_split_by_compound_with_metadata(checkout, tmp_path, capsys):
    script = load_script()
    out = tmp_path / "msms"
    assert script.main([str(checkout), str(out)]) == 0
    sets = written(out)
    kept = {s.id: (name, s) for name, spectra in sets.items() for s in spectra}
    assert set(kept) == {"MSBNK-Lab_A-A0000001", "MSBNK-Lab_A-A0000002", "MSBNK-Lab_B-B0000001"}
    for accession, (split, s) in kept.items():
        assert split == compound_split(s.inchikey14)  # one compound, one split
    caffeine = kept["MSBNK-Lab_A-A0000001"][1]
    assert caffeine.mz.tolist() == [110.07127, 138.06619] and caffeine.precursor_mz == 195.0877
    assert caffeine.precursor_type == "[M+H]+" and caffeine.ion_mode == "positive"
    assert caffeine.get("collision_energy") == "35 (nominal)" and caffeine.get("fragmentation_mode") == "HCD"
    assert caffeine.get("instrument") == "Q Exactive" and caffeine.get("instrument_type") == "LC-ESI-ITFT"
    assert caffeine.get("license") == "CC BY" and caffeine.get("authors") == "A. Author, Lab"
    assert caffeine.inchikey == CAFFEINE[0] and caffeine.smiles == CAFFEINE[1]
    aspirin = kept["MSBNK-Lab_B-B0000001"][1]
    assert aspirin.inchikey == ASPIRIN_KEY  # computed from the SMILES (the record gives none)
    assert aspirin.ion_mode == "negative" and aspirin.precursor_type == "[M-H]-"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["records read"] == 4 and summary["counts"]["not MS2"] == 1
    assert summary["record_files"] == 4  # the dot folder is not read
    assert "train" in capsys.readouterr().out


def test_permissive_keeps_only_cc0_and_cc_by(checkout, tmp_path):
    script = load_script()
    out = tmp_path / "perm"
    assert script.main([str(checkout), str(out), "--permissive"]) == 0
    ids = {s.id for spectra in written(out).values() for s in spectra}
    assert ids == {"MSBNK-Lab_A-A0000001", "MSBNK-Lab_B-B0000001"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["licence not CC0 / CC BY"] == 1 and summary["permissive_only"] is True
    assert [script.permissive(x) for x in ("CC BY", "CC0", "CC BY 4.0", "cc-by", "CC BY-SA", "CC BY-NC",
                                           "dl-de/by-2-0", None)] == [True] * 4 + [False] * 4


def test_bad_record_is_skipped_or_stops_with_one_line(checkout, tmp_path, capsys):
    script = load_script()
    bad = checkout / "Lab_B" / "MSBNK-Lab_B-B0000003.txt"
    bad.write_text(record("MSBNK-Lab_B-B0000003").replace("PK$NUM_PEAK: 2", "PK$NUM_PEAK: 5"))
    assert script.main([str(checkout), str(tmp_path / "skip")]) == 0
    err = capsys.readouterr().err
    assert f"skipped: {bad}, record 1, line " in err and "PK$NUM_PEAK says 5 but 2 peaks were found" in err
    summary = json.loads((tmp_path / "skip" / "summary.json").read_text())
    assert summary["counts"]["invalid records skipped"] == 1
    assert script.main([str(checkout), str(tmp_path / "strict"), "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"build_msms_sets: error: {bad}, record 1, line 18: PK$NUM_PEAK says 5 but 2 peaks were found"
    assert not (tmp_path / "strict").exists()


def test_not_a_checkout_is_one_line(tmp_path, capsys):
    script = load_script()
    assert script.main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("build_msms_sets: error: ") and "not a folder" in err and "\n" not in err


def test_clean_option_applies_clean_msms(checkout, tmp_path):
    pytest.importorskip("matchms")
    script = load_script()
    out = tmp_path / "clean"
    assert script.main([str(checkout), str(out), "--clean"]) == 0
    spectra = [s for group in written(out).values() for s in group]
    assert len(spectra) == 3 and all(s.intensities.max() == 1.0 for s in spectra)
    assert json.loads((out / "summary.json").read_text())["cleaned"] is True
