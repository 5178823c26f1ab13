"""Minimal NIST-style MSP text for predicted spectra, and a small reader for the training data.

Used only until `llm4ms.io` offers `write_msp` / `read_spectra`; callers go through `write_spectra_msp`
and `iter_msp`, which prefer the shared I/O room when it exists.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO, Iterable, Iterator, Optional

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.spectrum import Spectrum

_FIELDS = (("Name", "name"), ("DB#", "id"), ("InChIKey", "inchikey"), ("SMILES", "smiles"),
           ("Formula", "formula"), ("ExactMass", "exact_mass"), ("Comments", "comment"))

# MSP keys of the training file -> canonical keys (only what the predictor needs).
_READ_KEYS = {"name": "name", "db#": "id", "inchikey": "inchikey", "smiles": "smiles",
              "formula": "formula", "exactmass": "exact_mass", "exact_mass": "exact_mass",
              "license": "license", "authors": "authors", "instrument_type": "instrument_type"}


def format_msp(spectrum: Spectrum) -> str:
    """One MSP block ending with a blank line."""
    lines = []
    for label, key in _FIELDS:
        value = spectrum.get(key)
        if value is not None:
            lines.append(f"{label}: {str(value).replace(chr(10), ' ')}")
    lines.append(f"Num Peaks: {spectrum.n_peaks}")
    for mz, inten in zip(spectrum.mz, spectrum.intensities):
        lines.append(f"{int(mz) if float(mz).is_integer() else mz} {inten:g}")
    return "\n".join(lines) + "\n\n"


def write_msp_stream(spectra: Iterable[Spectrum], handle: IO[str]) -> int:
    """Write blocks to an open text handle; returns how many were written."""
    n = 0
    for spectrum in spectra:
        handle.write(format_msp(spectrum))
        n += 1
    return n


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_msp_simple(path: str | Path) -> Iterator[Spectrum]:
    """Stream spectra from an MSP file (nominal or not); blank lines separate records."""
    path = Path(path)
    meta: dict = {}
    peaks: list[tuple[float, float]] = []
    record, start_line = 0, 1

    def flush() -> Optional[Spectrum]:
        if not meta and not peaks:
            return None
        arr = np.asarray(peaks, dtype=np.float64).reshape(-1, 2)
        return Spectrum(mz=arr[:, 0], intensities=arr[:, 1], metadata=dict(meta))

    with _open_text(path) as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                spectrum = flush()
                if spectrum is not None:
                    yield spectrum
                meta, peaks = {}, []
                continue
            if not meta and not peaks:
                record += 1
                start_line = lineno
            if ":" in line and not line[0].isdigit():
                key, _, value = line.partition(":")
                canon = _READ_KEYS.get(key.strip().lower())
                if canon:
                    meta[canon] = value.strip()
                continue
            parts = line.replace(";", " ").replace("\t", " ").split()
            try:
                for a, b in zip(parts[0::2], parts[1::2]):
                    peaks.append((float(a), float(b)))
            except ValueError:
                raise SpectrumFormatError(f"cannot read peak line {line!r} (record from line {start_line})",
                                          str(path), record, lineno) from None
        spectrum = flush()
        if spectrum is not None:
            yield spectrum


def iter_msp(path: str | Path) -> Iterator[Spectrum]:
    """Prefer the shared reader (`llm4ms.io.read_spectra`) when it exists, else the small one here."""
    try:
        from llm4ms.io import read_spectra  # type: ignore[attr-defined]
    except ImportError:
        return read_msp_simple(path)
    return read_spectra(path)


def write_spectra_msp(spectra: Iterable[Spectrum], path: str | Path) -> int:
    """Write an MSP file atomically, through `llm4ms.io.write_msp` when the I/O room provides it."""
    spectra = list(spectra)
    try:
        from llm4ms.io import write_msp  # type: ignore[attr-defined]
    except ImportError:
        from llm4ms.utils import atomic_open

        with atomic_open(path, "w", encoding="utf-8") as handle:
            return write_msp_stream(spectra, handle)
    write_msp(spectra, path)
    return len(spectra)
