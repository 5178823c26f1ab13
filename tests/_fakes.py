"""A deterministic stand-in encoder for testing the store and search without a language model."""
from __future__ import annotations

import numpy as np

from llm4ms.spectrum import Spectrum, binned_vector


class FakeEncoder:
    """Projects sqrt-intensity nominal-mass vectors to `dim` dimensions with a fixed random matrix."""

    def __init__(self, dim: int = 32, seed: int = 0, max_mz: int = 500, fail_after: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.projection = rng.standard_normal((max_mz + 1, dim)).astype(np.float32)
        self.dim = dim
        self.max_mz = max_mz
        self.identity = f"fake-{dim}-{seed}"
        self.name_or_path = None
        self.encoded = 0
        self.calls = 0
        self.fail_after = fail_after

    def encode(self, spectra, batch_size: int = 64, show_progress=None) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        spectra = list(spectra)
        self.encoded += len(spectra)
        x = np.stack([binned_vector(s, self.max_mz, power=0.5) for s in spectra]) @ self.projection
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_spectra(n: int, seed: int = 0, max_mz: int = 300) -> list[Spectrum]:
    """`n` random EI-like spectra with names, InChIKey-like keys and masses."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(5, 40))
        mz = np.sort(rng.choice(np.arange(15, max_mz), size=k, replace=False)).astype(float)
        inten = rng.uniform(1, 999, size=k)
        key = f"{i:014d}".replace("0", "A")[:14]
        out.append(Spectrum(mz, inten, {"id": f"S{i}", "name": f"compound {i}",
                                         "inchikey": f"{key}-UHFFFAOYSA-N", "formula": "C1",
                                         "exact_mass": float(mz.max() + rng.uniform(0, 30))}))
    return out
