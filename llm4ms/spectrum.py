"""The `Spectrum` value and small pure processing functions.

A spectrum is two aligned arrays (m/z ascending, intensities) plus a metadata dict whose keys are the
canonical names in `CANONICAL_KEYS` (readers map every dialect onto them; see `llm4ms.io.keys`).
Processing functions take a spectrum and return a new one (or ``None`` to drop it), so they chain like
matchms filters: ``pipeline(normalize_intensities, select_top_n(30))(spectrum)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

#: Canonical metadata keys. Readers normalise to these; writers export them per dialect.
CANONICAL_KEYS = (
    "id", "name", "inchikey", "inchi", "smiles", "formula", "exact_mass", "mol_weight",
    "precursor_mz", "precursor_type", "ion_mode", "retention_index", "retention_time",
    "ms_level", "instrument_type", "instrument", "ionization", "collision_energy", "cas",
    "license", "authors", "comment",
)


@dataclass
class Spectrum:
    """A mass spectrum: m/z (ascending, float64), intensities (float64) and canonical metadata."""

    mz: np.ndarray
    intensities: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        mz = np.asarray(self.mz, dtype=np.float64).reshape(-1)
        inten = np.asarray(self.intensities, dtype=np.float64).reshape(-1)
        if mz.shape != inten.shape:
            raise ValueError(f"m/z and intensity arrays differ in length ({mz.size} vs {inten.size})")
        if mz.size > 1 and np.any(np.diff(mz) < 0):
            order = np.argsort(mz, kind="stable")
            mz, inten = mz[order], inten[order]
        self.mz = mz
        self.intensities = inten

    # ---- metadata shortcuts (None when absent) -------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        value = self.metadata.get(key, default)
        return default if value in ("", None) else value

    @property
    def name(self) -> Optional[str]:
        return self.get("name")

    @property
    def id(self) -> Optional[str]:
        return self.get("id")

    @property
    def inchikey(self) -> Optional[str]:
        return self.get("inchikey")

    @property
    def inchikey14(self) -> Optional[str]:
        """InChIKey first block (connectivity): the identity used for Recall@k."""
        key = self.get("inchikey")
        return str(key)[:14].upper() if key else None

    @property
    def smiles(self) -> Optional[str]:
        return self.get("smiles")

    @property
    def formula(self) -> Optional[str]:
        return self.get("formula")

    @property
    def precursor_mz(self) -> Optional[float]:
        value = self.get("precursor_mz")
        return float(value) if value is not None else None

    @property
    def molecular_mass(self) -> Optional[float]:
        """Exact (monoisotopic) mass if known, else the molecular weight."""
        for key in ("exact_mass", "mol_weight"):
            value = self.get(key)
            if value is not None:
                try:
                    return float(value)
                except (TypeError, ValueError):
                    continue
        return None

    @property
    def n_peaks(self) -> int:
        return int(self.mz.size)

    def copy(self, **changes: Any) -> "Spectrum":
        """A new spectrum with the given fields replaced (metadata is shallow-copied)."""
        return Spectrum(
            mz=changes.get("mz", self.mz.copy()),
            intensities=changes.get("intensities", self.intensities.copy()),
            metadata=changes.get("metadata", dict(self.metadata)),
        )

    def __len__(self) -> int:
        return self.n_peaks

    def __repr__(self) -> str:
        label = self.name or self.id or "?"
        return f"Spectrum({label!r}, {self.n_peaks} peaks)"

    # ---- matchms bridge --------------------------------------------------------------------------
    def to_matchms(self):  # -> matchms.Spectrum
        """Convert to `matchms.Spectrum` (requires the optional matchms package)."""
        from matchms import Spectrum as MatchmsSpectrum

        meta = {k: v for k, v in self.metadata.items() if v not in (None, "")}
        if "id" in meta:
            meta["spectrum_id"] = meta.pop("id")
        if "name" in meta:
            meta["compound_name"] = meta.pop("name")
        return MatchmsSpectrum(mz=self.mz.astype(float), intensities=self.intensities.astype(float),
                               metadata=meta, metadata_harmonization=True)

    @classmethod
    def from_matchms(cls, spectrum) -> "Spectrum":
        """Build from a `matchms.Spectrum`, normalising its metadata keys."""
        from llm4ms.io.keys import normalize_metadata

        return cls(mz=np.asarray(spectrum.peaks.mz), intensities=np.asarray(spectrum.peaks.intensities),
                   metadata=normalize_metadata(dict(spectrum.metadata)))


Processor = Callable[[Spectrum], Optional[Spectrum]]


# ---- processing functions -------------------------------------------------------------------------
def normalize_intensities(spectrum: Spectrum, scale: float = 1.0) -> Optional[Spectrum]:
    """Scale intensities so the largest is `scale`; drop spectra with no positive peak."""
    if spectrum.n_peaks == 0:
        return None
    top = float(spectrum.intensities.max())
    if top <= 0:
        return None
    return spectrum.copy(intensities=spectrum.intensities * (scale / top))


def remove_nonpositive(spectrum: Spectrum) -> Optional[Spectrum]:
    """Drop peaks with intensity <= 0 and non-finite values."""
    keep = np.isfinite(spectrum.mz) & np.isfinite(spectrum.intensities) & (spectrum.intensities > 0)
    return spectrum.copy(mz=spectrum.mz[keep], intensities=spectrum.intensities[keep])


def relative_intensity_filter(min_relative: float) -> Processor:
    """Keep peaks whose intensity is at least `min_relative` of the base peak."""

    def _filter(spectrum: Spectrum) -> Optional[Spectrum]:
        if spectrum.n_peaks == 0:
            return spectrum
        keep = spectrum.intensities >= min_relative * spectrum.intensities.max()
        return spectrum.copy(mz=spectrum.mz[keep], intensities=spectrum.intensities[keep])

    return _filter


def select_top_n(n: int) -> Processor:
    """Keep the `n` most intense peaks (ties broken by lower m/z), returned in m/z order."""

    def _top(spectrum: Spectrum) -> Optional[Spectrum]:
        if spectrum.n_peaks <= n:
            return spectrum
        order = np.lexsort((spectrum.mz, -spectrum.intensities))[:n]
        order.sort()
        return spectrum.copy(mz=spectrum.mz[order], intensities=spectrum.intensities[order])

    return _top


def mz_range(min_mz: float = 0.0, max_mz: float = float("inf")) -> Processor:
    """Keep peaks with `min_mz <= m/z <= max_mz`."""

    def _range(spectrum: Spectrum) -> Optional[Spectrum]:
        keep = (spectrum.mz >= min_mz) & (spectrum.mz <= max_mz)
        return spectrum.copy(mz=spectrum.mz[keep], intensities=spectrum.intensities[keep])

    return _range


def to_nominal_mass(spectrum: Spectrum) -> Optional[Spectrum]:
    """Round m/z to integers, keeping the largest intensity per nominal mass (EI convention)."""
    if spectrum.n_peaks == 0:
        return spectrum
    nominal = np.floor(spectrum.mz + 0.5).astype(np.int64)  # round half up, not banker's rounding
    order = np.lexsort((-spectrum.intensities, nominal))
    nominal, inten = nominal[order], spectrum.intensities[order]
    first = np.ones(nominal.size, dtype=bool)
    first[1:] = nominal[1:] != nominal[:-1]
    return spectrum.copy(mz=nominal[first].astype(np.float64), intensities=inten[first])


def binned_vector(spectrum: Spectrum, max_mz: int = 1000, power: float = 1.0) -> np.ndarray:
    """Dense nominal-mass vector (index = integer m/z) with intensities raised to `power`."""
    vec = np.zeros(max_mz + 1, dtype=np.float32)
    if spectrum.n_peaks:
        idx = np.floor(spectrum.mz + 0.5).astype(np.int64)
        keep = (idx >= 0) & (idx <= max_mz)
        np.maximum.at(vec, idx[keep], (spectrum.intensities[keep] ** power).astype(np.float32))
    return vec


def pipeline(*steps: Processor) -> Processor:
    """Compose processing functions left to right; a step returning None ends the chain with None."""

    def _run(spectrum: Spectrum) -> Optional[Spectrum]:
        current: Optional[Spectrum] = spectrum
        for step in steps:
            if current is None:
                return None
            current = step(current)
        return current

    return _run


def process_all(spectra: Iterable[Spectrum], processor: Processor) -> Iterator[Spectrum]:
    """Apply `processor` lazily, skipping spectra it drops."""
    for spectrum in spectra:
        out = processor(spectrum)
        if out is not None:
            yield out
