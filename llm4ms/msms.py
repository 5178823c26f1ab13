"""Cleaning tandem (MS/MS) spectra before they are embedded or searched: one function, `clean_msms`.

High-resolution MS/MS spectra carry what EI spectra do not: the precursor ion itself (and its isotopes) at the
top of the m/z range, a floor of tiny noise peaks, and near-duplicate peaks from centroiding one ion twice.
All three make two spectra of one compound look different. The chain runs matchms's own filters on
`Spectrum.to_matchms()` and comes back through `Spectrum.from_matchms()`; m/z values are never rounded.

The steps, in order (settings of `MSMSCleaning`, all documented there):

1. peaks with a non-finite value or intensity <= 0 dropped (`llm4ms.spectrum.remove_nonpositive`);
2. near-duplicate peaks within `merge_tolerance` of a more intense one dropped, the most intense kept
   (`select_near_duplicates`; matchms has no such filter);
3. peaks above the precursor minus `precursor_window` Da removed (matchms
   ``remove_peaks_relative_to_precursor_mz``; 1.6 Da as in Li & Fiehn, Nat Methods 2023); skipped for a
   spectrum without a precursor m/z unless `require_precursor`;
4. peaks below `noise` x the base peak removed (matchms ``select_by_relative_intensity``);
5. only the `max_peaks` most intense kept when set (matchms ``reduce_to_number_of_peaks``);
6. intensities scaled to a base peak of 1 (matchms ``normalize_intensities``);
7. None when fewer than `min_peaks` peaks remain (matchms ``require_minimum_number_of_peaks``).

The metadata is passed on unchanged: matchms's harmonisation may derive values (a parent mass from the
precursor and adduct) that must not look recorded. matchms is the optional extra ``llm4ms[msms]``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum, remove_nonpositive


@dataclass(frozen=True)
class MSMSCleaning:
    """Settings of `clean_msms` (plain data: `to_dict`, and `clean_msms(s, **overrides)`)."""

    #: Da below the precursor m/z above which peaks are removed (the precursor and its isotopes go too)
    precursor_window: float = 1.6
    #: drop spectra without a precursor m/z (else step 3 is skipped for them)
    require_precursor: bool = False
    #: relative noise floor: peaks below this fraction of the base peak are removed
    noise: float = 0.01
    #: peaks closer than this to a more intense peak are near-duplicates; "Da" or "ppm" (of the peak's m/z)
    merge_tolerance: float = 0.005
    merge_unit: str = "Da"
    #: keep at most this many peaks (the most intense); None keeps all
    max_peaks: Optional[int] = None
    #: fewer peaks than this after cleaning: the spectrum is dropped (None returned)
    min_peaks: int = 1

    def __post_init__(self) -> None:
        if not (np.isfinite(self.precursor_window) and np.isfinite(self.merge_tolerance)):
            raise ConfigError("clean_msms: precursor_window and merge_tolerance must be finite")
        if self.merge_unit not in ("Da", "ppm"):
            raise ConfigError(f"clean_msms: merge_unit must be 'Da' or 'ppm', not {self.merge_unit!r}")
        if not 0.0 <= self.noise < 1.0 or self.merge_tolerance < 0:
            raise ConfigError("clean_msms: noise must lie in [0, 1) and merge_tolerance be >= 0")
        if self.min_peaks < 0 or (self.max_peaks is not None and self.max_peaks < 1):
            raise ConfigError("clean_msms: min_peaks must be >= 0 and max_peaks >= 1 (or None)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_CLEANING = MSMSCleaning()


def clean_msms(spectrum: Spectrum, settings: Optional[MSMSCleaning] = None, **overrides: Any) -> Optional[Spectrum]:
    """The cleaned copy of an MS/MS `spectrum` (see the module's steps), or None when nothing usable is left.

    `settings` defaults to `DEFAULT_CLEANING`; keyword `overrides` replace single settings
    (``clean_msms(s, noise=0.05)``). Needs matchms (``pip install "llm4ms[msms]"``).
    """
    chosen = replace(settings or DEFAULT_CLEANING, **overrides) if overrides else (settings or DEFAULT_CLEANING)
    try:
        from matchms import filtering as mf
    except ImportError:  # pragma: no cover - matchms is in the test extra
        raise ConfigError('clean_msms needs matchms: pip install "llm4ms[msms]"') from None
    precursor = spectrum.precursor_mz
    if precursor is None and chosen.require_precursor:
        return None
    peaks = select_near_duplicates(remove_nonpositive(spectrum), chosen.merge_tolerance, chosen.merge_unit)
    # only the peaks and the precursor travel: harmonising the whole record costs ms and changes nothing here
    ms = peaks.copy(metadata={} if precursor is None else {"precursor_mz": precursor}).to_matchms()
    if precursor is not None:
        ms = mf.remove_peaks_relative_to_precursor_mz(ms, offset_to_precursor=-chosen.precursor_window)
    if len(ms.peaks) and chosen.noise > 0:
        ms = mf.select_by_relative_intensity(ms, intensity_from=chosen.noise)
    if chosen.max_peaks is not None:
        ms = mf.reduce_to_number_of_peaks(ms, n_max=chosen.max_peaks)
    ms = mf.normalize_intensities(ms)
    ms = mf.require_minimum_number_of_peaks(ms, n_required=max(chosen.min_peaks, 1))
    if ms is None:
        return None
    cleaned = Spectrum.from_matchms(ms)
    return cleaned.copy(metadata=dict(spectrum.metadata))


def select_near_duplicates(spectrum: Spectrum, tolerance: float, unit: str = "Da") -> Spectrum:
    """`spectrum` without near-duplicate peaks: of peaks within `tolerance` (Da, or ppm of the m/z) of each
    other, only the most intense is kept, at its own m/z and intensity (nothing is averaged or rounded).

    Greedy from the most intense peak down, so a cluster keeps its apex and a weak shoulder never pulls the
    apex's m/z. Ties keep the lower m/z.
    """
    if spectrum.n_peaks < 2 or tolerance <= 0:
        return spectrum
    mz, inten = spectrum.mz, spectrum.intensities
    width = tolerance * mz / 1e6 if unit == "ppm" else np.full(mz.size, float(tolerance))
    if not np.any(np.diff(mz) <= np.maximum(width[1:], width[:-1])):
        return spectrum  # no two neighbours close: nothing to select
    kept = np.zeros(mz.size, dtype=bool)
    taken = np.zeros(mz.size, dtype=bool)
    for i in np.lexsort((mz, -inten)):  # most intense first, ties by lower m/z
        if taken[i]:
            continue
        kept[i] = True
        lo = np.searchsorted(mz, mz[i] - width[i], side="left")
        hi = np.searchsorted(mz, mz[i] + width[i], side="right")
        taken[lo:hi] = True
    return spectrum.copy(mz=mz[kept], intensities=inten[kept])
