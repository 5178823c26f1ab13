"""MSP reader (NIST, MassBank, RIKEN/MS-DIAL, GOLM dialects) and writer.

A record is ``key: value`` lines followed by peak lines. Records end at a blank line, or — for files
without blank lines — where a metadata line follows peak lines or a second ``Name:`` appears.
``Num Peaks`` (any spelling) is checked when present but not required. A record with no peaks is an
error unless it says ``Num Peaks: 0``: then an empty spectrum is yielded and callers decide.
"""
from __future__ import annotations

import functools
import os
from typing import IO, Any, Iterable, Iterator, Optional

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, PeakError, add_raw, make_spectrum, parse_peak_lines
from llm4ms.io.keys import export_key
from llm4ms.spectrum import Spectrum

_PEAK_START = frozenset("0123456789.+-")
_NUM_PEAKS = "numpeaks"


@functools.lru_cache(maxsize=4096)
def _squash(key: str) -> str:
    return key.lower().replace(" ", "").replace("_", "")


class _Record:
    """Lines of one record, collected until the record ends."""

    __slots__ = ("number", "line", "raw", "peaks", "peak_line", "num_peaks", "num_line", "has_name",
                 "error")

    def __init__(self, number: int, line: int) -> None:
        self.number = number
        self.line = line
        self.raw: dict[str, Any] = {}
        self.peaks: list[str] = []
        self.peak_line = 0
        self.num_peaks: Optional[int] = None
        self.num_line = 0
        self.has_name = False
        self.error: Optional[tuple[str, int]] = None

    def finish(self, path: str) -> Item:
        def fail(message: str, line: int) -> SpectrumFormatError:
            return SpectrumFormatError(message, path, self.number, line)

        if self.error is not None:
            return fail(*self.error)
        try:
            mz, intensities = parse_peak_lines(self.peaks)
        except PeakError as err:
            return fail(str(err), self.peak_line + err.offset)
        if self.num_peaks is not None and self.num_peaks != mz.size:
            return fail(f"Num Peaks says {self.num_peaks} but {mz.size} peaks were found",
                        self.num_line)
        if mz.size == 0 and self.num_peaks != 0:
            return fail("no peaks (missing peaks section)", self.line)
        return make_spectrum(mz, intensities, self.raw)


def iter_msp(handle: IO[str], path: str) -> Iterator[Item]:
    """Yield a `Spectrum` (or a `SpectrumFormatError`) per record of an open MSP text stream."""
    record: Optional[_Record] = None
    count = 0
    for lineno, line in enumerate(handle, 1):
        text = line.strip()
        if not text:
            if record is not None:
                yield record.finish(path)
                record = None
            continue
        if text[0] in _PEAK_START:
            if record is None:
                count += 1
                record = _Record(count, lineno)
            if not record.peaks:
                record.peak_line = lineno
            record.peaks.append(text)
            continue
        key, sep, value = text.partition(":")
        squashed = _squash(key)
        if record is not None and (record.peaks or (squashed == "name" and record.has_name)):
            yield record.finish(path)  # a record without a blank line before the next one
            record = None
        if record is None:
            count += 1
            record = _Record(count, lineno)
        if not sep:
            if record.error is None:
                record.error = (f"line is neither 'key: value' nor a peak: {text[:60]!r}", lineno)
            continue
        value = value.strip()
        if squashed == _NUM_PEAKS:
            try:
                record.num_peaks = int(float(value))
            except ValueError:
                if record.error is None:
                    record.error = (f"Num Peaks is not a number: {value!r}", lineno)
            record.num_line = lineno
            continue
        if squashed == "name":
            record.has_name = True
        add_raw(record.raw, key.strip(), value)
    if record is not None:
        yield record.finish(path)


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
