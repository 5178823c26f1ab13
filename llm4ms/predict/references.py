"""Measured reference spectra that pull each prediction towards its nearest measured analogues.

Why: the predictor learns from a few thousand compounds with heavy dropout, so it keeps the broad rules of
EI fragmentation and loses the details a close analogue's measured spectrum shows. Mixing the predicted
spectrum with the similarity-weighted mean of the k most similar reference compounds' measured spectra
(Tanimoto on the predictor's own Morgan bits) brings those details back; on the VALIDATION compounds it
raised the sqrt-cosine Recall@1 among the predictions by about 3 points (benchmarks/RESULTS.md §4d).

References are data the user has (MassBank, NIST or an in-house library): `llm4ms predict --references`.
None are bundled: the MassBank EI set is mostly CC BY-NC-SA, which this repository does not redistribute.
A reference compound is matched by structure only, so a library of 70 eV spectra is what fits.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.predict.featurize import FeaturizerSettings
from llm4ms.spectrum import Spectrum


@dataclass(frozen=True)
class BlendSettings:
    """How much of the neighbours goes into a prediction (chosen on the validation split)."""

    k: int = 5                 # nearest reference compounds
    temperature: float = 0.1   # softmax over Tanimoto similarity: 0.1 = a neighbour 0.1 less similar counts e^-1
    weight: float = 0.2        # share of the (unit-length, sqrt-intensity) neighbour mean in the result

    def __post_init__(self) -> None:
        if self.k < 1 or self.temperature <= 0 or not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"invalid blend settings {self}: need k >= 1, temperature > 0, 0 <= weight <= 1")


@dataclass
class ReferenceSpectra:
    """One row per reference compound: InChIKey first block, Morgan bits, measured sqrt-intensity bins."""

    keys: list[str]
    bits: np.ndarray       # (n, n_bits) float32, 0/1
    targets: np.ndarray    # (n, n_bins) float32, sqrt intensities, max 1, replicates averaged
    settings: BlendSettings = BlendSettings()
    n_spectra: int = 0
    n_tandem_left_out: int = 0

    def __post_init__(self) -> None:
        if not len(self.keys):
            raise ConfigError("no usable reference spectrum (each needs a structure: SMILES and InChIKey)")
        self._bit_counts = self.bits.sum(axis=1)
        h = hashlib.sha256()
        h.update("\n".join(self.keys).encode())
        h.update(np.ascontiguousarray(self.targets, dtype=np.float32).tobytes())
        h.update(repr(sorted(asdict(self.settings).items())).encode())
        self._identity = h.hexdigest()[:8]

    @classmethod
    def from_spectra(cls, spectra: Iterable[Spectrum], featurizer: FeaturizerSettings, max_mz: int,
                     settings: BlendSettings = BlendSettings(), n_jobs: int = 1) -> "ReferenceSpectra":
        """Average the replicates of each compound (as training does) and keep its fingerprint bits."""
        from llm4ms.predict.training import build_compound_table

        usable, tandem = [], 0
        for s in spectra:
            if is_tandem(s):
                tandem += 1
            elif s.inchikey14 and s.smiles:
                usable.append(s)
        if not usable:
            raise ConfigError("no EI reference spectrum with a structure (each needs SMILES and InChIKey; "
                              f"{tandem} MS/MS spectra left out)" if tandem else
                              "no reference spectrum with a structure (each needs SMILES and InChIKey)")
        table = build_compound_table(usable, featurizer, max_mz=max_mz, n_jobs=n_jobs)
        bits = (table.features[:, :featurizer.n_bits] > 0).astype(np.float32)
        return cls(list(table.keys), bits, table.targets, settings, table.n_spectra, tandem)

    @property
    def identity(self) -> str:
        """Short checksum of the reference rows and blend settings (part of the predictor's identity)."""
        return self._identity

    def neighbours(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices and Tanimoto similarities (batch, k) of each query's k most similar references."""
        inter = bits @ self.bits.T
        union = bits.sum(axis=1, keepdims=True) + self._bit_counts[None, :] - inter
        sim = inter / np.maximum(union, 1.0)
        k = min(self.settings.k, len(self.keys))
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        return idx, np.take_along_axis(sim, idx, axis=1)

    def blend(self, sqrt_bins: np.ndarray, features: np.ndarray, masses: np.ndarray,
              mass_margin: int) -> np.ndarray:
        """(1 - w) * prediction + w * neighbour mean, both unit length in sqrt space, masked to m/z <= M + margin."""
        n_bins = min(sqrt_bins.shape[1], self.targets.shape[1])
        bits = (features[:, :self.bits.shape[1]] > 0).astype(np.float32)
        idx, sim = self.neighbours(bits)
        w = np.exp((sim - sim.max(axis=1, keepdims=True)) / self.settings.temperature)
        w /= w.sum(axis=1, keepdims=True)
        neighbour = np.einsum("bk,bkn->bn", w, self.targets[idx][:, :, :n_bins])
        out = np.zeros_like(sqrt_bins)
        out[:, :n_bins] = (1.0 - self.settings.weight) * _unit(sqrt_bins[:, :n_bins]) \
            + self.settings.weight * _unit(neighbour)
        out *= np.arange(out.shape[1])[None, :] <= (np.asarray(masses)[:, None] + mass_margin)
        return out


def is_tandem(spectrum: Spectrum) -> bool:
    """An MS/MS spectrum (a precursor m/z or MS level 2+): no reference for a 70 eV EI prediction."""
    level = spectrum.get("ms_level")
    return spectrum.precursor_mz is not None or (isinstance(level, int) and level >= 2)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

