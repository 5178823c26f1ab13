"""What every reader shares: opening files (gzip, encoding), the read report and peak-line parsing.

Readers are generators that yield either a `Spectrum` or a `SpectrumFormatError` for a bad record;
`read_spectra` decides whether an error stops the read or is counted and skipped. That way a reader
always resumes at the next record and never has to know about `skip_invalid`.
"""
from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import logging
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Iterator, Optional, Sequence, Union

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.io.keys import normalize_metadata
from llm4ms.spectrum import Spectrum

logger = logging.getLogger(__name__)

Item = Union[Spectrum, SpectrumFormatError]


@dataclass
class ReadReport:
    """Counts filled while a file is read: spectra yielded, records skipped and why."""

    path: str = ""
    read: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    #: text encoding used ("utf-8", or "latin-1" when the file is not valid UTF-8)
    encoding: str = ""
    max_errors: ClassVar[int] = 20

    def add_error(self, error: Exception) -> None:
        self.skipped += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(str(error))


# ---- opening files ------------------------------------------------------------------------------
def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _sniff_encoding(path: Path) -> str:
    """'utf-8' if the whole file decodes strictly as UTF-8, else 'latin-1' (which decodes any byte).

    Reads the file once in binary chunks (about 10 ms per 16 MB) so a stream never switches
    encoding half way. NUL bytes in the first 64 KB mean a binary file: that is an error.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    try:
        with _open_binary(path) as handle:
            first = True
            while True:
                chunk = handle.read(1 << 20)
                if not chunk:
                    break
                if first and b"\x00" in chunk[:65536]:
                    raise SpectrumFormatError("binary file (contains NUL bytes), not a text spectrum file",
                                              str(path))
                first = False
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    logger.warning("%s: not valid UTF-8 (byte %d); reading it as latin-1",
                                   path, offset + err.start)
                    return "latin-1"
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        logger.warning("%s: truncated UTF-8 sequence at the end; reading it as latin-1", path)
        return "latin-1"
    except (gzip.BadGzipFile, zlib.error, EOFError) as err:
        raise SpectrumFormatError(f"not a readable gzip file ({err})", str(path)) from None
    return "utf-8"


@contextlib.contextmanager
def open_text(path: Union[str, Path], report: Optional[ReadReport] = None) -> Iterator[IO[str]]:
    """Open a (possibly gzipped) text file: strict UTF-8 (BOM dropped), else latin-1, never lossy."""
    path = Path(path)
    if not path.is_file():
        raise SpectrumFormatError("file not found", str(path))
    encoding = _sniff_encoding(path)
    if report is not None:
        report.encoding = encoding
    raw = _open_binary(path)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig" if encoding == "utf-8" else encoding)
    try:
        yield text
    finally:
        text.close()


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
    block is converted in one numpy call; only when that fails are lines parsed one by one, to name
    the bad line. Raises `PeakError` for non-numeric values, unpaired values, NaN/inf, negative m/z.
    """
    if not lines:
        return np.empty(0), np.empty(0)
    text = " ".join(lines)
    values = None
    if '"' not in text:
        tokens = text.translate(_SEPARATORS).split()
        if len(tokens) % 2 == 0:
            try:
                values = np.array(tokens, dtype=np.float64)
            except ValueError:
                values = None
    if values is None:
        values = _parse_slow(lines)
    mz, intensities = values[0::2].copy(), values[1::2].copy()
    if not np.isfinite(values).all() or (mz.size and mz.min() < 0):
        _locate_bad_value(lines)
    return mz, intensities


def _line_values(line: str, offset: int) -> list[float]:
    tokens = _QUOTED.sub(" ", line).translate(_SEPARATORS).split()
    values: list[float] = []
    for index, token in enumerate(tokens):
        try:
            values.append(float(token))
        except ValueError:
            if index >= 2 and index % 2 == 0:
                break  # annotation after a complete pair
            raise PeakError(f"non-numeric peak value {token!r} in {line[:60]!r}", offset) from None
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
            if not (np.isfinite(mz) and np.isfinite(intensity)):
                raise PeakError(f"peak value is NaN or infinite in {line[:60]!r}", offset)
            if mz < 0:
                raise PeakError(f"negative m/z {mz:g} in {line[:60]!r}", offset)
    raise PeakError("invalid peak values", 0)  # pragma: no cover - parse and locate disagree


def make_spectrum(mz: np.ndarray, intensities: np.ndarray, raw: dict[str, Any]) -> Spectrum:
    return Spectrum(mz=mz, intensities=intensities, metadata=normalize_metadata(raw))


def add_raw(raw: dict[str, Any], key: str, value: str) -> None:
    """Store a raw metadata pair; a repeated key (e.g. several ``Synon:`` lines) is joined with '; '."""
    old = raw.get(key)
    if old is None or old == "":
        raw[key] = value
    elif value and value != old:
        raw[key] = f"{old}; {value}"
