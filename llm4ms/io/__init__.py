"""Reading and writing spectrum files: every reader streams `llm4ms.spectrum.Spectrum` values.

>>> report = ReadReport()
>>> for spectrum in read_spectra("library.msp.gz", skip_invalid=True, report=report):
...     ...
>>> report.read, report.skipped, report.errors[:3]

Formats come from the extension (after an optional ``.gz``) or from ``format=``. A bad record raises
`llm4ms.errors.SpectrumFormatError` naming the file, record and line; with ``skip_invalid=True`` it is
counted in the report instead and reading goes on at the next record. Nothing is dropped silently.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Callable, Iterator, Optional, Union

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, ReadReport, open_text
from llm4ms.io.jcamp import iter_jcamp
from llm4ms.io.keys import normalize_metadata
from llm4ms.io.mgf import write_mgf, iter_mgf
from llm4ms.io.msp import iter_msp, write_msp
from llm4ms.io.table import iter_table
from llm4ms.spectrum import Spectrum

__all__ = ["read_spectra", "ReadReport", "write_msp", "write_mgf", "normalize_metadata", "detect_format",
           "FORMATS"]

Reader = Callable[[IO[str], str], Iterator[Item]]

#: format name -> (reader, extensions)
FORMATS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    "msp": (iter_msp, (".msp",)),
    "mgf": (iter_mgf, (".mgf",)),
    "table": (iter_table, (".csv", ".tsv", ".txt")),
    "jcamp": (iter_jcamp, (".jdx", ".dx", ".jcamp")),
}
_ALIASES = {"csv": "table", "tsv": "table", "txt": "table", "jdx": "jcamp", "dx": "jcamp"}


def _supported() -> str:
    return ", ".join(f"{name} ({' '.join(ext)})" for name, (_, ext) in FORMATS.items())


def detect_format(path: Union[str, os.PathLike]) -> str:
    """Format name from the file extension (``.gz`` stripped first)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    for fmt, (_, extensions) in FORMATS.items():
        if suffix in extensions:
            return fmt
    raise SpectrumFormatError(f"unknown spectrum file extension {suffix or '(none)'!r}; supported: "
                              f"{_supported()} (optionally .gz), or pass format=", str(path))


def _format_name(format: str, path: str) -> str:
    name = _ALIASES.get(format.lower(), format.lower())
    if name not in FORMATS:
        raise SpectrumFormatError(f"unknown format {format!r}; supported: {', '.join(FORMATS)}", path)
    return name


def read_spectra(path: Union[str, os.PathLike], format: Optional[str] = None, skip_invalid: bool = False,
                 report: Optional[ReadReport] = None) -> Iterator[Spectrum]:
    """Stream the spectra of a file, one record at a time (constant memory).

    The format and the file's existence are checked at once; records are read as the iterator is
    consumed. `report` (if given) is filled while iterating. A file with no record at all is an error.
    """
    path_text = str(path)
    name = _format_name(format, path_text) if format else detect_format(path)
    if not Path(path).is_file():
        raise SpectrumFormatError("file not found", path_text)
    if report is None:
        report = ReadReport()
    report.path = path_text
    return _read(Path(path), FORMATS[name][0], skip_invalid, report)


def _read(path: Path, reader: Reader, skip_invalid: bool, report: ReadReport) -> Iterator[Spectrum]:
    seen = 0
    with open_text(path, report) as handle:
        for item in reader(handle, str(path)):
            seen += 1
            if isinstance(item, SpectrumFormatError):
                if not skip_invalid:
                    raise item
                report.add_error(item)
                continue
            report.read += 1
            yield item
    if seen == 0:
        raise SpectrumFormatError("empty file: no spectra found", str(path))
