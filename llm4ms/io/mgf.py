"""MGF reader and writer: ``BEGIN IONS`` / ``END IONS`` blocks of ``KEY=VALUE`` headers and peak lines.

``KEY=VALUE`` lines before the first block are file-wide defaults (a record's own value wins).
``PEPMASS`` keeps its first number as the precursor m/z (a second number, the precursor intensity,
goes to ``precursor_intensity``); ``CHARGE`` such as ``2+`` becomes the integer 2. When a block has
no id, its TITLE is used as the id too (the architecture's rule for readers).
"""
from __future__ import annotations

import os
import re
from typing import IO, Any, Iterable, Iterator, Optional

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, PeakError, add_raw, make_spectrum, parse_peak_lines
from llm4ms.io.keys import export_key
from llm4ms.io.msp import _format_value, peak_lines
from llm4ms.spectrum import Spectrum

_COMMENT_START = ("#", ";", "!", "/")
_CHARGE = re.compile(r"^\s*([+-]?)(\d+)([+-]?)")


def _charge(value: str) -> Any:
    first = value.split(" and ")[0].split(",")[0]
    match = _CHARGE.match(first)
    if not match:
        return value
    sign = -1 if "-" in (match.group(1) + match.group(3)) else 1
    return sign * int(match.group(2))


def _finish(raw: dict[str, Any], defaults: dict[str, Any], peaks: list[str], peak_line: int,
            path: str, number: int, line: int) -> Item:
    merged = {**defaults, **raw}
    try:
        mz, intensities = parse_peak_lines(peaks)
    except PeakError as err:
        return SpectrumFormatError(str(err), path, number, peak_line + err.offset)
    if mz.size == 0:
        return SpectrumFormatError("no peaks between BEGIN IONS and END IONS", path, number, line)
    pepmass = str(merged.get("PEPMASS", "")).split()
    if len(pepmass) > 1:
        try:
            merged["precursor_intensity"] = float(pepmass[1])
        except ValueError:
            merged["precursor_intensity"] = pepmass[1]
    if "CHARGE" in merged:
        merged["CHARGE"] = _charge(str(merged["CHARGE"]))
    spectrum = make_spectrum(mz, intensities, merged)
    if spectrum.get("id") is None and spectrum.get("name") is not None:
        spectrum.metadata["id"] = spectrum.metadata["name"]
    return spectrum


def iter_mgf(handle: IO[str], path: str) -> Iterator[Item]:
    """Yield a `Spectrum` (or a `SpectrumFormatError`) per ``BEGIN IONS`` block."""
    defaults: dict[str, Any] = {}
    raw: Optional[dict[str, Any]] = None
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
            raw, peaks, start, error = {}, [], lineno, None
            continue
        if upper == "END IONS":
            if raw is None:
                count += 1
                yield SpectrumFormatError("END IONS without BEGIN IONS", path, count, lineno)
            elif error is not None:
                yield SpectrumFormatError(error[0], path, count, error[1])
            else:
                yield _finish(raw, defaults, peaks, peak_line, path, count, start)
            raw = None
            continue
        if raw is None:
            key, sep, value = text.partition("=")
            if not sep:
                count += 1
                yield SpectrumFormatError(f"data outside BEGIN IONS/END IONS: {text[:60]!r}",
                                          path, count, lineno)
                continue
            add_raw(defaults, key.strip().upper(), value.strip())
            continue
        if text[0].isdigit() or text[0] in ".+-":
            if not peaks:
                peak_line = lineno
            peaks.append(text)
            continue
        key, sep, value = text.partition("=")
        if not sep and error is None:
            error = (f"line is neither KEY=VALUE nor a peak: {text[:60]!r}", lineno)
        elif sep:
            add_raw(raw, key.strip().upper(), value.strip())
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
