"""Reading and writing spectrum files: every reader streams `llm4ms.spectrum.Spectrum` values.

>>> report = ReadReport()
>>> for spectrum in read_spectra("library.msp.gz", skip_invalid=True, report=report):
...     ...
>>> report.read, report.skipped, report.errors[:3]

Formats come from the extension (after an optional ``.gz``) or from ``format=``. A bad record raises
`llm4ms.errors.SpectrumFormatError` naming the file, record and line; with ``skip_invalid=True`` it is
counted in the report instead and reading goes on at the next record. Nothing is dropped silently:
records read with a problem (duplicate m/z merged, no positive peak) are counted as warnings in the
report and logged once per kind. What every reader checks is written down in `llm4ms.io.validate`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, LineSource, ReadReport, open_text
from llm4ms.io.formats import EXTENSIONS, detect_format, format_name
from llm4ms.io.jcamp import iter_jcamp
from llm4ms.io.keys import normalize_metadata
from llm4ms.io.mgf import write_mgf, iter_mgf
from llm4ms.io.msp import iter_msp, write_msp
from llm4ms.io.table import iter_table
from llm4ms.io.validate import ReadWarning, require_searchable, summarize_warnings
from llm4ms.spectrum import Spectrum

__all__ = ["read_spectra", "ReadReport", "ReadWarning", "require_searchable", "write_msp", "write_mgf",
           "normalize_metadata", "detect_format", "FORMATS"]

Reader = Callable[[Iterable[str], str], Iterator[Item]]

#: format name -> (reader, extensions); names and extensions are owned by `llm4ms.io.formats`
FORMATS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    name: (reader, EXTENSIONS[name])
    for name, reader in (("msp", iter_msp), ("mgf", iter_mgf), ("table", iter_table), ("jcamp", iter_jcamp))
}


def read_spectra(path: Union[str, os.PathLike], format: Optional[str] = None, skip_invalid: bool = False,
                 report: Optional[ReadReport] = None, require_searchable: bool = False) -> Iterator[Spectrum]:
    """Stream the spectra of a file, one record at a time (constant memory).

    The format and the file's existence are checked at once; records are read as the iterator is
    consumed. `report` (if given) is filled while iterating. A file with no record at all is an error.
    Every record passes the shared checks of `llm4ms.io.validate`. A record with no peak of positive
    intensity is yielded with a warning (`Spectrum.is_searchable` is False); with
    ``require_searchable=True`` (queries) it is an error instead, skipped under `skip_invalid`.
    """
    path_text = str(path)
    name = format_name(format, path_text) if format else detect_format(path)
    if not Path(path).is_file():
        raise SpectrumFormatError("file not found", path_text)
    if report is None:
        report = ReadReport()
    report.path = path_text
    return _read(Path(path), FORMATS[name][0], skip_invalid, report, require_searchable)


def _read(path: Path, reader: Reader, skip_invalid: bool, report: ReadReport,
          require_searchable: bool = False) -> Iterator[Spectrum]:
    seen = 0
    first: dict[str, str] = {}
    counts: dict[str, int] = {}
    try:
        with open_text(path, report) as handle:
            for item in reader(LineSource(handle, str(path)), str(path)):
                if isinstance(item, ReadWarning):
                    if item.spectrum is None or not require_searchable:
                        report.add_warning(item)
                        counts[item.kind] = counts.get(item.kind, 0) + 1
                        first.setdefault(item.kind, str(item))
                        if item.spectrum is None:
                            continue
                        item = item.spectrum
                    else:
                        item = item.as_error()
                seen += 1
                if isinstance(item, SpectrumFormatError):
                    if not skip_invalid:
                        raise item
                    report.add_error(item)
                    continue
                report.read += 1
                yield item
    finally:
        summarize_warnings(str(path), counts, first)
    if seen == 0:
        raise SpectrumFormatError("empty file: no spectra found", str(path))
