"""The `Spectrum` value and small pure processing functions.

A spectrum is two aligned arrays (m/z ascending, intensities) plus a metadata dict whose keys are the
canonical names owned by `llm4ms.io.keys` (`CANONICAL_KEYS`; readers map every dialect onto them).
Processing functions take a spectrum and return a new one (or ``None`` to drop it), so they chain like
matchms filters: ``pipeline(remove_nonpositive, normalize_intensities)(spectrum)``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Optional

import numpy as np


#: metadata key of the predictor's confidence in a predicted spectrum (written by `llm4ms.predict`, stored in
#: libraries, read by the learned re-ranker)
CONFIDENCE_KEY = "prediction_confidence"

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
    def prediction_confidence(self) -> Optional[float]:
        """The predictor's confidence in a predicted spectrum (``PredictionConfidence``); None for a measured one."""
        try:
            value = float(self.get(CONFIDENCE_KEY))
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    @property
    def formula(self) -> Optional[str]:
        return self.get("formula")

    @property
    def precursor_mz(self) -> Optional[float]:
        value = self.get("precursor_mz")
        return float(value) if value is not None else None

    @property
    def precursor_type(self) -> Optional[str]:
        """The adduct / precursor type as recorded (``[M+H]+``); None for EI spectra."""
        value = self.get("precursor_type")
        return str(value) if value is not None else None

    @property
    def ion_mode(self) -> Optional[str]:
        """The ion mode, "positive" or "negative": the recorded ion mode, else the one the adduct's charge implies
        (`llm4ms.io.keys.adduct_ion_mode`); None when neither says (EI spectra, unknown values)."""
        value = self.get("ion_mode")
        if value in ("positive", "negative"):
            return value
        from llm4ms.io.keys import adduct_ion_mode

        return adduct_ion_mode(self.get("precursor_type"))

    @property
    def molecular_mass(self) -> Optional[float]:
        """The molecule's mass for the mass filter: the recorded exact (monoisotopic) mass, else the recorded
        molecular weight, else the monoisotopic mass computed from FORMULA, else from SMILES (RDKit).

        `molecular_mass_source` says which one it is; `recorded_mass` never derives anything.
        """
        return self.molecular_mass_with_source()[0]

    @property
    def molecular_mass_source(self) -> Optional[str]:
        """Where `molecular_mass` comes from: "exact_mass", "mol_weight", "formula", "smiles" or None."""
        return self.molecular_mass_with_source()[1]

    @property
    def recorded_mass(self) -> Optional[float]:
        """The mass the record itself states (exact mass, else molecular weight); None if it states none."""
        for key in ("exact_mass", "mol_weight"):
            value = _positive_float(self.get(key))
            if value is not None:
                return value
        return None

    def molecular_mass_with_source(self) -> tuple[Optional[float], Optional[str]]:
        """``(mass, source)``, see `molecular_mass`; ``(None, None)`` when nothing gives a mass."""
        for key in ("exact_mass", "mol_weight"):
            value = _positive_float(self.get(key))
            if value is not None:
                return value, key
        if self.get("formula") is not None:
            mass = mass_from_formula(str(self.get("formula")))
            if mass is not None:
                return mass, "formula"
        if self.get("smiles") is not None:
            mass = mass_from_smiles(str(self.get("smiles")))
            if mass is not None:
                return mass, "smiles"
        return None, None

    @property
    def n_peaks(self) -> int:
        return int(self.mz.size)

    @property
    def is_searchable(self) -> bool:
        """Whether the spectrum can be embedded or searched: at least one finite peak of positive intensity.

        Readers yield empty and all-zero spectra (with a warning); search and embedding must refuse them
        (`llm4ms.io.validate.require_searchable` raises the one-line error).
        """
        inten = self.intensities
        return bool(inten.size) and bool(np.any((inten > 0) & np.isfinite(inten) & np.isfinite(self.mz)))

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

        from llm4ms.io.keys import export_key

        meta = {export_key(k, "matchms"): v for k, v in self.metadata.items() if v not in (None, "")}
        return MatchmsSpectrum(mz=self.mz.astype(float), intensities=self.intensities.astype(float),
                               metadata=meta, metadata_harmonization=True)

    @classmethod
    def from_matchms(cls, spectrum) -> "Spectrum":
        """Build from a `matchms.Spectrum`, normalising its metadata keys."""
        from llm4ms.io.keys import normalize_metadata

        return cls(mz=np.asarray(spectrum.peaks.mz), intensities=np.asarray(spectrum.peaks.intensities),
                   metadata=normalize_metadata(dict(spectrum.metadata)))


Processor = Callable[[Spectrum], Optional[Spectrum]]


# ---- molecular mass from a formula or a structure -------------------------------------------------
def _positive_float(value: Any) -> Optional[float]:
    """A finite positive number from metadata (plain ASCII digits only), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        from llm4ms.io.validate import parse_number

        parsed = parse_number(value)
        if parsed is None:
            return None
        number = parsed
    else:
        return None
    return number if math.isfinite(number) and number > 0 else None


@lru_cache(maxsize=1)
def _monoisotopic_masses() -> dict[str, float]:
    """Element symbol -> mass of its most abundant isotope (RDKit's table, as `ExactMolWt` uses)."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    return {table.GetElementSymbol(z): table.GetMostCommonIsotopeMass(z) for z in range(1, 119)}


_FORMULA_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)|(\()|(\))(\d*)")


@lru_cache(maxsize=65536)
def formula_counts(formula: str) -> Optional[dict[str, int]]:
    """Element counts of a neutral molecular formula such as ``C18H30O2`` or ``C2H5(CH3)2N``.

    None for anything else (charges, isotope labels, hydrates, unknown elements), so callers can fall back.
    The one formula reader: masses (`mass_from_formula`) and isotope envelopes (`llm4ms.predict.isotopes`).
    """
    text = "".join(formula.split())
    known = _monoisotopic_masses()
    stack: list[dict[str, int]] = [{}]
    pos = 0
    while pos < len(text):
        match = _FORMULA_TOKEN.match(text, pos)
        if match is None:
            return None
        element, count, opening, closing, group_count = match.groups()
        if element is not None:
            if element not in known:
                return None
            stack[-1][element] = stack[-1].get(element, 0) + (int(count) if count else 1)
        elif opening:
            stack.append({})
        else:
            if len(stack) < 2:
                return None
            group = stack.pop()
            times = int(group_count) if group_count else 1
            for symbol, n in group.items():
                stack[-1][symbol] = stack[-1].get(symbol, 0) + n * times
        pos = match.end()
    return stack[0] if len(stack) == 1 and stack[0] else None


@lru_cache(maxsize=65536)
def mass_from_formula(formula: str) -> Optional[float]:
    """Monoisotopic mass of a neutral molecular formula (see `formula_counts`); None if it cannot be read."""
    counts = formula_counts(formula)
    if counts is None:
        return None
    masses = _monoisotopic_masses()
    mass = sum(masses[symbol] * n for symbol, n in counts.items())
    return mass if mass > 0 else None


@lru_cache(maxsize=65536)
def mass_from_smiles(smiles: str) -> Optional[float]:
    """Monoisotopic mass of a SMILES (RDKit `ExactMolWt`), None if RDKit cannot read it."""
    from rdkit import Chem, rdBase
    from rdkit.Chem.Descriptors import ExactMolWt

    quiet = rdBase.BlockLogs()  # no RDKit parse messages on stderr; restored when released
    mol = Chem.MolFromSmiles(smiles.strip())
    del quiet
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return float(ExactMolWt(mol))


def structure_molecule(spectrum: Spectrum, prefer: str = "smiles"):
    """The RDKit molecule of a spectrum's recorded structure (SMILES or InChI, `prefer` tried first);
    None when neither reads or RDKit is not installed."""
    texts = {"smiles": spectrum.smiles, "inchi": spectrum.get("inchi")}
    order = ("smiles", "inchi") if prefer == "smiles" else ("inchi", "smiles")
    if not any(texts.values()):
        return None
    try:
        from rdkit import Chem, rdBase
    except ImportError:
        return None
    quiet = rdBase.BlockLogs()  # no RDKit parse messages on stderr; restored when released
    mol = None
    for kind in order:
        if mol is None and texts[kind]:
            text = str(texts[kind])
            mol = Chem.MolFromSmiles(text) if kind == "smiles" else Chem.MolFromInchi(text)
    del quiet
    return mol if mol is not None and mol.GetNumAtoms() else None


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
