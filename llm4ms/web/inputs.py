"""Turn what a user pastes or uploads into `Spectrum` queries, with errors that name the input.

Uploaded bytes and pasted text are read in memory by `llm4ms.io.read_spectra_text`, with the CLI's readers,
decoding and checks (no temporary file); the format comes from `llm4ms.io.formats` (an upload's name, pasted
text's content). Errors name the uploaded file (or "pasted text") with the record and line.

The web path imposes its own limits before any reader sees the bytes, whatever the readers do: ``.gz``
uploads are decompressed here as a stream with a cap on the unpacked size (a small zip bomb is refused
after reading at most the cap), and every request has a budget of unpacked bytes, lines and line length.
JSON bodies are parsed with a nesting-depth limit. Everything here is synchronous and CPU-bound: the app
runs it in worker threads, never on the event loop.
"""
from __future__ import annotations

import json
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from llm4ms.errors import Llm4msError, SpectrumFormatError
from llm4ms.spectrum import Spectrum

log = logging.getLogger(__name__)

PASTED = "pasted text"
#: The name a pasted query without its own name gets (a file's queries are named after the file).
PASTED_STEM = "pasted"
#: Longest line (bytes) the web app passes to a reader.
MAX_LINE_BYTES = 65536
#: Most lines per search request (all files and pasted text together).
MAX_LINES = 200_000
#: Deepest JSON nesting accepted (a search request needs 4: body, spectra, spectrum, peaks, peak).
MAX_JSON_DEPTH = 32
#: Most peaks a mirror plot draws per side (the most intense; the response says when more were cut).
MAX_MIRROR_PEAKS = 500


class TooManySpectra(Llm4msError):
    """More query spectra than the server accepts in one request (HTTP 413)."""


class TooLarge(Llm4msError):
    """A request body (or what it unpacks to) larger than the server accepts (HTTP 413)."""


class BadRequest(Llm4msError):
    """A request the server cannot read: not JSON, nested too deeply, not gzip (HTTP 400)."""


@dataclass
class Budget:
    """What is left of one request's allowance of unpacked bytes and lines (shared by all its inputs)."""

    bytes_left: int
    lines_left: int = MAX_LINES
    max_line: int = MAX_LINE_BYTES

    def take(self, data: bytes, label: str) -> None:
        """Charge `data` (already unpacked) to the budget; TooLarge / BadRequest when it does not fit."""
        if len(data) > self.bytes_left:
            raise TooLarge(f"{label}: the spectra unpack to more than the {_mb(self.bytes_left)} left of what the "
                           "server reads per search (llm4ms serve --max-unpacked-mb)")
        lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        if lines > self.lines_left:
            raise TooLarge(f"{label}: {lines:,} lines; the server reads at most {self.lines_left:,} more lines "
                           "in this search")
        longest = _longest_line(data)
        if longest > self.max_line:
            raise BadRequest(f"{label}: a line of {longest:,} bytes; the server reads lines of at most "
                             f"{self.max_line:,} bytes")
        self.bytes_left -= len(data)
        self.lines_left -= lines


def _mb(size: int) -> str:
    return f"{size / 1048576:.3g} MB"


def _longest_line(data: bytes) -> int:
    """Length of the longest line (split at \\n, \\r\\n or \\r), in linear time."""
    longest = 0
    for line in re.finditer(rb"[^\r\n]+", data):
        longest = max(longest, line.end() - line.start())
    return longest


def gunzip_limited(data: bytes, limit: int, label: str) -> bytes:
    """Decompress gzip `data` (all members) as a stream, refusing (TooLarge) once it unpacks past `limit`."""
    out = bytearray()
    pending = data
    while pending:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while True:
                chunk = decompressor.decompress(pending, 1 << 20)
                out += chunk
                if len(out) > limit:
                    raise TooLarge(f"{label}: unpacks to more than {_mb(limit)}; the server reads at most that "
                                   "much per search (llm4ms serve --max-unpacked-mb)")
                pending = decompressor.unconsumed_tail
                if decompressor.eof:
                    pending = decompressor.unused_data.lstrip(b"\0")  # another member may follow
                    break
                if not pending and not chunk:
                    raise BadRequest(f"{label}: the gzip data is truncated")
        except zlib.error as err:
            raise BadRequest(f"{label}: not valid gzip data ({err})") from None
    return bytes(out)


def _safe_stem(filename: str, fallback: str = "upload") -> str:
    """The uploaded file's name without extensions, reduced to safe characters (names unnamed queries)."""
    from llm4ms.io.formats import spectrum_stem

    stem = spectrum_stem(str(filename or "").replace("\\", "/"))
    stem = re.sub(r"[^A-Za-z0-9._ +-]", "_", stem).strip(" .")[:80]
    return stem or fallback


def _relabel(err: SpectrumFormatError, label: str) -> SpectrumFormatError:
    return SpectrumFormatError(err.message, label, err.record, err.line)


def read_upload(data: bytes, filename: str, limit: int, label: Optional[str] = None,
                max_total: Optional[int] = None, budget: Optional[Budget] = None,
                stem: Optional[str] = None) -> list[Spectrum]:
    """Read spectra from uploaded bytes named `filename`; at most `limit` spectra (else TooManySpectra).

    `max_total` is the per-request limit quoted in the message (when `limit` is what is left of it).
    `budget` caps unpacked bytes, lines and line length (a fresh default budget when None). Gzip data (by
    name or by its magic bytes) is unpacked here, within the budget, before a reader sees it. The format
    comes from the name (`llm4ms.io.formats.detect_format`); a peak list is named `stem`, else the name's.
    """
    from llm4ms.io.formats import detect_format, is_gzip, is_gzip_data

    label = label or Path(filename or "upload").name
    budget = budget or Budget(bytes_left=64 * 1048576)
    try:
        fmt = detect_format(filename or "")
    except SpectrumFormatError as err:
        raise _relabel(err, label) from None
    if is_gzip(filename or "") or is_gzip_data(data):
        data = gunzip_limited(data, budget.bytes_left, label)
        if is_gzip_data(data):  # unpacked once, within the budget; never again without it
            raise BadRequest(f"{label}: gzip data inside gzip data; unpack it once")
    budget.take(data, label)
    return _read_data(data, fmt, label, stem or _safe_stem(filename), limit, max_total)


def read_text(text: str, limit: int, budget: Optional[Budget] = None) -> list[Spectrum]:
    """Read pasted text (MSP, MGF, JCAMP-DX or a two-column peak list); unnamed queries are "pasted".

    The format comes from the content (`llm4ms.io.formats.sniff_format`).
    """
    from llm4ms.io.formats import sniff_format

    if not text.strip():
        return []
    budget = budget or Budget(bytes_left=64 * 1048576)
    budget.take(text.encode("utf-8", "surrogatepass"), PASTED)
    return _read_data(text, sniff_format(text), PASTED, PASTED_STEM, limit, None)


def _read_data(data: Union[str, bytes], fmt: str, label: str, stem: str, limit: int,
               max_total: Optional[int]) -> list[Spectrum]:
    """The query spectra of in-memory text or bytes (`llm4ms.io.read_spectra_text`), errors naming `label`."""
    from llm4ms.io import read_spectra_text

    spectra: list[Spectrum] = []
    try:
        for spectrum in read_spectra_text(data, fmt, name=label, require_searchable=True, default_name=stem):
            if len(spectra) >= limit:
                raise TooManySpectra(f"{label}: too many spectra; the server accepts at most "
                                     f"{max_total or limit} query spectra per search")
            spectra.append(spectrum)
    except Llm4msError:
        raise
    except Exception as err:  # a reader bug must still be the user's 400, not the server's 500
        log.warning("reading %s failed with %s: %s", label, type(err).__name__, err)
        text = " ".join(str(err).split())[:200]
        raise SpectrumFormatError(f"cannot read this file ({type(err).__name__}: {text})", label) from None
    return spectra


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON request body, refused (BadRequest) when invalid or nested deeper than `max_depth`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(f"request body is not valid JSON (not UTF-8 at byte {err.start})") from None
    if _max_depth(body) > max_depth:
        raise BadRequest(f"request JSON is nested more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise BadRequest(f"request JSON is nested more than {max_depth} levels deep") from None
    except ValueError as err:
        raise BadRequest(f"request body is not valid JSON ({err})") from None


_JSON_STRINGS = re.compile(rb'"(?:[^"\\]+|\\.)*"?')


def _max_depth(body: bytes) -> int:
    """Deepest bracket nesting of JSON (brackets inside strings ignored), in linear time."""
    data = np.frombuffer(_JSON_STRINGS.sub(b"", body), dtype=np.uint8)
    steps = ((data == ord("[")) | (data == ord("{"))).astype(np.int8) - \
        ((data == ord("]")) | (data == ord("}"))).astype(np.int8)
    nonzero = steps[steps != 0]
    return int(np.cumsum(nonzero, dtype=np.int64).max()) if nonzero.size else 0


def spectrum_from_peaks(peaks: Sequence[Sequence[float]], name: Optional[str] = None, id: Optional[str] = None,
                        mass: Optional[float] = None, metadata: Optional[Mapping[str, Any]] = None,
                        label: str = "spectrum") -> Spectrum:
    """A query from a JSON peak list ``[[mz, intensity], ...]``, checked value by value."""
    from llm4ms.io.keys import normalize_metadata
    from llm4ms.io.validate import precursor_problem
    from llm4ms.query_checks import check_mass

    if not peaks:
        raise SpectrumFormatError("no peaks", label)
    for i, pair in enumerate(peaks, start=1):
        if len(pair) != 2:
            raise SpectrumFormatError(f"peak {i} must be [m/z, intensity], got {len(pair)} values", label)
    array = np.asarray(peaks, dtype=np.float64)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise SpectrumFormatError(f"peak {int(np.argmax(bad)) + 1} is not a finite number", label)
    negative = (array < 0).any(axis=1)
    if negative.any():
        raise SpectrumFormatError(f"peak {int(np.argmax(negative)) + 1} has a negative m/z or intensity", label)
    if not (array[:, 1] > 0).any():
        raise SpectrumFormatError("all intensities are zero", label)
    if mass is not None:
        mass = check_mass(mass, f"{label}: mass")
    meta = normalize_metadata(dict(metadata or {}))
    problem = precursor_problem(meta.get("precursor_mz"))
    if problem is not None:  # the precursor filter reads it: refuse it here, as a reader would
        raise SpectrumFormatError(problem, label)
    if name:
        meta["name"] = name
    if id:
        meta["id"] = id
    if mass is not None:
        meta["exact_mass"] = float(mass)
    return Spectrum(array[:, 0], array[:, 1], meta)


def capped_peaks(spectrum: Spectrum, limit: int = MAX_MIRROR_PEAKS) -> tuple[Spectrum, int]:
    """`spectrum` with only its `limit` most intense peaks (m/z order kept), and how many it had."""
    n = spectrum.n_peaks
    if n <= limit:
        return spectrum, n
    keep = np.sort(np.argsort(-np.asarray(spectrum.intensities), kind="stable")[:limit])
    return Spectrum(np.asarray(spectrum.mz)[keep], np.asarray(spectrum.intensities)[keep],
                    dict(spectrum.metadata)), n


def spectrum_to_json(spectrum: Spectrum) -> dict[str, Any]:
    """What the page keeps of a query: enough to ask for a mirror plot or the CSV again."""
    return {"name": spectrum.name, "id": spectrum.id, "mass": spectrum.molecular_mass,
            "precursor_mz": spectrum.precursor_mz, "adduct": spectrum.precursor_type, "n_peaks": spectrum.n_peaks,
            "peaks": [[float(m), float(i)] for m, i in zip(spectrum.mz, spectrum.intensities)]}


def check_queries(spectra: Iterable[Spectrum], limit: int) -> list[Spectrum]:
    """All queries of one request, within the limit, each with at least one peak."""
    out = list(spectra)
    if not out:
        raise Llm4msError("no query spectra: paste a peak list or MSP text, or upload a spectrum file")
    if len(out) > limit:
        raise TooManySpectra(f"{len(out)} query spectra; the server accepts at most {limit} per search")
    for i, spectrum in enumerate(out, start=1):
        if spectrum.n_peaks == 0 or not (spectrum.intensities > 0).any():
            label = spectrum.name or spectrum.id or f"query {i}"
            raise SpectrumFormatError("spectrum has no peaks with positive intensity", f"query {i} ({label})")
    return out
