"""What every reader shares: opening files (gzip, encoding, line length), the read report, peak-line parsing.

Readers are generators that yield a `Spectrum`, a `SpectrumFormatError` for a bad record or a
`ReadWarning`; every record passes `llm4ms.io.validate.finish_record` (the shared checks).
`read_spectra` decides whether an error stops the read or is counted and skipped. That way a reader
always resumes at the next record and never has to know about `skip_invalid`.
"""
from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import itertools
import logging
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, ClassVar, ContextManager, Iterator, Optional, Sequence, Union

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.io.formats import is_gzip, is_gzip_data
from llm4ms.io.validate import (MAX_LINE_CHARS, MAX_MZ, Item, ReadWarning, first_bad_peak, looks_like_number,
                                number_problem, parse_number, peak_problem)

logger = logging.getLogger(__name__)

__all__ = ["Item", "ReadReport", "ReadWarning", "LineSource", "open_text", "open_data", "parse_peak_lines",
           "PeakError"]


@dataclass
class ReadReport:
    """Counts filled while a file is read: spectra yielded, records skipped and why, warnings."""

    path: str = ""
    read: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    #: text encoding used: "utf-8", "utf-16"/"utf-32" (by byte-order mark), or "latin-1" when not valid UTF-8
    encoding: str = ""
    #: records read with a problem (duplicate m/z merged, no positive peak, ...): count, first messages, per kind
    warned: int = 0
    warnings: list[str] = field(default_factory=list)
    warning_kinds: dict[str, int] = field(default_factory=dict)
    max_errors: ClassVar[int] = 20

    def add_error(self, error: Exception) -> None:
        self.skipped += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(str(error))

    def add_warning(self, warning: ReadWarning) -> None:
        self.warned += 1
        self.warning_kinds[warning.kind] = self.warning_kinds.get(warning.kind, 0) + 1
        if len(self.warnings) < self.max_errors:
            self.warnings.append(str(warning))


# ---- opening files ------------------------------------------------------------------------------
def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


#: byte-order marks, longest first (a UTF-32-LE mark starts with the UTF-16-LE one)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _bom(head: bytes) -> tuple[Optional[str], int]:
    """(encoding, BOM length) when `head` starts with a byte-order mark, else (None, 0)."""
    for mark, encoding in _BOMS:
        if head.startswith(mark):
            return encoding, len(mark)
    return None, 0


def _sniff_encoding(open_binary: Callable[[], IO[bytes]], where: str) -> tuple[str, int]:
    """``(encoding, bytes to skip)`` for a byte stream, checked over all of it so a stream never switches.

    `open_binary` opens the stream (a file, gzip-unpacked or not, or bytes in memory); `where` names it in
    errors. A UTF-16 or UTF-32 byte-order mark selects that encoding (the whole stream must then decode).
    Otherwise 'utf-8' if the stream (after an optional UTF-8 BOM, which is skipped) decodes strictly as
    UTF-8, else 'latin-1' (which decodes any byte; a UTF-8 BOM is still skipped, so the first key stays
    intact). NUL bytes in the first 64 KB of a stream without a UTF-16/32 mark mean binary data: an error.
    Reads the stream once in binary chunks (about 10 ms per 16 MB).
    """
    offset = skip = 0
    encoding = "utf-8"
    try:
        with open_binary() as handle:
            first = True
            decoder = None
            while True:
                chunk = handle.read(1 << 20)
                if first:
                    found, skip = _bom(chunk[:4])
                    encoding = found or "utf-8"
                    if encoding == "utf-8" and b"\x00" in chunk[:65536]:
                        raise SpectrumFormatError("binary file (contains NUL bytes), not a text spectrum file",
                                                  where)
                    decoder = codecs.getincrementaldecoder(encoding)("strict")
                    offset = skip if encoding == "utf-8" else 0
                    chunk = chunk[offset:]
                    first = False
                if not chunk:
                    break
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    if encoding != "utf-8":
                        raise SpectrumFormatError(f"not valid {encoding.upper()} (byte {offset + err.start}) "
                                                  "although the file starts with its byte-order mark",
                                                  where) from None
                    logger.warning("%s: not valid UTF-8 (byte %d); reading it as latin-1",
                                   where, offset + err.start)
                    return "latin-1", skip
                offset += len(chunk)
            if decoder is not None:
                decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        if encoding != "utf-8":
            raise SpectrumFormatError(f"not valid {encoding.upper()}: truncated at the end", where) from None
        logger.warning("%s: truncated UTF-8 sequence at the end; reading it as latin-1", where)
        return "latin-1", skip
    except (gzip.BadGzipFile, zlib.error, EOFError) as err:
        raise SpectrumFormatError(f"not a readable gzip file ({err})", where) from None
    except OSError as err:
        raise SpectrumFormatError(f"cannot read the file ({err.strerror or err})", where) from None
    return encoding, (skip if encoding == "utf-8" else 0)


def open_text(path: Union[str, Path], report: Optional[ReadReport] = None) -> ContextManager[IO[str]]:
    """Open a (possibly gzipped) text file: UTF-16/32 by byte-order mark, strict UTF-8 (BOM dropped),
    else latin-1 (BOM dropped too); never lossy."""
    path = Path(path)
    if not path.is_file():
        raise SpectrumFormatError("file not found", str(path))
    return _open_stream(lambda: _open_binary(path), str(path), report)


def open_data(data: Union[str, bytes, bytearray, memoryview], name: str,
              report: Optional[ReadReport] = None) -> ContextManager[IO[str]]:
    """Open spectrum text held in memory, as `open_text` opens a file; `name` stands for it in errors.

    Bytes are decoded as a file's bytes are (gzip data, by its magic bytes, is unpacked first as a stream;
    byte-order marks, strict UTF-8, else latin-1). A ``str`` is read as it is (a leading BOM character is
    dropped, ``\\r\\n`` and ``\\r`` end lines as in a file; `report.encoding` stays empty: nothing is decoded).
    """
    if isinstance(data, str):
        return _open_str(data, name)
    data = bytes(data)
    if is_gzip_data(data):
        return _open_stream(lambda: gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"), name, report)
    return _open_stream(lambda: io.BytesIO(data), name, report)


@contextlib.contextmanager
def _open_str(text: str, name: str) -> Iterator[IO[str]]:
    if "\x00" in text[:65536]:
        raise SpectrumFormatError("binary data (contains NUL characters), not spectrum text", name)
    with io.StringIO(text[1:] if text.startswith("\ufeff") else text, newline=None) as handle:
        yield handle


@contextlib.contextmanager
def _open_stream(open_binary: Callable[[], IO[bytes]], where: str,
                 report: Optional[ReadReport]) -> Iterator[IO[str]]:
    """A byte stream decoded as `_sniff_encoding` decides (the stream is opened twice: sniff, then read)."""
    encoding, skip = _sniff_encoding(open_binary, where)
    if report is not None:
        report.encoding = encoding
    raw = open_binary()
    if skip:
        raw.read(skip)
    text = io.TextIOWrapper(raw, encoding=encoding)
    try:
        yield text
    finally:
        text.close()


class LineSource:
    """The lines of a text stream (newline removed), each at most `limit` characters, in bounded memory.

    A longer line raises `SpectrumFormatError` naming it: a file with a megabyte-long line is not a
    spectrum file, and reading it whole could exhaust memory. After iteration `cut` says whether the
    last line had no newline (a file cut short often ends that way).
    """

    def __init__(self, handle: IO[str], path: str, limit: int = MAX_LINE_CHARS, chunk: int = 1 << 18) -> None:
        self.handle = handle
        self.path = path
        self.limit = limit
        self.chunk = chunk
        self.count = 0
        self.cut = False

    def _too_long(self, number: int) -> SpectrumFormatError:
        return SpectrumFormatError(f"line longer than {self.limit:,} characters: not a spectrum file?",
                                   self.path, None, number)

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._chunks())  # per line, no Python frame: as fast as a file

    def _chunks(self) -> Iterator[list[str]]:
        read, limit = self.handle.read, self.limit
        rest = ""
        while True:
            chunk = read(self.chunk)
            if not chunk:
                break
            if rest:
                chunk = rest + chunk
            lines = chunk.split("\n")
            rest = lines.pop()
            if len(chunk) > limit:
                for offset, line in enumerate(lines):
                    if len(line) > limit:
                        raise self._too_long(self.count + offset + 1)
                if len(rest) > limit:
                    raise self._too_long(self.count + len(lines) + 1)
            self.count += len(lines)
            yield lines
        if rest:
            self.cut = True
            self.count += 1
            yield [rest]


# ---- peak parsing -------------------------------------------------------------------------------
_SEPARATORS = str.maketrans(";:,\t", "    ")
_QUOTED = re.compile(r'"[^"]*"')


class PeakError(ValueError):
    """A bad peak value; `offset` is the index of the offending line within the peak block."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def parse_peak_lines(lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse peak lines into (m/z, intensity) arrays.

    Pairs may be separated by spaces, tabs, ';', ':' or ',' with several pairs per line; text after
    a complete pair (quoted or not, e.g. ``85 999 "b2"``) is an annotation and ignored. The whole
    block is converted in one numpy call when it is plain ASCII; otherwise, or when that fails, lines
    are parsed one by one, to name the bad line. Raises `PeakError` for values that are not plain
    numbers (`llm4ms.io.validate.parse_number`), unpaired values and values `peak_problem` rejects.
    """
    if not lines:
        return np.empty(0), np.empty(0)
    text = " ".join(lines)
    values = None
    # numpy (like float()) takes '4_3' and non-ASCII digits: only plain ASCII without '_' goes the fast way
    if '"' not in text and "_" not in text and text.isascii():
        tokens = text.translate(_SEPARATORS).split()
        if len(tokens) % 2 == 0:
            try:
                values = np.array(tokens, dtype=np.float64)
            except (ValueError, OverflowError):
                values = None
    if values is None:
        values = _parse_slow(lines)
    mz, intensities = values[0::2].copy(), values[1::2].copy()
    # two reductions settle the usual case (NaN fails both); the exact check only when they do not
    if values.size and not (values.min() >= 0 and values.max() <= MAX_MZ) \
            and first_bad_peak(mz, intensities) is not None:
        _locate_bad_value(lines)
    return mz, intensities


def _line_values(line: str, offset: int) -> list[float]:
    tokens = _QUOTED.sub(" ", line).translate(_SEPARATORS).split()
    values: list[float] = []
    for index, token in enumerate(tokens):
        value = parse_number(token)
        if value is None:
            if index >= 2 and index % 2 == 0 and not looks_like_number(token):
                break  # annotation after a complete pair
            raise PeakError(f"{number_problem(token, 'peak value')} in {line[:60]!r}", offset)
        values.append(value)
    if len(values) % 2:
        raise PeakError(f"m/z without intensity in {line[:60]!r}", offset)
    return values


def _parse_slow(lines: Sequence[str]) -> np.ndarray:
    values: list[float] = []
    for offset, line in enumerate(lines):
        values.extend(_line_values(line, offset))
    return np.array(values, dtype=np.float64)


def _locate_bad_value(lines: Sequence[str]) -> None:
    for offset, line in enumerate(lines):
        values = _line_values(line, offset)
        for mz, intensity in zip(values[::2], values[1::2]):
            problem = peak_problem(mz, intensity)
            if problem is not None:
                raise PeakError(f"{problem} in {line[:60]!r}", offset)
    raise PeakError("invalid peak values", 0)  # pragma: no cover - parse and locate disagree
