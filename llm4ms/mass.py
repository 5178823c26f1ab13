"""The mass filters: which library entries lie within a tolerance of a query's mass or precursor m/z.

One implementation for library search (`llm4ms.library`) and evaluation (`llm4ms.evaluate`): sort the
known masses once (`sort_by_mass`), then each query is two binary searches (`mass_window`).
Masses come from `Spectrum.molecular_mass` (exact mass, else molecular weight); unknown masses are NaN
and never match. The MS/MS precursor filter uses the same window over library precursor m/z values, with a
`Tolerance` in Da or ppm (`Tolerance.half_width`: ppm * m/z / 1e6 for each query).
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Optional, Sequence

import numpy as np

from llm4ms.spectrum import Spectrum


class Tolerance(NamedTuple):
    """A mass tolerance: `value` in ``"Da"`` or ``"ppm"`` (of the m/z it is applied to).

    Build one from text with ``Tolerance(*llm4ms.query_checks.check_tolerance("10ppm"))``.
    """

    value: float
    unit: str

    def half_width(self, mz: float) -> float:
        """The window's half-width in Da around `mz`."""
        return self.value * abs(mz) / 1e6 if self.unit == "ppm" else self.value

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"


def tolerance_window(sorted_values: np.ndarray, order: np.ndarray, mz: float, tolerance: Tolerance) -> np.ndarray:
    """`mass_window` with a `Tolerance`: indices whose value is within `tolerance` of `mz` (ascending)."""
    return mass_window(sorted_values, order, mz, tolerance.half_width(mz))


def spectrum_masses(spectra: Iterable[Spectrum]) -> np.ndarray:
    """Molecular masses (float64) of `spectra`, NaN where unknown."""
    return np.array([_mass(s) for s in spectra], dtype=np.float64)


def sort_by_mass(masses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted_masses, order)``: the known (finite) masses ascending and their indices (stable sort)."""
    masses = np.asarray(masses, dtype=np.float64)
    known = np.flatnonzero(np.isfinite(masses))
    order = known[np.argsort(masses[known], kind="stable")]
    return masses[order], order


def mass_window(sorted_masses: np.ndarray, order: np.ndarray, mass: float, tolerance: float) -> np.ndarray:
    """Indices (ascending) whose mass is within `tolerance` Da of `mass`, from `sort_by_mass` output."""
    lo = np.searchsorted(sorted_masses, mass - tolerance, side="left")
    hi = np.searchsorted(sorted_masses, mass + tolerance, side="right")
    return np.sort(order[lo:hi])


def mass_candidates(queries: Sequence[Spectrum], library: Sequence[Spectrum],
                    tolerance: float = 0.5) -> list[Optional[np.ndarray]]:
    """Per query, the library indices whose molecular mass is within `tolerance` Da of the query's.

    A query with no known mass gets None (no restriction); a library spectrum with no mass is never a
    candidate. Indices are returned in ascending order.
    """
    sorted_masses, order = sort_by_mass(spectrum_masses(library))
    out: list[Optional[np.ndarray]] = []
    for query in queries:
        mass = _mass(query)
        out.append(mass_window(sorted_masses, order, mass, tolerance) if np.isfinite(mass) else None)
    return out


def _mass(spectrum: Spectrum) -> float:
    mass = spectrum.molecular_mass
    return float(mass) if mass is not None else float("nan")
