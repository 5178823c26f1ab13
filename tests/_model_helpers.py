"""Shared pieces for the model tests: random EI-like spectra and a tiny Llama built offline."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from llm4ms.spectrum import Spectrum  # noqa: E402
from llm4ms.text import Textualizer  # noqa: E402


def random_spectra(n: int, seed: int = 0, max_peaks: int = 40) -> list[Spectrum]:
    """Spectra with varied peak counts (so texts have different lengths)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(1, max_peaks))
        mz = np.sort(rng.choice(np.arange(15, 400), size=k, replace=False)).astype(float)
        out.append(Spectrum(mz, rng.random(k) * 100 + 0.5, {"id": f"s{i}", "exact_mass": float(mz[-1])}))
    return out


def build_tiny(out_dir: Path, preset: str = "llm4ms-v2", **kwargs) -> Path:
    from llm4ms.model.tiny import build_tiny_model

    t = Textualizer.from_preset(preset)
    texts = [t(s) for s in random_spectra(300, seed=123)]
    return build_tiny_model(out_dir, texts, vocab_size=400, **kwargs)
