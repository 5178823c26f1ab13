"""Reading and writing spectrum files: every reader streams `llm4ms.spectrum.Spectrum` values.

>>> report = ReadReport()
>>> for spectrum in read_spectra("library.msp.gz", skip_invalid=True, report=report):
...     ...
>>> report.read, report.skipped, report.errors[:3]
>>> spectra = list(read_spectra_text(uploaded_bytes, "msp", name="upload.msp"))
>>> spectra = list(read_massbank("MassBank-data/Lab/MSBNK-Lab-XX000001.txt"))  # MassBank record files

Formats come from the extension (after an optional ``.gz``) or from ``format=``; spectrum text held in
memory (``str`` or ``bytes``, gzip bytes too) is read by `read_spectra_text` with the same readers,
decoding and checks, its format given (`llm4ms.io.formats` decides one from a name or from the text).
A bad record raises `llm4ms.errors.SpectrumFormatError` naming the file (or the data's `name`), record
and line; with ``skip_invalid=True`` it is counted in the report instead and reading goes on at the next
record. Nothing is dropped silently: records read with a problem (duplicate m/z merged, no positive peak)
are counted as warnings in the report and logged once per kind. What every reader checks is written down
in `llm4ms.io.validate`.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import IO, Callable, ContextManager, Iterable, Iterator, Optional, Union

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item, LineSource, ReadReport, open_data, open_text
from llm4ms.io.formats import EXTENSIONS, detect_format, format_name, sniff_format
from llm4ms.io.jcamp import iter_jcamp
from llm4ms.io.keys import normalize_metadata
from llm4ms.io.massbank import iter_massbank
from llm4ms.io.mgf import write_mgf, iter_mgf
from llm4ms.io.msp import iter_msp, write_msp
from llm4ms.io.table import iter_table
from llm4ms.io.validate import ReadWarning, require_searchable, summarize_warnings
from llm4ms.spectrum import Spectrum

__all__ = ["read_spectra", "read_spectra_text", "read_massbank", "ReadReport", "ReadWarning", "require_searchable",
           "write_msp", "write_mgf", "normalize_metadata", "detect_format", "sniff_format", "FORMATS"]

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
    return _read(lambda: open_text(path, report), path_text, FORMATS[name][0], skip_invalid, report,
                 require_searchable)


def read_spectra_text(data: Union[str, bytes, bytearray, memoryview], format: str, name: str = "<text>",
                      skip_invalid: bool = False, report: Optional[ReadReport] = None,
                      require_searchable: bool = False, default_name: Optional[str] = None) -> Iterator[Spectrum]:
    """Stream the spectra of spectrum text held in memory, exactly as `read_spectra` reads a file.

    `data` is the text (``str``) or a file's bytes: gzip data (by its magic bytes) is unpacked as a stream,
    then decoded as a file is (UTF-16/32 by byte-order mark, strict UTF-8, else latin-1; `report.encoding`
    says which, and stays empty for a ``str``). `format` is required (``"msp"``, ``"mgf"``, ``"table"``,
    ``"jcamp"`` or an alias; `llm4ms.io.formats.detect_format` / `sniff_format` decide one from a name or the
    text). `name` stands for the data where a file's path would: errors name it with the record and line.
    `default_name` names (and ids) a plain peak list's spectrum, which from a file is named after its stem
    (the stem of `name` when None). No data at all is an "empty file" error, as for a file.
    """
    fmt = format_name(format, name)
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"read_spectra_text reads str or bytes, not {type(data).__name__}; "
                        "pass a path to read_spectra")
    if report is None:
        report = ReadReport()
    report.path = name
    reader = FORMATS[fmt][0]
    if default_name is not None and fmt == "table":
        reader = functools.partial(iter_table, default_name=default_name)
    return _read(lambda: open_data(data, name, report), name, reader, skip_invalid, report, require_searchable)


def read_massbank(path: Union[str, os.PathLike], skip_invalid: bool = False,
                  report: Optional[ReadReport] = None) -> Iterator[Spectrum]:
    """Stream the spectra of a MassBank record file (``MSBNK-*.txt`` of MassBank/MassBank-data), with the same
    decoding, checks, errors and report as `read_spectra` (`llm4ms.io.massbank` says what is read).

    Not a format of `read_spectra`: MassBank records end in ``.txt`` like peak lists, so they are read only
    when asked for by name.
    """
    path_text = str(path)
    if not Path(path).is_file():
        raise SpectrumFormatError("file not found", path_text)
    if report is None:
        report = ReadReport()
    report.path = path_text
    return _read(lambda: open_text(path, report), path_text, iter_massbank, skip_invalid, report)


def _read(open_handle: Callable[[], ContextManager[IO[str]]], where: str, reader: Reader, skip_invalid: bool,
          report: ReadReport, require_searchable: bool = False) -> Iterator[Spectrum]:
    seen = 0
    first: dict[str, str] = {}
    counts: dict[str, int] = {}
    try:
        with open_handle() as handle:
            for item in reader(LineSource(handle, where), where):
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
        summarize_warnings(where, counts, first)
    if seen == 0:
        raise SpectrumFormatError("empty file: no spectra found", where)
