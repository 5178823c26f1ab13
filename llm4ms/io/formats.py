"""Spectrum file formats: names, extensions, detection from a file name or from text (the one owner).

Readers (`llm4ms.io.read_spectra`, `read_spectra_text`), the progress-bar record count of `llm4ms embed` and
the web app's uploads and pasted text all ask here which format a name or a text is, and whether a name or
bytes are gzip.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path
from typing import Optional, Union

from llm4ms.errors import SpectrumFormatError

#: format name -> file extensions (each may be followed by ``.gz``); the first is the canonical one.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "msp": (".msp",),
    "mgf": (".mgf",),
    "table": (".csv", ".tsv", ".txt"),
    "jcamp": (".jdx", ".dx", ".jcamp"),
}
#: other names accepted for ``format=``
ALIASES = {"csv": "table", "tsv": "table", "txt": "table", "jdx": "jcamp", "dx": "jcamp"}

#: how a record starts, per format, for a cheap count (lower-cased line start)
_RECORD_START = {"msp": b"name:", "mgf": b"begin ions"}

PathLike = Union[str, os.PathLike]


#: the first bytes of gzip data
GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(name: PathLike) -> bool:
    """Whether a file name ends in ``.gz`` (any case)."""
    return Path(name).name.lower().endswith(".gz")


def is_gzip_data(data: bytes) -> bool:
    """Whether bytes are gzip data (by the magic bytes at their start)."""
    return bytes(data[:2]) == GZIP_MAGIC


def spectrum_suffix(name: PathLike) -> str:
    """The lower-cased extension that decides the format, with ``.gz`` kept: ``.msp``, ``.mgf.gz``, ``""``."""
    lower = Path(name).name.lower()
    if is_gzip(lower):
        return Path(lower[:-3]).suffix + ".gz"
    return Path(lower).suffix


def spectrum_stem(name: PathLike) -> str:
    """A file name without its directory, ``.gz`` and extension: ``data/queries.msp.gz`` -> ``queries``."""
    base = Path(name).name
    if is_gzip(base):
        base = base[:-3]
    return Path(base).stem


def _supported() -> str:
    return ", ".join(f"{fmt} ({' '.join(ext)})" for fmt, ext in EXTENSIONS.items())


def detect_format(name: PathLike) -> str:
    """Format name (``msp``, ``mgf``, ``table``, ``jcamp``) from a file name's extension (``.gz`` stripped)."""
    suffix = spectrum_suffix(name).removesuffix(".gz")
    for fmt, extensions in EXTENSIONS.items():
        if suffix in extensions:
            return fmt
    raise SpectrumFormatError(f"unknown spectrum file extension {suffix or '(none)'!r}; supported: "
                              f"{_supported()} (optionally .gz), or pass format=", str(name))


def format_name(format: str, where: str = "") -> str:
    """The format name for a ``format=`` value (aliases such as ``csv`` or ``jdx`` accepted)."""
    name = ALIASES.get(format.lower(), format.lower())
    if name not in EXTENSIONS:
        raise SpectrumFormatError(f"unknown format {format!r}; supported: {', '.join(EXTENSIONS)}", where)
    return name


def suffix_for(format: str) -> str:
    """The canonical extension of a format (``.msp``, ``.mgf``, ``.txt`` for tables, ``.jdx``)."""
    name = format_name(format)
    return ".txt" if name == "table" else EXTENSIONS[name][0]


def sniff_format(text: str) -> str:
    """The format of spectrum text by its content: MSP (``Name:``/``Num Peaks:``), MGF, JCAMP-DX, else a table."""
    head = text[:20000]
    if re.search(r"^\s*BEGIN IONS", head, re.I | re.M):
        return "mgf"
    if re.search(r"^\s*##TITLE", head, re.I | re.M):
        return "jcamp"
    if re.search(r"^\s*(name|num ?peaks)\s*:", head, re.I | re.M):
        return "msp"
    return "table"


def estimate_record_count(path: PathLike, format: Optional[str] = None) -> Optional[int]:
    """Cheap record count for a progress-bar total (MSP ``Name:`` lines, MGF ``BEGIN IONS``); None if unknown.

    Reads fixed-size chunks (a file with one enormous line costs no memory) and never raises: a file that
    cannot be read (missing, a broken gzip) gives None, and the reader then reports the real problem.
    """
    try:
        fmt = format_name(format) if format else detect_format(path)
    except SpectrumFormatError:
        return None
    marker = _RECORD_START.get(fmt)
    if marker is None:
        return None
    opener = gzip.open if is_gzip(path) else open
    needle = b"\n" + marker
    count = 0
    try:
        with opener(path, "rb") as handle:
            tail = b"\n"  # the first line counts too
            while True:
                chunk = handle.read(1 << 20)
                if not chunk:
                    break
                text = tail + chunk.lower()
                count += text.count(needle)
                tail = text[-len(needle) + 1:]  # a marker split across two chunks is counted once
    except (OSError, EOFError, zlib.error):
        return None
    return count
