"""The checks every reader applies to every record: the one owner of what a readable spectrum is.

Readers split a file into records and parse peak text; everything they accept then passes through
`finish_record`, and every number goes through `parse_number`. A problem is reported as
``file, record N, line M: what is wrong`` — either an error (`SpectrumFormatError`: the record is not
read) or a warning (`ReadWarning`: the record is read, the warning is counted in the `ReadReport` and
logged once per kind per file). No reader lets a plain Python exception escape.

Rules (documented in one place):

- Numbers are plain ASCII decimals (``12``, ``-0.5``, ``1.2e3``). Python's ``float()`` also takes
  ``4_3``, ``"٤٣"`` (Arabic-Indic digits), full-width digits, ``inf`` and ``nan``: those are errors.
- A peak's m/z must be finite, ``>= 0`` and ``<= MAX_MZ``; its intensity finite, ``>= 0`` and
  ``<= MAX_INTENSITY``. Anything else is an error naming the line.
- Duplicate m/z values within a record are merged, keeping the largest intensity (the EI convention
  `llm4ms.spectrum.to_nominal_mass` uses too), with a warning.
- A record with no peak of positive intensity (``Num Peaks: 0``, all zeros) is read, with a warning,
  but `Spectrum.is_searchable` is False for it: search and embedding must refuse it, and
  ``read_spectra(..., require_searchable=True)`` turns it into an error (use that for queries).
- A precursor m/z (``PrecursorMZ``, ``PEPMASS``) that is present but is not a number in range is an
  error at read time (it would otherwise crash search later).
- Peak counts (``Num Peaks``, ``##NPOINTS``) are whole numbers up to `MAX_COUNT`; two different counts
  in one record are an error, and so is a count that does not match the peaks read.
- Files: UTF-8 (an optional BOM is dropped), UTF-16/32 with a byte-order mark, else latin-1 (a UTF-8 BOM
  is still dropped). A line longer than `MAX_LINE_CHARS` ends the read with an error (it is not a
  spectrum file), as does a CSV cell longer than `MAX_CELL_CHARS`.
- Where a record ends (and why a cut file is an error or a warning) is format-specific: see the
  docstrings of `llm4ms.io.msp`, `.mgf`, `.table` and `.jcamp`.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, Union

import numpy as np

from llm4ms.errors import SpectrumFormatError
from llm4ms.io.keys import canonical_key, normalize_metadata
from llm4ms.spectrum import Spectrum

logger = logging.getLogger("llm4ms.io")

#: largest m/z accepted (larger values are typing errors or masses, not m/z)
MAX_MZ = 1e5
#: largest intensity accepted
MAX_INTENSITY = 1e30
#: largest peak count (``Num Peaks``, ``##NPOINTS``) accepted
MAX_COUNT = 10**9
#: longest line accepted, in characters (1 MiB); a longer line ends the read with an error
MAX_LINE_CHARS = 1 << 20
#: longest CSV cell (Python's csv default field limit); a longer cell is an error
MAX_CELL_CHARS = 131_072

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_COUNT = re.compile(r"\+?[0-9]+")


# ---- numbers --------------------------------------------------------------------------------------
def parse_number(text: str) -> Optional[float]:
    """A plain ASCII decimal as float (``inf``/``nan`` spelled out give inf/nan), else None.

    Unlike ``float()``, ``4_3``, non-ASCII digits and surrounding garbage are not numbers.
    """
    text = text.strip()
    if _NUMBER.fullmatch(text) or _NONFINITE.fullmatch(text):
        return float(text)  # may be inf for 1e400: callers check finiteness where it matters
    return None


def is_number(text: str) -> bool:
    """Whether `text` is a plain finite ASCII decimal."""
    value = parse_number(text)
    return value is not None and np.isfinite(value)


def looks_like_number(text: str) -> bool:
    """Whether Python's ``float()`` takes `text` while `parse_number` does not (``4_3``, ``٤٣``, ``４３``)."""
    if parse_number(text) is not None:
        return False
    try:
        float(text)
    except (ValueError, OverflowError):
        return False
    return True


def number_problem(text: str, what: str) -> str:
    """The message for a token that is not a plain number."""
    if looks_like_number(text):
        return f"{what} {text[:40]!r} is not a plain ASCII number"
    return f"non-numeric {what} {text[:40]!r}"


def parse_count(text: str) -> Optional[int]:
    """A peak count: an ASCII integer from 0 to `MAX_COUNT` (``37``), else None (``37.9``, ``inf``, ``-1``)."""
    text = text.strip()
    if not _COUNT.fullmatch(text) or len(text.lstrip("+0")) > 10:
        return None
    value = int(text)
    return value if value <= MAX_COUNT else None


# ---- peak values ----------------------------------------------------------------------------------
def peak_problem(mz: float, intensity: float) -> Optional[str]:
    """What is wrong with one (m/z, intensity) pair, or None."""
    if not (np.isfinite(mz) and np.isfinite(intensity)):
        return "peak value is NaN or infinite"
    if mz < 0:
        return f"negative m/z {mz:g}"
    if mz > MAX_MZ:
        return f"m/z {mz:g} is larger than {MAX_MZ:g}"
    if intensity < 0:
        return f"negative intensity {intensity:g}"
    if intensity > MAX_INTENSITY:
        return f"intensity {intensity:g} is larger than {MAX_INTENSITY:g}"
    return None


def first_bad_peak(mz: np.ndarray, intensities: np.ndarray) -> Optional[int]:
    """Index of the first pair `peak_problem` would reject, or None (vectorised)."""
    if mz.size == 0:
        return None
    # four reductions, no temporaries: NaN fails every comparison, so it is caught too
    if (mz.min() >= 0 and mz.max() <= MAX_MZ and intensities.min() >= 0
            and intensities.max() <= MAX_INTENSITY):
        return None
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(mz) & np.isfinite(intensities) & (mz >= 0) & (mz <= MAX_MZ)
                & (intensities >= 0) & (intensities <= MAX_INTENSITY))
    return int(np.argmax(bad)) if bad.any() else None


# ---- warnings -------------------------------------------------------------------------------------
@dataclass
class ReadWarning:
    """A record that was read but has a problem worth knowing (yielded by readers, kept by `ReadReport`).

    `kind` groups warnings for the one-line-per-kind log summary. A warning that carries a `spectrum`
    (kind ``"unsearchable"``) stands for that spectrum: `read_spectra` yields the spectrum after
    counting the warning, or turns it into an error when asked for searchable spectra only.
    """

    message: str
    path: Optional[str] = None
    record: Optional[int] = None
    line: Optional[int] = None
    kind: str = "warning"
    spectrum: Optional[Spectrum] = None

    def __str__(self) -> str:
        return str(SpectrumFormatError(self.message, self.path, self.record, self.line))

    def as_error(self) -> SpectrumFormatError:
        return SpectrumFormatError(self.message, self.path, self.record, self.line)


Item = Union[Spectrum, SpectrumFormatError, ReadWarning]

#: what the one-line summary of a kind of warning says (``{n}`` records)
WARNING_SUMMARY = {
    "duplicate_mz": "{n} record(s) had duplicate m/z values, merged keeping the largest intensity",
    "unsearchable": "{n} record(s) have no peak with positive intensity (read, but they cannot be searched "
                    "or embedded)",
    "no_count": "{n} record(s) without Num Peaks end at a line that is not blank",
    "no_final_newline": "the file does not end with a newline: its last line may be cut",
}


def summarize_warnings(path: str, counts: dict[str, int], first: dict[str, str]) -> None:
    """Log one line per kind of warning met while reading `path` (with the first occurrence)."""
    for kind, n in counts.items():
        text = WARNING_SUMMARY.get(kind, "{n} warning(s)").format(n=n)
        logger.warning("%s: %s; first: %s", path, text, first[kind])


# ---- raw metadata ---------------------------------------------------------------------------------
class RawMeta:
    """Raw ``key -> value`` pairs of one record, with the line each key first appeared on.

    A repeated key (300,000 ``Synon:`` lines...) collects its values in a list and is joined with
    ``'; '`` once, at the end (linear time); a value equal to one already given is not repeated.
    """

    __slots__ = ("values", "lines", "joined")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.lines: dict[str, int] = {}
        self.joined = False

    def add(self, key: str, value: str, line: int = 0) -> None:
        values = self.values
        if key not in values:
            values[key] = value
            self.lines[key] = line
            return
        old = values[key]
        if old is None or old == "":
            self.values[key] = value
            self.lines.setdefault(key, line)
        elif value:
            if isinstance(old, _Joined):
                old.add(value)
            elif value != old:
                self.values[key] = _Joined(old, value)
                self.joined = True

    def set(self, key: str, value: Any, line: int = 0) -> None:
        self.values[key] = value
        self.lines.setdefault(key, line)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key, default)
        return value.text() if isinstance(value, _Joined) else value

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def merged(self, defaults: Optional["RawMeta"] = None) -> tuple[dict[str, Any], dict[str, int]]:
        """Plain ``(values, lines)`` dicts; `defaults` (file-wide MGF headers) fill absent keys."""
        if defaults is None and not self.joined:
            return self.values, self.lines
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for source in (defaults, self):
            if source is None:
                continue
            for key, value in source.values.items():
                values[key] = value.text() if isinstance(value, _Joined) else value
                lines[key] = source.lines.get(key, 0)
        return values, lines


class _Joined:
    """Values of a repeated key, deduplicated, joined on demand."""

    __slots__ = ("items", "seen")

    def __init__(self, first: str, second: str) -> None:
        self.items = [first, second]
        self.seen = {first, second}

    def add(self, value: str) -> None:
        if value not in self.seen:
            self.seen.add(value)
            self.items.append(value)

    def text(self) -> str:
        return "; ".join(self.items)


# ---- the shared record step -----------------------------------------------------------------------
def finish_record(mz: Iterable[float], intensities: Iterable[float], raw: Union[RawMeta, dict[str, Any]],
                  path: str, record: Optional[int], line: Optional[int], *,
                  defaults: Optional[RawMeta] = None, peak_line: Optional[int] = None,
                  checked: bool = False) -> Iterator[Item]:
    """Check one parsed record and yield its warnings, then the `Spectrum` (or one `SpectrumFormatError`).

    Readers have already rejected bad text and named its line; this step checks what holds for every
    format: peak values in range, duplicate m/z, a numeric precursor m/z, at least one positive peak.
    `line` is where the record starts, `peak_line` where its peaks start. `checked` says the reader has
    already applied `first_bad_peak` to these values (with `parse_peak_lines`, which names the line).
    """
    peaks_at = peak_line or line

    def fail(message: str, at: Optional[int]) -> SpectrumFormatError:
        return SpectrumFormatError(message, path, record, at)

    try:
        spectrum = Spectrum(mz=mz, intensities=intensities)  # float64, sorted by m/z (stable)
    except ValueError as err:
        yield fail(str(err), peaks_at)
        return
    mz, intensities = spectrum.mz, spectrum.intensities
    bad = None if checked else first_bad_peak(mz, intensities)
    if bad is not None:
        yield fail(str(peak_problem(float(mz[bad]), float(intensities[bad]))), peaks_at)
        return
    if isinstance(raw, RawMeta):
        values, lines = raw.merged(defaults)
    else:
        values, lines = dict(raw), {}
    spectrum.metadata = metadata = normalize_metadata(values)
    problem = precursor_problem(metadata.get("precursor_mz"))
    if problem is not None:
        at = next((lines.get(k) for k in values if canonical_key(str(k)) == "precursor_mz" and lines.get(k)), line)
        yield fail(problem, at)
        return
    if mz.size > 1 and (mz[1:] == mz[:-1]).any():
        order = np.lexsort((-intensities, mz))  # by m/z, the largest intensity first within one m/z
        mz, intensities = mz[order], intensities[order]
        keep = np.ones(mz.size, dtype=bool)
        keep[1:] = mz[1:] != mz[:-1]
        dups = np.unique(mz[~keep])
        shown = ", ".join(f"{v:g}" for v in dups[:5]) + (", ..." if dups.size > 5 else "")
        yield ReadWarning(f"duplicate m/z {shown} ({int((~keep).sum())} extra peak(s)) merged, keeping the "
                          "largest intensity", path, record, peaks_at, kind="duplicate_mz")
        spectrum.mz, spectrum.intensities = mz, intensities = mz[keep], intensities[keep]
    if mz.size == 0 or not intensities.max() > 0:  # values are finite and >= 0 here: Spectrum.is_searchable
        what = "no peaks" if mz.size == 0 else "no peak with positive intensity"
        yield ReadWarning(f"{what}: this spectrum cannot be searched or embedded", path, record, peaks_at,
                          kind="unsearchable", spectrum=spectrum)
        return
    yield spectrum


def precursor_problem(value: Any) -> Optional[str]:
    """What is wrong with a (normalised) precursor m/z value, or None (absent is fine)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return f"precursor m/z is not a number: {value[:40]!r}"
    number = float(value)
    if not np.isfinite(number) or number < 0 or number > MAX_MZ:
        return f"precursor m/z {number:g} is not a finite m/z between 0 and {MAX_MZ:g}"
    return None


def require_searchable(spectrum: Spectrum, where: str = "") -> Spectrum:
    """`spectrum` if it can be searched (`Spectrum.is_searchable`), else a `SpectrumFormatError` naming `where`.

    For spectra that did not come from `read_spectra(..., require_searchable=True)` (the web's JSON peaks,
    the Python API): search refuses an empty query instead of returning the embedding of empty text.
    """
    if not spectrum.is_searchable:
        label = where or spectrum.name or spectrum.id or "query"
        raise SpectrumFormatError("spectrum has no peak with positive intensity: nothing to search with",
                                  str(label))
    return spectrum
