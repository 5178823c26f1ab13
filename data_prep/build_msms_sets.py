"""Build MS/MS train / validation / test sets (MGF) from a MassBank/MassBank-data checkout, split by compound.

    git clone --depth 1 https://github.com/MassBank/MassBank-data
    python data_prep/build_msms_sets.py MassBank-data work_data/msms [--permissive] [--clean]

Reads every MassBank record (``MSBNK-*.txt``; folders starting with a dot skipped) with
`llm4ms.io.read_massbank` and keeps the MS2 spectra (``AC$MASS_SPECTROMETRY: MS_TYPE MS2``) with a structure:
an InChIKey, the record's own or computed with RDKit from its InChI, else its SMILES. Each kept spectrum
carries its accession (``id``), name, structure, precursor m/z, precursor type (adduct), ion mode, collision
energy, fragmentation mode, instrument and instrument type, licence, authors and copyright; m/z values are
written as recorded. Spectra are split by compound (InChIKey first block) with the project's split
(`llm4ms.data.split.compound_split`), so one compound's spectra are never in two splits, and written to
OUT/train.mgf, OUT/validation.mgf and OUT/test.mgf, with OUT/summary.json (counts and what was left out, why).

``--permissive`` keeps only records licensed CC0 or CC BY (any version): sets you may redistribute with
attribution (the authors and accession stay in every record). ``--clean`` applies `llm4ms.msms.clean_msms`
with its default settings (needs matchms). Bad records are counted and skipped (the first ones are printed,
one line each: file, record, line, what is wrong); ``--strict`` stops at the first instead.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm4ms.errors import Llm4msError  # noqa: E402

#: metadata written to the MGF files (canonical keys, `llm4ms.io.keys`), in this order
KEPT_KEYS = ("id", "name", "inchikey", "smiles", "inchi", "formula", "exact_mass", "precursor_mz", "precursor_type",
             "ion_mode", "ms_level", "collision_energy", "fragmentation_mode", "instrument", "instrument_type",
             "license", "authors", "copyright")
_INCHIKEY = re.compile(r"[A-Z]{14}-[A-Z]{10}-[A-Z]")
_PERMISSIVE = re.compile(r"(CC0|CC BY)( [0-9](\.[0-9])?)?( INTERNATIONAL)?")
SPLIT_FILES = {"train": "train.mgf", "validation": "validation.mgf", "test": "test.mgf"}
MAX_SHOWN_ERRORS = 10


def permissive(license: Optional[str]) -> bool:
    """Whether a licence is CC0 or CC BY (``CC BY 4.0``, ``CC-BY``), not -SA, -NC, -ND or others."""
    if not license:
        return False
    text = " ".join(str(license).upper().replace("CC-BY", "CC BY").replace("CC-0", "CC0").split())
    return _PERMISSIVE.fullmatch(text) is not None


def record_files(checkout: Path) -> Iterator[Path]:
    """MassBank record files under `checkout`, in sorted order (folders starting with a dot skipped)."""
    for folder, dirs, files in os.walk(checkout):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("MSBNK-") and name.endswith(".txt"):
                yield Path(folder) / name


def inchikey_of(spectrum) -> Optional[str]:
    """The spectrum's InChIKey, else one computed with RDKit from its InChI, else its SMILES; None without."""
    key = str(spectrum.inchikey or "").strip().upper()
    if _INCHIKEY.fullmatch(key):
        return key
    from llm4ms.spectrum import structure_molecule

    mol = structure_molecule(spectrum, prefer="inchi")
    if mol is None:
        return None
    from rdkit import Chem

    key = Chem.MolToInchiKey(mol)
    return key if _INCHIKEY.fullmatch(key or "") else None


def select(spectrum, counts: Counter, permissive_only: bool, clean: bool):
    """The spectrum to write (kept metadata only), or None with the reason counted in `counts`."""
    if spectrum.get("ms_level") != 2:
        counts["not MS2"] += 1
        return None
    if permissive_only and not permissive(spectrum.get("license")):
        counts["licence not CC0 / CC BY"] += 1
        return None
    key = inchikey_of(spectrum)
    if key is None:
        counts["no structure (InChIKey, InChI or SMILES)"] += 1
        return None
    if not spectrum.is_searchable:
        counts["no peaks"] += 1
        return None
    if clean:
        from llm4ms.msms import clean_msms

        cleaned = clean_msms(spectrum)
        if cleaned is None:
            counts["no peaks left after cleaning"] += 1
            return None
        spectrum = cleaned
    meta = {k: spectrum.metadata[k] for k in KEPT_KEYS if spectrum.get(k) is not None}
    meta["inchikey"] = key
    return spectrum.copy(metadata=meta)


def build(checkout: Path, out: Path, permissive_only: bool = False, clean: bool = False,
          strict: bool = False) -> dict:
    """Read, select, split and write; returns the summary (also written to OUT/summary.json)."""
    from llm4ms.data.split import compound_split
    from llm4ms.io import ReadReport, read_massbank, write_mgf
    from llm4ms.utils import write_json

    if not checkout.is_dir():
        raise Llm4msError(f"{checkout}: not a folder (expected a MassBank/MassBank-data checkout)")
    splits: dict[str, list] = {name: [] for name in SPLIT_FILES}
    counts: Counter = Counter()
    licences: Counter = Counter()
    modes: Counter = Counter()
    errors: list[str] = []
    files = 0
    for path in record_files(checkout):
        files += 1
        report = ReadReport()
        for spectrum in read_massbank(path, skip_invalid=not strict, report=report):
            counts["records read"] += 1
            kept = select(spectrum, counts, permissive_only, clean)
            if kept is not None:
                splits[compound_split(kept.inchikey14)].append(kept)
                licences[str(kept.get("license"))] += 1
                modes[str(kept.ion_mode)] += 1
        counts["invalid records skipped"] += report.skipped
        for message in report.errors:
            if len(errors) < MAX_SHOWN_ERRORS:
                print(f"skipped: {message}", file=sys.stderr)
            errors.append(message)
    if files == 0:
        raise Llm4msError(f"{checkout}: no MassBank record files (MSBNK-*.txt) found")
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, spectra in splits.items():
        write_mgf(spectra, out / SPLIT_FILES[name])
        written[name] = {"spectra": len(spectra), "compounds": len({s.inchikey14 for s in spectra})}
    summary = {"checkout": checkout.name, "record_files": files, "permissive_only": permissive_only,
               "cleaned": clean, "written": written, "counts": dict(counts), "by_license": dict(licences),
               "by_ion_mode": dict(modes), "first_errors": errors[:MAX_SHOWN_ERRORS]}
    write_json(out / "summary.json", summary)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="MassBank/MassBank-data checkout (folder of record files)")
    parser.add_argument("out", type=Path, help="folder for train.mgf, validation.mgf, test.mgf, summary.json")
    parser.add_argument("--permissive", action="store_true", help="keep only CC0 and CC BY records")
    parser.add_argument("--clean", action="store_true", help="clean spectra with llm4ms.msms.clean_msms")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad record instead of skipping it")
    args = parser.parse_args(argv)
    try:
        summary = build(args.checkout, args.out, permissive_only=args.permissive, clean=args.clean,
                        strict=args.strict)
    except Llm4msError as err:
        print(f"build_msms_sets: error: {err}", file=sys.stderr)
        return 2
    parts = ", ".join(f"{name} {w['spectra']} spectra / {w['compounds']} compounds"
                      for name, w in summary["written"].items())
    print(f"{args.out}: {parts}; left out: " + (", ".join(f"{n} {reason}" for reason, n in summary["counts"].items()
                                                        if reason != "records read") or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
