"""JCAMP-DX mass spectra: ``##KEY=value`` labelled data records, one block per spectrum.

Supported data: ``##PEAK TABLE=(XY..XY)`` (also ``(XYW..XYW)``) with ``x,y`` pairs separated by
spaces or semicolons, several per line, and ``##XYDATA=(X++(Y..Y))`` in plain numbers (AFFN) only;
compressed ASDF forms (SQZ/DIF/DUP characters) are reported as an error rather than guessed.
Blocks end at ``##END=``; several blocks per file are fine, and the outer block of a compound
(LINK) file, which holds no data, is not a spectrum.
"""
from __future__ import annotations

import re
from typing import IO, Any, Iterator, Optional

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, add_raw, make_spectrum

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_LABEL = re.compile(r"^##\s*([^=]*)=(.*)$")
_KEY_MAP = {"TITLE": "name", "CASREGISTRYNO": "cas", "MOLFORM": "formula", "MW": "mol_weight",
            "CASNAME": "cas_name"}
_SKIP = {"JCAMPDX", "XUNITS", "YUNITS", "XFACTOR", "YFACTOR", "FIRSTX", "LASTX", "NPOINTS", "FIRSTY",
         "MAXX", "MINX", "MAXY", "MINY", "BLOCKS", "BLOCKID", "DELTAX", "RESOLUTION"}


def _label(key: str) -> str:
    return re.sub(r"[\s\-/_]", "", key).upper()


class _Block:
    __slots__ = ("number", "line", "raw", "params", "kind", "data", "data_line", "error", "is_link")

    def __init__(self, number: int, line: int) -> None:
        self.number = number
        self.line = line
        self.raw: dict[str, Any] = {}
        self.params: dict[str, str] = {}
        self.kind: Optional[str] = None  # "peaks", "peaks3" or "xydata"
        self.data: list[tuple[int, str]] = []
        self.data_line = 0
        self.error: Optional[tuple[str, int]] = None
        self.is_link = False

    def _param(self, name: str, default: float) -> float:
        try:
            return float(self.params[name])
        except (KeyError, ValueError):
            return default

    def finish(self, path: str) -> Item:
        def fail(message: str, line: int) -> SpectrumFormatError:
            return SpectrumFormatError(message, path, self.number, line)

        if self.error is not None:
            return fail(*self.error)
        if self.kind is None:
            return fail("no ##PEAK TABLE= or ##XYDATA= in this block", self.line)
        numbers: list[list[float]] = []
        for lineno, text in self.data:
            residue = _NUMBER.sub(" ", text).replace(",", " ").replace(";", " ").strip()
            if residue:
                if self.kind == "xydata":
                    return fail("compressed (ASDF) XYDATA is not supported; export the spectrum as "
                                "AFFN or as a ##PEAK TABLE", lineno)
                return fail(f"non-numeric peak value {residue.split()[0]!r}", lineno)
            numbers.append([float(v) for v in _NUMBER.findall(text)])
        xfactor, yfactor = self._param("XFACTOR", 1.0), self._param("YFACTOR", 1.0)
        if self.kind == "xydata":
            mz, intensities = self._xydata(numbers, fail)
        else:
            width = 3 if self.kind == "peaks3" else 2
            flat = [v for row in numbers for v in row]
            if len(flat) % width:
                return fail(f"peak table values do not form groups of {width}", self.data_line)
            table = np.array(flat, dtype=np.float64).reshape(-1, width)
            mz, intensities = table[:, 0] * xfactor, table[:, 1] * yfactor
        if isinstance(mz, SpectrumFormatError):
            return mz
        if mz.size == 0:
            return fail("no peaks", self.data_line or self.line)
        if not (np.isfinite(mz).all() and np.isfinite(intensities).all()):
            return fail("peak value is NaN or infinite", self.data_line)
        if mz.min() < 0:
            return fail(f"negative m/z {mz.min():g}", self.data_line)
        return make_spectrum(mz, intensities, self.raw)

    def _xydata(self, numbers: list[list[float]], fail):
        """(X++(Y..Y)): each line is an X then Ys at X, X+dx, ...; dx from FIRSTX/LASTX/NPOINTS."""
        xfactor, yfactor = self._param("XFACTOR", 1.0), self._param("YFACTOR", 1.0)
        npoints = self._param("NPOINTS", 0.0)
        first, last = self._param("FIRSTX", np.nan), self._param("LASTX", np.nan)
        if npoints < 2 or not (np.isfinite(first) and np.isfinite(last)):
            return fail("XYDATA needs ##FIRSTX, ##LASTX and ##NPOINTS", self.data_line), None
        dx = (last - first) / (npoints - 1)
        xs: list[float] = []
        ys: list[float] = []
        for row in numbers:
            if len(row) < 2:
                continue
            x0 = row[0] * xfactor
            for k, y in enumerate(row[1:]):
                xs.append(x0 + k * dx)
                ys.append(y * yfactor)
        mz, intensities = np.array(xs), np.array(ys)
        keep = intensities != 0  # a profile's zero points are not peaks
        return mz[keep], intensities[keep]


def iter_jcamp(handle: IO[str], path: str) -> Iterator[Item]:
    """Yield a `Spectrum` (or a `SpectrumFormatError`) per data block of a JCAMP-DX file.

    Record numbers count ``##TITLE=`` lines (an outer LINK block takes a number too). A block whose
    ``##END=`` is missing ends at the next ``##TITLE=`` or at the end of the file.
    """
    stack: list[_Block] = []
    count = 0
    for lineno, line in enumerate(handle, 1):
        text = line.split("$$", 1)[0].strip()  # $$ starts a comment
        if not text:
            continue
        match = _LABEL.match(text)
        block = stack[-1] if stack else None
        if match is None:
            if block is not None and block.kind is not None:
                block.data.append((lineno, text))
            elif block is not None and block.error is None:
                block.error = (f"line outside any data table: {text[:60]!r}", lineno)
            continue
        label, value = _label(match.group(1)), match.group(2).strip()
        if label == "TITLE":
            if block is not None and not block.is_link:
                yield stack.pop().finish(path)
            count += 1
            stack.append(_Block(count, lineno))
            add_raw(stack[-1].raw, "name", value)
            continue
        if block is None:
            continue  # labels before any ##TITLE= belong to no spectrum
        if label == "END":
            stack.pop()
            if not (block.is_link and block.kind is None):
                yield block.finish(path)
            continue
        if label in ("PEAKTABLE", "XYDATA", "XYPOINTS"):
            form = value.replace(" ", "").upper()
            if form.startswith("(XYW..XYW)"):
                block.kind = "peaks3"
            elif form.startswith("(XY..XY)"):
                block.kind = "peaks"
            elif form.startswith("(X++(Y..Y))"):
                block.kind = "xydata"
            elif block.error is None:
                block.error = (f"unsupported data form {value!r}", lineno)
            block.data_line = lineno + 1
            continue
        if label == "BLOCKS" or (label == "DATATYPE" and value.upper() == "LINK"):
            block.is_link = True
        if label in _SKIP:
            block.params[label] = value
            continue
        add_raw(block.raw, _KEY_MAP.get(label, match.group(1).strip().lstrip("$.").lower()), value)
    while stack:
        block = stack.pop()
        if not (block.is_link and block.kind is None):
            yield block.finish(path)
