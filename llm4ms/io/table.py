"""CSV/TSV/TXT peak tables.

Two layouts:
- a peak list (FastEI style): one spectrum per file, two columns m/z and intensity, comma, tab,
  semicolon or whitespace separated, with or without a header row (a first row that is not two
  numbers is a header). Name and id are the file stem (or the reader's `default_name`). Intensities
  are kept as given (0-1, 0-100, 0-999): normalisation happens downstream.
- a long table: a header with an id (or name) column plus m/z and intensity columns; rows of one
  spectrum are consecutive. Other columns (smiles, inchikey, ...) become metadata from the first row.

Numbers must be plain ASCII (`llm4ms.io.validate.parse_number`); a first row of values that only
``float()`` would take (``4_3``, non-ASCII digits) is an error, not a header. A CSV cell longer than
`MAX_CELL_CHARS` or broken quoting ends the read with an error naming the line. A table has no end
marker, so a file that does not end with a newline is read with a warning (its last row may be cut).
Peak values and metadata then pass `llm4ms.io.validate.finish_record`.
"""
from __future__ import annotations

import csv
from typing import Any, Iterable, Iterator, Optional

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item
from llm4ms.io.formats import spectrum_stem
from llm4ms.io.validate import (MAX_CELL_CHARS, RawMeta, ReadWarning, finish_record, looks_like_number,
                                number_problem, parse_number, peak_problem)

_MZ_NAMES = {"mz", "m/z", "mass", "masstocharge", "mzvalue", "x"}
_INTENSITY_NAMES = {"intensity", "intensities", "int", "abundance", "relativeintensity", "relint",
                    "relabundance", "y", "i"}
_ID_NAMES = {"id", "spectrumid", "spectrum", "name", "compound", "compoundname", "title", "db#",
             "accession"}


def _squash(name: str) -> str:
    return name.strip().strip('"').lower().replace(" ", "").replace("_", "").replace("-", "")


def _is_number(text: str) -> bool:
    return parse_number(text) is not None


class _Lines:
    """Non-empty, non-comment lines; `line` is the number of the last one handed out."""

    def __init__(self, handle: Iterable[str]) -> None:
        self.handle = handle
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        for lineno, line in enumerate(self.handle, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                self.line = lineno
                yield line


def _rows(lines: _Lines, path: str) -> Iterator[list[str]]:
    """Split lines into cells (tab, comma, semicolon or whitespace, from the first line)."""
    source = iter(lines)
    for line in source:
        delimiter: Optional[str] = None
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
            return
        reader = csv.reader(_chain(line, source), delimiter=delimiter)
        try:
            for cells in reader:
                yield [cell.strip() for cell in cells]
        except csv.Error as err:
            if "field larger" in str(err):
                message = f"a cell is longer than {MAX_CELL_CHARS:,} characters: not a peak table?"
            else:
                message = f"broken CSV quoting ({err})"
            raise SpectrumFormatError(message, path, None, lines.line) from None
        return


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def iter_table(handle: Iterable[str], path: str, default_name: Optional[str] = None) -> Iterator[Item]:
    """Yield the spectrum (or spectra, for a long table) of a peak table file.

    A peak list's spectrum is named `default_name`, else after the stem of `path`.
    """
    lines = _Lines(handle)
    rows = _rows(lines, path)
    first = next(rows, None)
    if first is None:
        return
    if len(first) >= 2 and _is_number(first[0]) and _is_number(first[1]):
        yield from _peak_list(_chain_rows(first, rows), lines, path, 0, 1, first_line=lines.line,
                              name=default_name)
    else:
        odd = next((cell for cell in first if looks_like_number(cell)), None)
        if odd is not None:
            yield SpectrumFormatError(f"first row is neither a header nor numbers: {number_problem(odd, 'value')}",
                                      path, 1, lines.line)
            return
        header = [_squash(cell) for cell in first]
        mz_col = _find(header, _MZ_NAMES)
        int_col = _find(header, _INTENSITY_NAMES)
        id_col = _find(header, _ID_NAMES)
        if mz_col is None or int_col is None:
            if len(header) == 2:
                mz_col, int_col = 0, 1
            else:
                raise SpectrumFormatError(f"header {[c[:30] for c in first[:6]]!r} has no m/z and intensity columns",
                                          path, None, lines.line)
        if id_col is None:
            yield from _peak_list(rows, lines, path, mz_col, int_col, first_line=lines.line + 1,
                                  name=default_name)
        else:
            yield from _long_table(rows, lines, path, [c.strip('"') for c in first], mz_col, int_col, id_col)
    if getattr(handle, "cut", False):
        yield ReadWarning("the file does not end with a newline: its last row may be cut", path, None,
                          lines.line, kind="no_final_newline")


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
        raise ValueError(f"expected m/z and intensity, got {[c[:20] for c in cells[:4]]!r}")
    mz, intensity = parse_number(cells[mz_col]), parse_number(cells[int_col])
    if mz is None or intensity is None:
        bad = cells[mz_col] if mz is None else cells[int_col]
        raise ValueError(f"{number_problem(bad, 'peak value')} in {[c[:20] for c in cells[:4]]!r}")
    problem = peak_problem(mz, intensity)
    if problem is not None:
        raise ValueError(problem)
    return mz, intensity


def _peak_list(rows: Iterator[list[str]], lines: _Lines, path: str, mz_col: int, int_col: int,
               first_line: int, name: Optional[str] = None) -> Iterator[Item]:
    mz: list[float] = []
    intensities: list[float] = []
    for cells in rows:
        try:
            m, i = _peak_value(cells, mz_col, int_col)
        except ValueError as err:
            yield SpectrumFormatError(str(err), path, 1, lines.line)
            return
        mz.append(m)
        intensities.append(i)
    if not mz:
        yield SpectrumFormatError("no peaks", path, 1, first_line)
        return
    stem = name or spectrum_stem(path)
    yield from finish_record(mz, intensities, {"name": stem, "id": stem}, path, 1, first_line)


def _long_table(rows: Iterator[list[str]], lines: _Lines, path: str, header: list[str],
                mz_col: int, int_col: int, id_col: int) -> Iterator[Item]:
    seen: set[str] = set()
    current: Optional[str] = None
    meta: dict[str, Any] = {}
    mz: list[float] = []
    intensities: list[float] = []
    error: Optional[SpectrumFormatError] = None
    count = start = 0
    extra = [i for i in range(len(header)) if i not in (mz_col, int_col)]

    def finish() -> Iterator[Item]:
        if error is not None:
            yield error
            return
        raw = RawMeta()
        for key, value in meta.items():
            raw.add(key, value, start)
        for item in finish_record(mz, intensities, raw, path, count, start):
            spectrum = item.spectrum if isinstance(item, ReadWarning) else item
            if not isinstance(spectrum, SpectrumFormatError) and spectrum is not None:
                spectrum.metadata.setdefault("id", current)
                if spectrum.get("name") is None:
                    spectrum.metadata["name"] = current
            yield item

    for cells in rows:
        key = cells[id_col] if id_col < len(cells) else ""
        if key != current:
            if current is not None:
                yield from finish()
            count += 1
            start = lines.line
            current, mz, intensities, error = key, [], [], None
            meta = {header[i]: cells[i] for i in extra if i < len(cells) and cells[i] != ""}
            if not key:
                error = SpectrumFormatError("empty id", path, count, lines.line)
            elif key in seen:
                error = SpectrumFormatError(f"rows of id {key[:40]!r} are not consecutive", path, count,
                                            lines.line)
            seen.add(key)
        if error is not None:
            continue
        try:
            m, i = _peak_value(cells, mz_col, int_col)
        except ValueError as err:
            error = SpectrumFormatError(str(err), path, count, lines.line)
            continue
        mz.append(m)
        intensities.append(i)
    if current is not None:
        yield from finish()
