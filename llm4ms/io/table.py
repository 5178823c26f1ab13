"""CSV/TSV/TXT peak tables.

Two layouts:
- a peak list (FastEI style): one spectrum per file, two columns m/z and intensity, comma, tab,
  semicolon or whitespace separated, with or without a header row (a first row that is not two
  numbers is a header). Name and id are the file stem. Intensities are kept as given (0-1, 0-100,
  0-999): normalisation happens downstream.
- a long table: a header with an id (or name) column plus m/z and intensity columns; rows of one
  spectrum are consecutive. Other columns (smiles, inchikey, ...) become metadata from the first row.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any, Iterator, Optional

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, make_spectrum

_MZ_NAMES = {"mz", "m/z", "mass", "masstocharge", "mzvalue", "x"}
_INTENSITY_NAMES = {"intensity", "intensities", "int", "abundance", "relativeintensity", "relint",
                    "relabundance", "y", "i"}
_ID_NAMES = {"id", "spectrumid", "spectrum", "name", "compound", "compoundname", "title", "db#",
             "accession"}


def _squash(name: str) -> str:
    return name.strip().strip('"').lower().replace(" ", "").replace("_", "").replace("-", "")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def file_stem(path: str) -> str:
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return Path(name).stem


def _rows(handle: IO[str], where: list[int]) -> Iterator[list[str]]:
    """Split non-empty, non-comment lines into cells; `where[0]` holds the current line number."""
    delimiter: Optional[str] = None

    def lines() -> Iterator[str]:
        for lineno, line in enumerate(handle, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                where[0] = lineno
                yield line

    source = lines()
    for line in source:
        if "\t" in line:
            delimiter = "\t"
        elif "," in line:
            delimiter = ","
        elif ";" in line:
            delimiter = ";"
        if delimiter is None:
            yield line.split()
            for rest in source:
                yield rest.split()
        else:
            reader = csv.reader(_chain(line, source), delimiter=delimiter)
            for cells in reader:
                yield [cell.strip() for cell in cells]
        return


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def iter_table(handle: IO[str], path: str) -> Iterator[Item]:
    """Yield the spectrum (or spectra, for a long table) of a peak table file."""
    where = [0]
    rows = _rows(handle, where)
    first = next(rows, None)
    if first is None:
        return
    if len(first) >= 2 and _is_number(first[0]) and _is_number(first[1]):
        yield _peak_list(_chain_rows(first, rows), where, path, 0, 1, first_line=where[0])
        return
    header = [_squash(cell) for cell in first]
    mz_col = _find(header, _MZ_NAMES)
    int_col = _find(header, _INTENSITY_NAMES)
    id_col = _find(header, _ID_NAMES)
    if mz_col is None or int_col is None:
        if len(header) == 2:
            mz_col, int_col = 0, 1
        else:
            raise SpectrumFormatError(f"header {first!r} has no m/z and intensity columns", path, None,
                                      where[0])
    if id_col is None:
        yield _peak_list(rows, where, path, mz_col, int_col, first_line=where[0] + 1)
    else:
        yield from _long_table(rows, where, path, [c.strip('"') for c in first], mz_col, int_col, id_col)


def _chain_rows(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _find(header: list[str], names: set[str]) -> Optional[int]:
    for index, name in enumerate(header):
        if name in names:
            return index
    return None


def _peak_value(cells: list[str], mz_col: int, int_col: int) -> tuple[float, float]:
    if len(cells) <= max(mz_col, int_col):
        raise ValueError(f"expected m/z and intensity, got {cells!r}")
    try:
        mz, intensity = float(cells[mz_col]), float(cells[int_col])
    except ValueError:
        raise ValueError(f"non-numeric peak value in {cells!r}") from None
    if not (np.isfinite(mz) and np.isfinite(intensity)):
        raise ValueError(f"peak value is NaN or infinite in {cells!r}")
    if mz < 0:
        raise ValueError(f"negative m/z {mz:g}")
    return mz, intensity


def _peak_list(rows: Iterator[list[str]], where: list[int], path: str, mz_col: int, int_col: int,
               first_line: int) -> Item:
    mz: list[float] = []
    intensities: list[float] = []
    for cells in rows:
        try:
            m, i = _peak_value(cells, mz_col, int_col)
        except ValueError as err:
            return SpectrumFormatError(str(err), path, 1, where[0])
        mz.append(m)
        intensities.append(i)
    if not mz:
        return SpectrumFormatError("no peaks", path, 1, first_line)
    stem = file_stem(path)
    return make_spectrum(np.array(mz), np.array(intensities), {"name": stem, "id": stem})


def _long_table(rows: Iterator[list[str]], where: list[int], path: str, header: list[str],
                mz_col: int, int_col: int, id_col: int) -> Iterator[Item]:
    seen: set[str] = set()
    current: Optional[str] = None
    meta: dict[str, Any] = {}
    mz: list[float] = []
    intensities: list[float] = []
    error: Optional[SpectrumFormatError] = None
    count = 0
    extra = [i for i in range(len(header)) if i not in (mz_col, int_col)]

    def finish() -> Item:
        if error is not None:
            return error
        spectrum = make_spectrum(np.array(mz), np.array(intensities), meta)
        spectrum.metadata.setdefault("id", current)
        if spectrum.get("name") is None:
            spectrum.metadata["name"] = current
        return spectrum

    for cells in rows:
        key = cells[id_col] if id_col < len(cells) else ""
        if key != current:
            if current is not None:
                yield finish()
            count += 1
            current, mz, intensities, error = key, [], [], None
            meta = {header[i]: cells[i] for i in extra if i < len(cells) and cells[i] != ""}
            if not key:
                error = SpectrumFormatError("empty id", path, count, where[0])
            elif key in seen:
                error = SpectrumFormatError(f"rows of id {key!r} are not consecutive", path, count,
                                            where[0])
            seen.add(key)
        if error is not None:
            continue
        try:
            m, i = _peak_value(cells, mz_col, int_col)
        except ValueError as err:
            error = SpectrumFormatError(str(err), path, count, where[0])
            continue
        mz.append(m)
        intensities.append(i)
    if current is not None:
        yield finish()
