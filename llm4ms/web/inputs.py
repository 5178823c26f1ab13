"""Turn what a user pastes or uploads into `Spectrum` queries, with errors that name the input.

Uploaded bytes and pasted text are written to a temporary file with the right extension and read with
`llm4ms.io.read_spectra`, so the web app reads exactly what the CLI reads. Errors are re-labelled with the
uploaded file name (or "pasted text") instead of the temporary path.
"""
from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from llm4ms.errors import Llm4msError, SpectrumFormatError
from llm4ms.spectrum import Spectrum

PASTED = "pasted text"


class TooManySpectra(Llm4msError):
    """More query spectra than the server accepts in one request (HTTP 413)."""


class TooLarge(Llm4msError):
    """A request body larger than the server accepts (HTTP 413)."""


def upload_suffix(filename: str) -> str:
    """The extension `read_spectra` needs (``.msp``, ``.mgf.gz``, ...) from an uploaded file's name."""
    name = Path(filename or "").name.lower()
    if name.endswith(".gz"):
        return Path(name[:-3]).suffix + ".gz"
    return Path(name).suffix


def guess_text_suffix(text: str) -> str:
    """The format of pasted text: MSP (``Name:``/``Num Peaks:``), MGF, JCAMP-DX, else a two-column peak list."""
    head = text[:20000]
    if re.search(r"^\s*BEGIN IONS", head, re.I | re.M):
        return ".mgf"
    if re.search(r"^\s*##TITLE", head, re.I | re.M):
        return ".jdx"
    if re.search(r"^\s*(name|num ?peaks)\s*:", head, re.I | re.M):
        return ".msp"
    return ".txt"


def _relabel(err: SpectrumFormatError, label: str) -> SpectrumFormatError:
    return SpectrumFormatError(err.message, label, err.record, err.line)


def read_upload(data: bytes, filename: str, limit: int, label: Optional[str] = None,
                max_total: Optional[int] = None) -> list[Spectrum]:
    """Read spectra from uploaded bytes named `filename`; at most `limit` spectra (else TooManySpectra).

    `max_total` is the per-request limit quoted in the message (when `limit` is what is left of it).
    """
    from llm4ms.io import read_spectra

    label = label or Path(filename or "upload").name
    suffix = upload_suffix(filename)
    with tempfile.TemporaryDirectory(prefix="llm4ms-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        spectra: list[Spectrum] = []
        try:
            for spectrum in read_spectra(path):
                if len(spectra) >= limit:
                    raise TooManySpectra(f"{label}: too many spectra; the server accepts at most "
                                         f"{max_total or limit} query spectra per search")
                spectra.append(spectrum)
        except SpectrumFormatError as err:
            raise _relabel(err, label) from None
        except (ValueError, UnicodeError) as err:
            raise SpectrumFormatError(f"cannot read this file ({err})", label) from None
    return spectra


def read_text(text: str, limit: int) -> list[Spectrum]:
    """Read pasted text (MSP, MGF, JCAMP-DX or a two-column peak list)."""
    if not text.strip():
        return []
    return read_upload(text.encode("utf-8"), f"pasted{guess_text_suffix(text)}", limit, label=PASTED)


def spectrum_from_peaks(peaks: Sequence[Sequence[float]], name: Optional[str] = None, id: Optional[str] = None,
                        mass: Optional[float] = None, metadata: Optional[Mapping[str, Any]] = None,
                        label: str = "spectrum") -> Spectrum:
    """A query from a JSON peak list ``[[mz, intensity], ...]``, checked value by value."""
    from llm4ms.io.keys import normalize_metadata

    if not peaks:
        raise SpectrumFormatError("no peaks", label)
    for i, pair in enumerate(peaks, start=1):
        if len(pair) != 2:
            raise SpectrumFormatError(f"peak {i} must be [m/z, intensity], got {len(pair)} values", label)
        mz, inten = float(pair[0]), float(pair[1])
        if not (math.isfinite(mz) and math.isfinite(inten)):
            raise SpectrumFormatError(f"peak {i} is not a finite number", label)
        if mz < 0 or inten < 0:
            raise SpectrumFormatError(f"peak {i} has a negative m/z or intensity", label)
    array = np.asarray(peaks, dtype=np.float64)
    if not (array[:, 1] > 0).any():
        raise SpectrumFormatError("all intensities are zero", label)
    meta = normalize_metadata(dict(metadata or {}))
    if name:
        meta["name"] = name
    if id:
        meta["id"] = id
    if mass is not None:
        meta["exact_mass"] = float(mass)
    return Spectrum(array[:, 0], array[:, 1], meta)


def spectrum_to_json(spectrum: Spectrum) -> dict[str, Any]:
    """What the page keeps of a query: enough to ask for a mirror plot or the CSV again."""
    return {"name": spectrum.name, "id": spectrum.id, "mass": spectrum.molecular_mass,
            "n_peaks": spectrum.n_peaks,
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
