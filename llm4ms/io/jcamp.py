"""JCAMP-DX mass spectra: ``##KEY=value`` labelled data records, one block per spectrum.

Supported data: ``##PEAK TABLE=(XY..XY)`` (also ``(XYW..XYW)``) with ``x,y`` pairs separated by
spaces or semicolons, several per line, and ``##XYDATA=(X++(Y..Y))`` in plain numbers (AFFN) only;
compressed ASDF forms (SQZ/DIF/DUP characters) are reported as an error rather than guessed.
Blocks end at ``##END=``; several blocks per file are fine, and the outer block of a compound
(LINK) file, which holds no data, is not a spectrum. A block without its ``##END=`` (a cut file) is an
error, and so is a ``##NPOINTS=`` that does not match the number of points read, or a ``##XFACTOR=``,
``##YFACTOR=``, ``##FIRSTX=``, ``##LASTX=`` or ``##NPOINTS=`` that is not a number. Peak values and
metadata then pass `llm4ms.io.validate.finish_record`.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator, Optional

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item
from llm4ms.io.validate import (RawMeta, finish_record, first_bad_peak, looks_like_number, number_problem,
                                parse_count, parse_number, peak_problem)

_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_SPLIT = re.compile(r"[\s,;]+")
_LABEL = re.compile(r"^##\s*([^=]*)=(.*)$")
_KEY_MAP = {"TITLE": "name", "CASREGISTRYNO": "cas", "MOLFORM": "formula", "MW": "mol_weight",
            "CASNAME": "cas_name"}
_SKIP = {"JCAMPDX", "XUNITS", "YUNITS", "XFACTOR", "YFACTOR", "FIRSTX", "LASTX", "NPOINTS", "FIRSTY",
         "MAXX", "MINX", "MAXY", "MINY", "BLOCKS", "BLOCKID", "DELTAX", "RESOLUTION"}
_NUMERIC_PARAMS = ("XFACTOR", "YFACTOR", "FIRSTX", "LASTX")


class _Fail(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _label(key: str) -> str:
    return re.sub(r"[\s\-/_]", "", key).upper()


class _Block:
    __slots__ = ("number", "line", "raw", "params", "param_lines", "kind", "data", "data_line", "error",
                 "is_link")

    def __init__(self, number: int, line: int) -> None:
        self.number = number
        self.line = line
        self.raw = RawMeta()
        self.params: dict[str, str] = {}
        self.param_lines: dict[str, int] = {}
        self.kind: Optional[str] = None  # "peaks", "peaks3" or "xydata"
        self.data: list[tuple[int, str]] = []
        self.data_line = 0
        self.error: Optional[tuple[str, int]] = None
        self.is_link = False

    def _param(self, name: str, default: float) -> float:
        if name not in self.params:
            return default
        value = parse_number(self.params[name])
        if value is None or not np.isfinite(value):
            raise _Fail(f"##{name}= is not a finite number: {self.params[name][:40]!r}", self.param_lines[name])
        return value

    def finish(self, path: str, ended: bool = True, end_line: int = 0) -> Iterator[Item]:
        def fail(message: str, line: int) -> SpectrumFormatError:
            return SpectrumFormatError(message, path, self.number, line)

        if self.error is not None:
            yield fail(*self.error)
            return
        if not ended:
            yield fail("block has no ##END= (file cut short?)", end_line or self.line)
            return
        if self.kind is None:
            yield fail("no ##PEAK TABLE= or ##XYDATA= in this block", self.line)
            return
        try:
            mz, intensities = self._values(fail)
        except _Fail as err:
            yield fail(str(err), err.line)
            return
        if mz.size == 0:
            yield fail("no peaks", self.data_line or self.line)
            return
        yield from finish_record(mz, intensities, self.raw, path, self.number, self.line, peak_line=self.data_line,
                                 checked=True)

    def _values(self, fail) -> tuple[np.ndarray, np.ndarray]:
        numbers: list[list[float]] = []
        for lineno, text in self.data:
            residue = _NUMBER.sub(" ", text).replace(",", " ").replace(";", " ").strip()
            if residue:
                token = next((t for t in _SPLIT.split(text) if t and parse_number(t) is None), residue.split()[0])
                if self.kind == "xydata" and not looks_like_number(token):
                    raise _Fail("compressed (ASDF) XYDATA is not supported; export the spectrum as "
                                "AFFN or as a ##PEAK TABLE", lineno)
                raise _Fail(number_problem(token, "peak value"), lineno)
            numbers.append([float(v) for v in _NUMBER.findall(text)])
        for name in _NUMERIC_PARAMS:
            self._param(name, 0.0)
        xfactor, yfactor = self._param("XFACTOR", 1.0), self._param("YFACTOR", 1.0)
        npoints = self._npoints()
        if self.kind == "xydata":
            mz, intensities, total = self._xydata(numbers, npoints)
        else:
            width = 3 if self.kind == "peaks3" else 2
            flat = [v for row in numbers for v in row]
            if len(flat) % width:
                raise _Fail(f"peak table values do not form groups of {width}", self.data_line)
            table = np.array(flat, dtype=np.float64).reshape(-1, width)
            with np.errstate(over="ignore", invalid="ignore"):
                mz, intensities = table[:, 0] * xfactor, table[:, 1] * yfactor
            total = mz.size
        if npoints is not None and total != npoints:
            raise _Fail(f"##NPOINTS= says {npoints} but {total} points were read (file cut short?)",
                        self.param_lines["NPOINTS"])
        if first_bad_peak(mz, intensities) is not None:
            self._locate_bad(mz, intensities, numbers)
        return mz, intensities

    def _npoints(self) -> Optional[int]:
        if "NPOINTS" not in self.params:
            return None
        value = parse_count(self.params["NPOINTS"])
        if value is None:
            raise _Fail(f"##NPOINTS= is not a whole number (0 to 1e9): {self.params['NPOINTS'][:40]!r}",
                        self.param_lines["NPOINTS"])
        return value

    def _locate_bad(self, mz: np.ndarray, intensities: np.ndarray, numbers: list[list[float]]) -> None:
        """Name the data line of the first value `peak_problem` rejects."""
        for index, (m, i) in enumerate(zip(mz.tolist(), intensities.tolist())):
            problem = peak_problem(m, i)
            if problem is not None:
                line = self.data_line
                if self.kind != "xydata":  # which data line holds pair `index`
                    width, seen = (3 if self.kind == "peaks3" else 2), 0
                    for (lineno, _), row in zip(self.data, numbers):
                        seen += len(row)
                        if seen > index * width:
                            line = lineno
                            break
                raise _Fail(problem, line)

    def _xydata(self, numbers: list[list[float]], npoints: Optional[int]):
        """(X++(Y..Y)): each line is an X then Ys at X, X+dx, ...; dx from FIRSTX/LASTX/NPOINTS."""
        xfactor, yfactor = self._param("XFACTOR", 1.0), self._param("YFACTOR", 1.0)
        first, last = self._param("FIRSTX", np.nan), self._param("LASTX", np.nan)
        if npoints is None or npoints < 2 or not (np.isfinite(first) and np.isfinite(last)):
            raise _Fail("XYDATA needs ##FIRSTX, ##LASTX and ##NPOINTS", self.data_line)
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
        mz, intensities = np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)
        keep = intensities != 0  # a profile's zero points are not peaks
        return mz[keep], intensities[keep], len(ys)


def iter_jcamp(handle: Iterable[str], path: str) -> Iterator[Item]:
    """Yield a `Spectrum` (or a `SpectrumFormatError`, or a `ReadWarning`) per data block of a JCAMP-DX file.

    Record numbers count ``##TITLE=`` lines (an outer LINK block takes a number too). A block whose
    ``##END=`` is missing (before the next ``##TITLE=`` or the end of the file) is an error.
    """
    stack: list[_Block] = []
    count = 0
    lineno = 0
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
                yield from stack.pop().finish(path, ended=False, end_line=lineno)
            count += 1
            stack.append(_Block(count, lineno))
            stack[-1].raw.add("name", value, lineno)
            continue
        if block is None:
            continue  # labels before any ##TITLE= belong to no spectrum
        if label == "END":
            stack.pop()
            if not (block.is_link and block.kind is None):
                yield from block.finish(path)
            continue
        if label in ("PEAKTABLE", "XYDATA", "XYPOINTS"):
            form = value.replace(" ", "").upper()
            if block.kind is not None and block.error is None:
                block.error = (f"a second data table in one block (##{match.group(1).strip()}=)", lineno)
            if form.startswith("(XYW..XYW)"):
                block.kind = "peaks3"
            elif form.startswith("(XY..XY)"):
                block.kind = "peaks"
            elif form.startswith("(X++(Y..Y))"):
                block.kind = "xydata"
            elif block.error is None:
                block.error = (f"unsupported data form {value[:40]!r}", lineno)
            block.data_line = lineno + 1
            continue
        if label == "BLOCKS" or (label == "DATATYPE" and value.upper() == "LINK"):
            block.is_link = True
        if label in _SKIP:
            if label in block.params and block.params[label] != value and block.error is None:
                block.error = (f"conflicting ##{label}= lines: {block.params[label][:20]!r} and {value[:20]!r}",
                               lineno)
            block.params[label] = value
            block.param_lines.setdefault(label, lineno)
            continue
        block.raw.add(_KEY_MAP.get(label, match.group(1).strip().lstrip("$.").lower()), value, lineno)
    while stack:
        block = stack.pop()
        if not (block.is_link and block.kind is None):
            yield from block.finish(path, ended=False, end_line=lineno)
