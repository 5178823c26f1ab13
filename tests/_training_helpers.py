"""Synthetic spectra and a tiny model for the training tests (no shared data, no network)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from llm4ms.spectrum import Spectrum


def synthetic_spectra(n_compounds: int = 12, replicates: int = 2, peaks: int = 12, seed: int = 0) -> list[Spectrum]:
    """Compounds with distinct peak sets; replicates differ by mild intensity noise."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_compounds):
        mz = np.sort(rng.choice(np.arange(30, 250), peaks, replace=False)).astype(float)
        base = rng.random(peaks) + 0.05
        for r in range(replicates):
            inten = base * rng.lognormal(0.0, 0.1, peaks)
            out.append(Spectrum(mz, inten / inten.max(), {"inchikey": f"{'ABCDEFGHIJKLMN'[:10]}{c:04d}-XYZ",
                                                          "name": f"compound {c}", "id": f"S{c}-{r}"}))
    return out


def tiny_base(folder: Path, texts: list[str]) -> Path:
    from llm4ms.model.tiny import build_tiny_model

    return build_tiny_model(folder, texts, hidden_size=32, num_layers=1, heads=2, vocab_size=300, seed=0)
