"""Load evaluation inputs: a spectrum file, or a library folder built by `llm4ms embed`.

Reading goes through `llm4ms.io.read_spectra` (the one reader of the package). Until that module is
available, a minimal MSP reader keeps evaluation and the benchmark builder usable; it understands only
what the benchmark files contain (NAME/DB#/INCHIKEY/SMILES/FORMULA/EXACTMASS/MW + peak lines).
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

import numpy as np

from llm4ms.errors import ConfigError, SpectrumFormatError
from llm4ms.spectrum import Spectrum

_MSP_KEYS = {"name": "name", "db#": "id", "dbnum": "id", "accession": "id", "inchikey": "inchikey",
             "smiles": "smiles", "formula": "formula", "exactmass": "exact_mass", "exact_mass": "exact_mass",
             "mw": "mol_weight", "inchi": "inchi", "license": "license", "authors": "authors",
             "instrument_type": "instrument_type", "instrument": "instrument", "comment": "comment"}


def load_spectra(path: str | Path) -> list[Spectrum]:
    """All spectra of a file (any format `llm4ms.io` reads) or of a library folder with manifest.json."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    if path.is_dir():
        if not (path / "manifest.json").exists():
            raise ConfigError(f"{path}: a folder must be a library built by `llm4ms embed` (no manifest.json)")
        from llm4ms.search import Library

        library = Library.load(path)
        return [library.spectrum(i) for i in range(len(library))]
    try:
        from llm4ms.io import read_spectra
    except ImportError:
        read_spectra = None
    if read_spectra is not None:
        return list(read_spectra(path))
    return list(read_msp_minimal(path))


def read_msp_minimal(path: str | Path) -> Iterator[Spectrum]:
    """Stream spectra from an MSP file (fallback until `llm4ms.io` lands)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    meta: dict = {}
    mz: list[float] = []
    inten: list[float] = []
    record = 0
    with opener(path, "rt", encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                if meta or mz:
                    yield Spectrum(np.array(mz), np.array(inten), meta)
                meta, mz, inten = {}, [], []
                continue
            if not meta and not mz:
                record += 1
            head = line[:1]
            if head.isdigit() or head == ".":
                parts = line.replace(",", " ").replace(";", " ").split()
                try:
                    values = [float(p) for p in parts]
                except ValueError as err:
                    raise SpectrumFormatError(f"bad peak line {line!r}", str(path), record, lineno) from err
                for a, b in zip(values[0::2], values[1::2]):
                    mz.append(a)
                    inten.append(b)
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise SpectrumFormatError(f"expected 'KEY: value', got {line!r}", str(path), record, lineno)
            canonical = _MSP_KEYS.get(key.strip().lower())
            if canonical:
                meta[canonical] = value.strip()
            elif key.strip().lower() != "num peaks":
                meta[key.strip().lower().replace(" ", "_")] = value.strip()
        if meta or mz:
            yield Spectrum(np.array(mz), np.array(inten), meta)
