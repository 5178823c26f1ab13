"""Turn a `Spectrum` into the text an LLM reads.

Two styles share one settings dataclass so a model folder can record exactly how its inputs were made:

- ``style="llm4ms"`` reproduces the published LLM4MS template word for word (Xu et al. 2025): intensities
  scaled to max 1, peaks >= 0.005 kept, stable sort by intensity, top 30, labels ``base_peak@`` /
  ``max_peak@`` / ``extra_peak@`` and a trailing ``max_peak@`` with the largest kept m/z (int() truncation).
- ``style="words"`` is ours: short space-separated ``mz[:intensity]`` words, ordered by m/z or intensity,
  with optional precursor and neutral-loss words. Short texts mean fewer tokens, and tokens cost time.

Every setting is plain data (`to_dict` / `from_dict`), and the output is a pure function of the spectrum.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum

LLM4MS_PREFIX = "Instruction: This is a mass spectra:  Key Peaks: "

_STYLES = ("llm4ms", "words")
_MZ_MODES = ("round", "truncate")
_INTENSITY_MODES = ("none", "rank", "bins", "logbins")
_ORDERS = ("intensity", "mz")
_LOSS_REFERENCES = ("auto", "precursor", "molecular")


@dataclass(frozen=True)
class Textualizer:
    """Settings that turn a spectrum into text; call the instance on a `Spectrum`."""

    style: str = "words"
    top_n: int = 40
    min_relative: float = 0.005  # keep peaks with intensity >= this fraction of the base peak
    mz_mode: str = "round"  # "round" (half up) or "truncate" (int(), as LLM4MS)
    mz_decimals: int = 0  # >0 only for high-resolution MS/MS
    intensity: str = "bins"  # "none", "rank", "bins" (linear) or "logbins"
    n_bins: int = 10
    log_floor: float = 1e-3  # relative intensity mapped to the lowest log bin
    order: str = "mz"  # order of the peak words: "mz" or "intensity"
    n_losses: int = 0  # neutral losses of the most intense peaks below the reference mass
    loss_reference: str = "auto"  # "precursor", "molecular" (EI molecular ion) or "auto"
    include_precursor: bool = False  # precursor m/z word for MS/MS
    prefix: str = ""  # optional instruction text placed first
    separator: str = " "

    def __post_init__(self) -> None:
        checks = (("style", self.style, _STYLES), ("mz_mode", self.mz_mode, _MZ_MODES),
                  ("intensity", self.intensity, _INTENSITY_MODES), ("order", self.order, _ORDERS),
                  ("loss_reference", self.loss_reference, _LOSS_REFERENCES))
        for name, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"textualizer: {name}={value!r} is not one of {', '.join(allowed)}")
        if self.top_n < 1 or self.n_bins < 1 or self.mz_decimals < 0 or self.n_losses < 0:
            raise ConfigError("textualizer: top_n and n_bins must be >= 1; mz_decimals and n_losses >= 0")
        if not 0.0 <= self.min_relative <= 1.0 or not 0.0 < self.log_floor < 1.0:
            raise ConfigError("textualizer: min_relative must lie in [0, 1] and log_floor in (0, 1)")

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Textualizer":
        """A named preset (see `PRESETS`), optionally with some settings replaced."""
        if name not in PRESETS:
            raise ConfigError(f"unknown textualizer preset {name!r}; choose one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **overrides) if overrides else PRESETS[name]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Textualizer":
        """Inverse of `to_dict`; also accepts ``{"preset": name, ...overrides}``."""
        data = dict(data)
        preset = data.pop("preset", None)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"textualizer: unknown setting(s) {', '.join(unknown)}")
        if preset is not None:
            return cls.from_preset(preset, **data)
        return cls(**data)

    @property
    def preset_name(self) -> Optional[str]:
        """Name of the preset these settings equal, if any (for model cards)."""
        for name, preset in PRESETS.items():
            if preset == self:
                return name
        return None

    # ---- text -----------------------------------------------------------------------------------
    def __call__(self, spectrum: Spectrum) -> str:
        mz, rel = _relative_peaks(spectrum, self.min_relative)
        if self.style == "llm4ms":
            return _llm4ms_text(mz, rel, self.top_n, self.prefix)  # always int() m/z, as published
        return self._words_text(spectrum, mz, rel)

    def _words_text(self, spectrum: Spectrum, mz: np.ndarray, rel: np.ndarray) -> str:
        by_intensity = np.argsort(-rel, kind="stable")[: self.top_n]  # ties keep ascending m/z
        chosen = by_intensity if self.order == "intensity" else np.sort(by_intensity)
        rank_of = {index: rank for rank, index in enumerate(by_intensity.tolist(), start=1)}

        words: list[str] = []
        precursor = spectrum.precursor_mz
        if self.include_precursor and precursor is not None:
            words.append(f"P{self._mz(precursor)}")
        for i in chosen.tolist():
            word = self._mz(mz[i])
            if self.intensity == "rank":
                word += f":{rank_of[i]}"
            elif self.intensity in ("bins", "logbins"):
                word += f":{self._bin(rel[i])}"
            words.append(word)
        if self.n_losses:
            words.extend(self._loss_words(spectrum, mz, by_intensity))
        text = self.separator.join(words)
        return f"{self.prefix}{text}" if self.prefix else text

    def _mz(self, value: float) -> str:
        if self.mz_mode == "truncate":
            scale = 10 ** self.mz_decimals
            number = math.trunc(value * scale) / scale
        else:
            number = round_half_up(value, self.mz_decimals)
        return f"{number:.{self.mz_decimals}f}"

    def _bin(self, relative: float) -> int:
        """Intensity bin 0 .. n_bins-1 (base peak in the top bin)."""
        if self.intensity == "logbins":
            position = (math.log10(max(relative, self.log_floor)) - math.log10(self.log_floor)) / -math.log10(
                self.log_floor)
        else:
            position = relative
        return min(self.n_bins - 1, int(math.floor(position * self.n_bins)))

    def _loss_words(self, spectrum: Spectrum, mz: np.ndarray, by_intensity: np.ndarray) -> list[str]:
        reference = self._loss_reference_mass(spectrum)
        if reference is None:
            return []
        out: list[str] = []
        for i in by_intensity.tolist():
            loss = reference - mz[i]
            if loss >= 0.5:  # skip the reference peak itself
                out.append(f"L{self._mz(loss)}")
            if len(out) == self.n_losses:
                break
        return out

    def _loss_reference_mass(self, spectrum: Spectrum) -> Optional[float]:
        if self.loss_reference in ("precursor", "auto") and spectrum.precursor_mz is not None:
            return spectrum.precursor_mz
        if self.loss_reference in ("molecular", "auto"):
            return spectrum.molecular_mass
        return None


def round_half_up(value: float, decimals: int = 0) -> float:
    """Round half away from zero for positive m/z (Python's round() is banker's rounding)."""
    scale = 10 ** decimals
    return math.floor(value * scale + 0.5) / scale


def _relative_peaks(spectrum: Spectrum, min_relative: float) -> tuple[np.ndarray, np.ndarray]:
    """Finite, positive peaks scaled to max 1, those >= `min_relative` kept, in ascending m/z."""
    mz, inten = spectrum.mz, spectrum.intensities
    keep = np.isfinite(mz) & np.isfinite(inten) & (inten > 0)
    mz, inten = mz[keep], inten[keep]
    if mz.size == 0:
        return mz, inten
    rel = inten / inten.max()
    keep = rel >= min_relative
    return mz[keep], rel[keep]


def _llm4ms_text(mz: np.ndarray, rel: np.ndarray, top_n: int, prefix: str) -> str:
    """The published LLM4MS words; `mz` must be in ascending order so the stable sort keeps ties by m/z."""
    if mz.size == 0:
        return prefix
    order = np.argsort(-rel, kind="stable")[:top_n]
    words = []
    for position, i in enumerate(order.tolist()):
        label = "base_peak" if position == 0 else "max_peak" if position < 3 else "extra_peak"
        words.append(f"{label}@{int(mz[i])}")
    words.append(f"max_peak@{int(mz.max())}")
    return prefix + ",".join(words)


#: The preset a new encoder gets when none is named (LLM base models; peak-token models use their own).
DEFAULT_PRESET = "llm4ms-v2"

#: Named settings. "llm4ms" is the published template; the others are ours.
PRESETS: dict[str, Textualizer] = {
    "llm4ms": Textualizer(style="llm4ms", top_n=30, min_relative=0.005, mz_mode="truncate",
                          intensity="none", order="intensity", prefix=LLM4MS_PREFIX, separator=","),
    # compact: m/z-sorted "mz:bin" words of the top 40 peaks, 10 linear intensity bins
    "llm4ms-v2": Textualizer(style="words", top_n=40, min_relative=0.005, intensity="bins", n_bins=10,
                             order="mz"),
    # log bins keep small peaks (often the most specific ones) distinguishable
    "llm4ms-v2-log": Textualizer(style="words", top_n=40, min_relative=0.001, intensity="logbins",
                                 n_bins=10, order="mz"),
    # intensity order carried by position only, like LLM4MS but compact and rounded
    "mz-rank": Textualizer(style="words", top_n=30, min_relative=0.005, intensity="none", order="intensity"),
    # EI with the molecular ion known: add the 5 main neutral losses
    "ei-losses": Textualizer(style="words", top_n=40, min_relative=0.005, intensity="bins", n_bins=10,
                             order="mz", n_losses=5, loss_reference="molecular"),
    # peak-token models (llm4ms.model.peak_vocab): top 40 peaks >= 0.2 % of the base peak, 10 log bins
    "peaks": Textualizer(style="words", top_n=40, min_relative=0.002, intensity="logbins", n_bins=10,
                         log_floor=0.002, order="mz"),
    # peak-token models for MS/MS: integer m/z words (the accurate m/z is kept for the fused accurate-mass
    # score), top 50 fragments >= 1 % (the cleaning's noise floor), 10 log bins down to 1 %
    "msms-peaks": Textualizer(style="words", top_n=50, min_relative=0.01, intensity="logbins", n_bins=10,
                              log_floor=0.01, order="mz"),
    # MS/MS: precursor word, 2-decimal m/z, neutral losses from the precursor
    "msms": Textualizer(style="words", top_n=30, min_relative=0.01, mz_decimals=2, intensity="bins",
                        n_bins=10, order="mz", n_losses=5, loss_reference="precursor",
                        include_precursor=True),
}
