"""Which library spectra a query may match: the molecular-mass window, the MS/MS precursor window, the ion mode.

`SearchFilters` holds one search's filter settings, checked by `llm4ms.query_checks`; `CandidateFinder` holds
a library's sorted masses, precursor m/z values and ion modes (made on first use) and gives, per query, the
library indices it may match, or None where no filter restricts it (the index then searches everything).
The windows are `llm4ms.mass`'s (`mass_window`, `tolerance_window`): a precursor tolerance in ppm is a
window of half-width ppm * precursor / 1e6 around each query's own precursor m/z. Filters combine by
intersection. A query without a mass (precursor) is not restricted by the mass (precursor) filter; a library
spectrum without one never matches it. With no precursor tolerance the search is an analogue search: any
precursor may match.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from llm4ms.mass import Tolerance, mass_window, sort_by_mass, tolerance_window
from llm4ms.spectrum import Spectrum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchFilters:
    """One search's filters; None everywhere = no filter."""

    mass_tolerance: Optional[float] = None
    query_masses: Optional[Sequence[Optional[float]]] = None
    precursor_tolerance: Optional[Tolerance] = None
    ion_mode: Optional[str] = None

    @classmethod
    def checked(cls, k: Any, mass_tolerance: Any = None, query_masses: Optional[Sequence[Any]] = None,
                precursor_tolerance: Any = None, ion_mode: Any = None) -> "SearchFilters":
        """The filters of `Library.search` / `retrieve` arguments, checked by `llm4ms.query_checks` (with `k`)."""
        from llm4ms.query_checks import check_ion_mode, check_search_settings, check_tolerance

        check_search_settings(k, mass_tolerance=mass_tolerance, masses=query_masses,
                              precursor_tolerance=precursor_tolerance, ion_mode=ion_mode)
        return cls(mass_tolerance=None if mass_tolerance is None else float(mass_tolerance),
                   query_masses=query_masses,
                   precursor_tolerance=None if precursor_tolerance is None else
                   Tolerance(*check_tolerance(precursor_tolerance)),
                   ion_mode=None if ion_mode is None else check_ion_mode(ion_mode))

    @property
    def active(self) -> bool:
        return self.mass_tolerance is not None or self.precursor_tolerance is not None or self.ion_mode is not None


class CandidateFinder:
    """A library's masses, precursor m/z values and ion modes, sorted for the filters on first use.

    `masses` / `precursors`: float arrays (NaN where unknown); `ion_modes`: a function giving the per-spectrum
    ion modes ("positive", "negative" or None), read only when an ion-mode filter is asked for.
    """

    def __init__(self, masses: np.ndarray, precursors: Callable[[], np.ndarray],
                 ion_modes: Callable[[], Sequence[Optional[str]]]) -> None:
        self._masses = masses
        self._precursors = precursors
        self._ion_modes = ion_modes
        self._sorted: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._modes: dict[str, np.ndarray] = {}

    def _by(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._sorted:
            values = self._masses if name == "mass" else self._precursors()
            self._sorted[name] = sort_by_mass(values)
        return self._sorted[name]

    def mass(self, mass: float, tolerance: float) -> np.ndarray:
        """Library indices whose molecular mass is within `tolerance` Da of `mass` (ascending)."""
        return mass_window(*self._by("mass"), mass, tolerance)

    def precursor(self, mz: float, tolerance: Tolerance) -> np.ndarray:
        """Library indices whose precursor m/z is within `tolerance` (Da or ppm of `mz`) of `mz` (ascending)."""
        return tolerance_window(*self._by("precursor"), mz, tolerance)

    def ion_mode(self, mode: str) -> np.ndarray:
        """Library indices of spectra in ion mode `mode` (ascending)."""
        if mode not in self._modes:
            modes = np.asarray(list(self._ion_modes()), dtype=object)
            self._modes[mode] = np.flatnonzero(modes == mode)
        return self._modes[mode]

    def for_queries(self, queries: Sequence[Spectrum], filters: SearchFilters) -> list[Optional[np.ndarray]]:
        """Per query: the library indices it may match (ascending), or None when no filter restricts it.

        Queries restricted by the ion mode alone share one array (searched together).
        """
        shared = self.ion_mode(filters.ion_mode) if filters.ion_mode is not None else None
        out: list[Optional[np.ndarray]] = []
        no_mass = no_precursor = 0
        for i, query in enumerate(queries):
            cand: Optional[np.ndarray] = None
            if filters.mass_tolerance is not None:
                mass = filters.query_masses[i] if filters.query_masses is not None else query.molecular_mass
                if mass is None:
                    no_mass += 1
                else:
                    cand = self.mass(float(mass), filters.mass_tolerance)
            if filters.precursor_tolerance is not None:
                precursor = query.precursor_mz
                if precursor is None:
                    no_precursor += 1
                else:
                    window = self.precursor(float(precursor), filters.precursor_tolerance)
                    cand = window if cand is None else np.intersect1d(cand, window, assume_unique=True)
            if shared is not None:
                cand = shared if cand is None else np.intersect1d(cand, shared, assume_unique=True)
            out.append(cand)
        if no_mass:
            log.info("%d queries have no molecular mass; searched without the mass filter", no_mass)
        if no_precursor:
            log.info("%d queries have no precursor m/z; searched without the precursor filter", no_precursor)
        return out
