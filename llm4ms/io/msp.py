"""MSP reader (NIST, MassBank, RIKEN/MS-DIAL, GOLM dialects) and writer.

A record is ``key: value`` lines followed by peak lines. Where a record ends:

- at a blank line, or at a second ``Name:`` line (files without blank lines between records);
- when the record has a ``Num Peaks`` line (any spelling) and that many peaks were read, at the next
  ``key: value`` line (which starts the next record, e.g. ``DB#:`` before ``Name:``).

``Num Peaks`` is checked when present but not required: without it, the peaks run until a blank line,
the next ``Name:`` or the end of the file. A ``key: value`` line in the middle of the peaks of a record
without (or short of) its ``Num Peaks`` is an error for that record, never a silent cut. ``Num Peaks``
must be a whole number, and two different ``Num Peaks`` lines in one record are an error. A record with
no peaks is an error unless it says ``Num Peaks: 0``: then an empty spectrum is yielded with a warning
(it cannot be searched). Peak values and metadata then pass `llm4ms.io.validate.finish_record`.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, PeakError, parse_peak_lines
from llm4ms.io.keys import export_key
from llm4ms.io.validate import RawMeta, ReadWarning, finish_record, parse_count
from llm4ms.spectrum import Spectrum

_PEAK_START = frozenset("0123456789.+-")
_NUM_PEAKS = "numpeaks"


@functools.lru_cache(maxsize=4096)
def _squash(key: str) -> str:
    return key.lower().replace(" ", "").replace("_", "")


class _Record:
    """Lines of one record, collected until the record ends."""

    __slots__ = ("number", "line", "raw", "peaks", "peak_line", "num_peaks", "num_line", "has_name", "error")

    def __init__(self, number: int, line: int) -> None:
        self.number = number
        self.line = line
        self.raw = RawMeta()
        self.peaks: list[str] = []
        self.peak_line = 0
        self.num_peaks: Optional[int] = None
        self.num_line = 0
        self.has_name = False
        self.error: Optional[tuple[str, int]] = None

    def fail(self, message: str, line: int) -> None:
        if self.error is None:
            self.error = (message, line)

    def complete(self) -> bool:
        """Whether a Num Peaks count was given and that many peak values were read (cheap estimate)."""
        return self.num_peaks is not None and _pair_count(self.peaks) >= self.num_peaks

    def finish(self, path: str, cut_line: int = 0) -> Iterator[Item]:
        """Yield the record's warnings and spectrum (or its error); `cut_line`: the file's last line, if it
        has no newline."""
        def fail(message: str, line: int) -> SpectrumFormatError:
            return SpectrumFormatError(message, path, self.number, line)

        if self.error is not None:
            yield fail(*self.error)
            return
        try:
            mz, intensities = parse_peak_lines(self.peaks)
        except PeakError as err:
            yield fail(str(err), self.peak_line + err.offset)
            return
        if self.num_peaks is not None and self.num_peaks != mz.size:
            yield fail(f"Num Peaks says {self.num_peaks} but {mz.size} peaks were found", self.num_line)
            return
        if mz.size == 0 and self.num_peaks != 0:
            yield fail("no peaks (missing peaks section)", self.line)
            return
        if cut_line and self.peaks and self.num_peaks is None:
            yield ReadWarning("the file ends without a newline after this record's peaks and the record has "
                              "no Num Peaks: its last peak may be cut", path, self.number, cut_line,
                              kind="no_final_newline")
        yield from finish_record(mz, intensities, self.raw, path, self.number, self.line,
                                 peak_line=self.peak_line or self.num_line or self.line, checked=True)


def _pair_count(lines: list[str]) -> int:
    """Number of (m/z, intensity) pairs in peak lines, counted like `parse_peak_lines` for plain lines."""
    if len(lines) == 1 or any('"' in line for line in lines):
        try:
            return parse_peak_lines(lines)[0].size
        except PeakError:
            return 0
    total = 0
    for line in lines:
        tokens = line.replace(";", " ").replace(":", " ").replace(",", " ").split()
        total += len(tokens) // 2
    return total


def iter_msp(handle: Iterable[str], path: str) -> Iterator[Item]:
    """Yield a `Spectrum` (or a `SpectrumFormatError`, or a `ReadWarning`) per record of MSP text lines."""
    record: Optional[_Record] = None
    count = lineno = 0
    for lineno, line in enumerate(handle, 1):
        text = line.strip()
        if not text:
            if record is not None:
                yield from record.finish(path)
                record = None
            continue
        if text[0] in _PEAK_START or text[0].isdigit():  # non-ASCII digits: a peak line, rejected by value
            if record is None:
                count += 1
                record = _Record(count, lineno)
            if not record.peaks:
                record.peak_line = lineno
            record.peaks.append(text)
            continue
        key, sep, value = text.partition(":")
        squashed = _squash(key)
        if record is not None:
            if squashed == "name" and record.has_name:
                yield from record.finish(path)  # a record without a blank line before the next one
                record = None
            elif record.peaks and record.error is None:  # a failed record runs to a blank line or Name:
                if record.complete():
                    yield from record.finish(path)  # counted peaks done: this line starts the next record
                    record = None
                elif record.num_peaks is None:
                    record.fail(f"{key.strip()[:40]!r} line inside the peak list of a record without Num Peaks "
                                "(such records end only at a blank line or the next Name:)", lineno)
                else:
                    record.fail(f"{key.strip()[:40]!r} line inside the peak list: Num Peaks says "
                                f"{record.num_peaks} but the peaks stop after {_pair_count(record.peaks)}",
                                lineno)
        if record is None:
            count += 1
            record = _Record(count, lineno)
        if not sep:
            record.fail(f"line is neither 'key: value' nor a peak: {text[:60]!r}", lineno)
            continue
        value = value.strip()
        if squashed == _NUM_PEAKS:
            number = parse_count(value)
            if number is None:
                record.fail(f"Num Peaks is not a whole number (0 to 1e9): {value[:40]!r}", lineno)
            elif record.num_peaks is not None and number != record.num_peaks:
                record.fail(f"conflicting Num Peaks lines: {record.num_peaks} (line {record.num_line}) and "
                            f"{number}", lineno)
            else:
                record.num_peaks = number
                record.num_line = lineno
            continue
        if squashed == "name":
            record.has_name = True
        record.raw.add(key.strip(), value, lineno)
    if record is not None:
        yield from record.finish(path, cut_line=lineno if getattr(handle, "cut", False) else 0)


# ---- writer -------------------------------------------------------------------------------------
def format_number(value: float) -> str:
    """Shortest text that reads back to the same float; integral values without decimals."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _format_value(key: str, value: Any) -> str:
    if key == "ms_level" and isinstance(value, int):
        return f"MS{value}"
    if isinstance(value, float):
        return format_number(value)
    return " ".join(str(value).split())  # one line, whatever the value held


def msp_record(spectrum: Spectrum) -> str:
    """One NIST-style MSP record (ends with a blank line)."""
    lines = []
    meta = spectrum.metadata
    keys = sorted(meta, key=lambda k: (k != "name", k != "id"))  # Name first, then DB#, stable
    for key in keys:
        value = meta[key]
        if value is None or value == "" or _squash(key) == _NUM_PEAKS:
            continue  # a stray num_peaks key would be read back as the peak count
        lines.append(f"{export_key(key, 'nist')}: {_format_value(key, value)}")
    lines.append(f"Num Peaks: {spectrum.n_peaks}")
    lines.extend(peak_lines(spectrum.mz, spectrum.intensities))
    return "\n".join(lines) + "\n\n"


def peak_lines(mz: np.ndarray, intensities: np.ndarray) -> list[str]:
    """``mz intensity`` lines; integer text when every m/z (or intensity) is integral."""
    mz_text = _column(mz)
    int_text = _column(intensities)
    return [f"{m} {i}" for m, i in zip(mz_text, int_text)]


def _column(values: np.ndarray) -> list[str]:
    if values.size and np.all(np.mod(values, 1) == 0) and np.abs(values).max() < 1e15:
        return [str(v) for v in values.astype(np.int64).tolist()]
    return [format_number(v) for v in values.tolist()]


def write_msp(spectra: Iterable[Spectrum], path: str | os.PathLike) -> int:
    """Write spectra as NIST-style MSP, atomically (``.gz`` paths are compressed). Returns the count."""
    from llm4ms.io.writers import write_records

    return write_records(spectra, path, msp_record)
