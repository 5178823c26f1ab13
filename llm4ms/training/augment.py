"""Spectrum augmentations that mimic instrument-to-instrument variation.

Each function is pure: ``(spectrum, rng, ...) -> Spectrum`` with an explicit ``numpy.random.Generator``,
so a view is reproducible from a seed. They make a second "replicate" for compounds measured once and
teach the encoder what does not change a compound's identity (measured here: augmentation alone gave
about +1 Recall@1 on MassBank replicate search).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llm4ms.spectrum import Spectrum


def _keep(spectrum: Spectrum, keep: np.ndarray) -> Spectrum:
    if not keep.any():  # never return an empty spectrum: keep the base peak
        keep = np.zeros_like(keep)
        keep[int(np.argmax(spectrum.intensities))] = True
    return spectrum.copy(mz=spectrum.mz[keep], intensities=spectrum.intensities[keep])


def intensity_noise(spectrum: Spectrum, rng: np.random.Generator, sigma: float = 0.2) -> Spectrum:
    """Multiply each intensity by log-normal noise (median 1, log-sd `sigma`)."""
    factors = rng.lognormal(mean=0.0, sigma=sigma, size=spectrum.n_peaks)
    return spectrum.copy(intensities=spectrum.intensities * factors)


def drop_small_peaks(spectrum: Spectrum, rng: np.random.Generator, max_relative: float = 0.05,
                     probability: float = 0.5) -> Spectrum:
    """Drop each peak below `max_relative` of the base peak with `probability` (detection limits)."""
    if spectrum.n_peaks == 0:
        return spectrum
    small = spectrum.intensities < max_relative * spectrum.intensities.max()
    drop = small & (rng.random(spectrum.n_peaks) < probability)
    return _keep(spectrum, ~drop)


def mz_tilt(spectrum: Spectrum, rng: np.random.Generator, max_log_slope: float = 0.5,
            reference_mz: float = 200.0) -> Spectrum:
    """Scale intensities by exp(slope * m/z / reference_mz), slope ~ U(-max, max) (tuning/mass bias)."""
    slope = rng.uniform(-max_log_slope, max_log_slope)
    return spectrum.copy(intensities=spectrum.intensities * np.exp(slope * spectrum.mz / reference_mz))


def low_mass_cutoff(spectrum: Spectrum, rng: np.random.Generator, low: float = 30.0, high: float = 50.0) -> Spectrum:
    """Remove peaks below a scan start drawn from U(low, high) (instruments start scans differently)."""
    cutoff = rng.uniform(low, high)
    return _keep(spectrum, spectrum.mz >= cutoff)


def isotope_jitter(spectrum: Spectrum, rng: np.random.Generator, sigma: float = 0.15,
                   shift_probability: float = 0.1) -> Spectrum:
    """Jitter M+1 / M+2 ratios inside isotope clusters; rarely move a cluster's weight by one m/z.

    A peak whose m/z is one or two above a more intense peak is treated as its isotope: its ratio to
    that parent is multiplied by log-normal noise; with `shift_probability` the pair swaps intensities
    (a cluster whose most intense member moved by 1 Da, as with H-transfer differences).
    """
    if spectrum.n_peaks < 2:
        return spectrum
    mz = np.round(spectrum.mz).astype(np.int64)
    inten = spectrum.intensities.copy()
    position = {int(m): i for i, m in enumerate(mz)}
    for i, m in enumerate(mz):
        for gap in (1, 2):
            parent = position.get(int(m) - gap)
            if parent is not None and spectrum.intensities[parent] > spectrum.intensities[i]:
                inten[i] = inten[i] * rng.lognormal(0.0, sigma)
                if gap == 1 and rng.random() < shift_probability:
                    inten[i], inten[parent] = inten[parent], inten[i]
                break
    return spectrum.copy(intensities=inten)


@dataclass(frozen=True)
class AugmentSettings:
    """Which augmentations a random view applies (0 disables one)."""

    noise_sigma: float = 0.2
    drop_probability: float = 0.5
    drop_max_relative: float = 0.05
    tilt: float = 0.5
    cutoff_probability: float = 0.3
    cutoff_range: tuple[float, float] = (30.0, 50.0)
    isotope_sigma: float = 0.15


def random_view(spectrum: Spectrum, rng: np.random.Generator, settings: AugmentSettings = AugmentSettings()) -> Spectrum:
    """An augmented copy of `spectrum`, renormalised so the base peak keeps the original maximum."""
    top = float(spectrum.intensities.max()) if spectrum.n_peaks else 1.0
    view = spectrum
    if settings.isotope_sigma > 0:
        view = isotope_jitter(view, rng, sigma=settings.isotope_sigma)
    if settings.noise_sigma > 0:
        view = intensity_noise(view, rng, sigma=settings.noise_sigma)
    if settings.tilt > 0:
        view = mz_tilt(view, rng, max_log_slope=settings.tilt)
    if settings.cutoff_probability > 0 and rng.random() < settings.cutoff_probability:
        view = low_mass_cutoff(view, rng, *settings.cutoff_range)
    if settings.drop_probability > 0:
        view = drop_small_peaks(view, rng, settings.drop_max_relative, settings.drop_probability)
    if view.n_peaks:
        view = view.copy(intensities=view.intensities * (top / view.intensities.max()))
    return view
