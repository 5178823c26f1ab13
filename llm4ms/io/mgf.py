"""MGF reader and writer: ``BEGIN IONS`` / ``END IONS`` blocks of ``KEY=VALUE`` headers and peak lines.

``KEY=VALUE`` lines before the first block are file-wide defaults (a record's own value wins).
``PEPMASS`` keeps its first number as the precursor m/z (a second number, the precursor intensity,
goes to ``precursor_intensity``); a PEPMASS that is not a number is an error. ``CHARGE`` such as
``2+`` becomes the integer 2. When a block has no id, its TITLE is used as the id too (the
architecture's rule for readers). A block without ``END IONS`` (a cut file) is an error. Peak values
and metadata then pass `llm4ms.io.validate.finish_record`.
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterable, Iterator, Optional

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, PeakError, parse_peak_lines
from llm4ms.io.keys import export_key
from llm4ms.io.msp import _format_value, peak_lines
from llm4ms.io.validate import RawMeta, ReadWarning, finish_record, parse_number
from llm4ms.spectrum import Spectrum

_COMMENT_START = ("#", ";", "!", "/")
_CHARGE = re.compile(r"^\s*([+-]?)([0-9]{1,6})([+-]?)(?![0-9])")
_PEAK_START = frozenset("0123456789.+-")


def _charge(value: str) -> Any:
    first = value.split(" and ")[0].split(",")[0]
    match = _CHARGE.match(first)
    if not match:
        return value
    sign = -1 if "-" in (match.group(1) + match.group(3)) else 1
    return sign * int(match.group(2))


def _finish(raw: RawMeta, defaults: RawMeta, peaks: list[str], peak_line: int,
            path: str, number: int, line: int) -> Iterator[Item]:
    try:
        mz, intensities = parse_peak_lines(peaks)
    except PeakError as err:
        yield SpectrumFormatError(str(err), path, number, peak_line + err.offset)
        return
    if mz.size == 0:
        yield SpectrumFormatError("no peaks between BEGIN IONS and END IONS", path, number, line)
        return
    pepmass = str(raw.get("PEPMASS", defaults.get("PEPMASS", ""))).split()
    if len(pepmass) > 1:
        intensity = parse_number(pepmass[1])
        raw.set("precursor_intensity", intensity if intensity is not None else pepmass[1])
    charge = raw.get("CHARGE", defaults.get("CHARGE"))
    if charge is not None:
        raw.set("CHARGE", _charge(str(charge)))
    for item in finish_record(mz, intensities, raw, path, number, line, defaults=defaults, peak_line=peak_line,
                                 checked=True):
        spectrum = item.spectrum if isinstance(item, ReadWarning) else item
        if isinstance(spectrum, Spectrum) and spectrum.get("id") is None and spectrum.get("name") is not None:
            spectrum.metadata["id"] = spectrum.metadata["name"]
        yield item


def iter_mgf(handle: Iterable[str], path: str) -> Iterator[Item]:
    """Yield a `Spectrum` (or a `SpectrumFormatError`, or a `ReadWarning`) per ``BEGIN IONS`` block."""
    defaults = RawMeta()
    raw: Optional[RawMeta] = None
    peaks: list[str] = []
    peak_line = start = 0
    count = 0
    error: Optional[tuple[str, int]] = None
    for lineno, line in enumerate(handle, 1):
        text = line.strip()
        if not text or text.startswith(_COMMENT_START):
            continue
        upper = text.upper()
        if upper == "BEGIN IONS":
            if raw is not None:
                yield SpectrumFormatError("BEGIN IONS inside an open block (missing END IONS)",
                                          path, count, lineno)
            count += 1
            raw, peaks, start, error = RawMeta(), [], lineno, None
            continue
        if upper == "END IONS":
            if raw is None:
                count += 1
                yield SpectrumFormatError("END IONS without BEGIN IONS", path, count, lineno)
            elif error is not None:
                yield SpectrumFormatError(error[0], path, count, error[1])
            else:
                yield from _finish(raw, defaults, peaks, peak_line, path, count, start)
            raw = None
            continue
        if raw is None:
            key, sep, value = text.partition("=")
            if not sep:
                count += 1
                yield SpectrumFormatError(f"data outside BEGIN IONS/END IONS: {text[:60]!r}",
                                          path, count, lineno)
                continue
            defaults.add(key.strip().upper(), value.strip(), lineno)
            continue
        if text[0] in _PEAK_START or text[0].isdigit():  # non-ASCII digits: a peak line, rejected by value
            if not peaks:
                peak_line = lineno
            peaks.append(text)
            continue
        key, sep, value = text.partition("=")
        if not sep and error is None:
            error = (f"line is neither KEY=VALUE nor a peak: {text[:60]!r}", lineno)
        elif sep:
            raw.add(key.strip().upper(), value.strip(), lineno)
    if raw is not None:
        yield SpectrumFormatError("file ends inside a block (missing END IONS)", path, count, start)


# ---- writer -------------------------------------------------------------------------------------
def mgf_record(spectrum: Spectrum) -> str:
    """One MGF block."""
    lines = ["BEGIN IONS"]
    for key, value in spectrum.metadata.items():
        if value is None or value == "":
            continue
        name = export_key(key, "mgf").upper()
        if key == "ms_level" and isinstance(value, int):
            text = str(value)
        else:
            text = _format_value(key, value)
        lines.append(f"{name}={text}")
    lines.extend(peak_lines(spectrum.mz, spectrum.intensities))
    lines.append("END IONS")
    return "\n".join(lines) + "\n\n"


def write_mgf(spectra: Iterable[Spectrum], path: str | os.PathLike) -> int:
    """Write spectra as MGF, atomically (``.gz`` paths are compressed). Returns the count."""
    from llm4ms.io.writers import write_records

    return write_records(spectra, path, mgf_record)
