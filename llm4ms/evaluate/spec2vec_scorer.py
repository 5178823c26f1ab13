"""Spec2Vec baseline (Huber et al., PLoS Comput Biol 17, e1008724, 2021; iomega/spec2vec).

As FastEI did for EI spectra, a Word2Vec model is trained on the library itself, with one integer word
per nominal peak (`SpectrumDocument(..., n_decimals=0)` -> "peak@91"); a spectrum vector is the sum of
its word vectors weighted by intensity^0.5 (`spec2vec.vector_operations.calc_vector`). Vectors are
L2-normalised so search is one matrix product. Training runs single-threaded with a fixed seed and a
hash function that does not depend on PYTHONHASHSEED, so the same library gives the same model.

For accurate-mass MS/MS spectra, `Spec2VecHRScorer` (``spec2vec_hr``) keeps the recorded m/z and makes words with
two decimals (``SpectrumDocument(..., n_decimals=2)`` -> "peak@91.05"), as Spec2Vec was published for MS/MS.
"""
from __future__ import annotations

import logging
import zlib
from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.evaluate.scorers import Scorer
from llm4ms.similarity import nominal_peaks
from llm4ms.spectrum import Spectrum

logger = logging.getLogger(__name__)


def _stable_hash(text: str) -> int:
    """Deterministic replacement for Python's salted `hash` in gensim's vector seeding."""
    return zlib.crc32(text.encode("utf-8"))


def _documents(spectra: Sequence[Spectrum], n_decimals: int = 0) -> list:
    """One `SpectrumDocument` per spectrum: nominal peaks and integer words (`n_decimals` 0), else the recorded
    peaks (finite, intensity > 0, scaled to a base peak of 1) and words with `n_decimals` decimals."""
    from matchms import Spectrum as MatchmsSpectrum
    from spec2vec import SpectrumDocument

    docs = []
    for spectrum in spectra:
        if n_decimals == 0:
            mz, inten = nominal_peaks(spectrum)
        else:
            keep = np.isfinite(spectrum.mz) & np.isfinite(spectrum.intensities) & (spectrum.intensities > 0)
            mz, inten = spectrum.mz[keep], spectrum.intensities[keep]
            inten = inten / inten.max() if inten.size else inten
        mm = MatchmsSpectrum(mz=mz.astype(float), intensities=inten.astype(float), metadata={},
                             metadata_harmonization=False)
        docs.append(SpectrumDocument(mm, n_decimals=n_decimals))
    return docs


class Spec2VecScorer(Scorer):
    """Spec2Vec with a Word2Vec model trained on the library documents (or a given gensim model)."""

    name = "spec2vec"

    def __init__(self, iterations: int = 10, vector_size: int = 300, window: int = 500,
                 intensity_weighting_power: float = 0.5, allowed_missing_percentage: float = 100.0,
                 seed: int = 42, workers: int = 1, model: Any = None, chunk_size: int = 1024,
                 n_decimals: int = 0) -> None:
        super().__init__(chunk_size)
        if not isinstance(n_decimals, int) or n_decimals < 0:
            from llm4ms.errors import ConfigError

            raise ConfigError(f"spec2vec n_decimals must be a whole number >= 0, not {n_decimals!r}")
        self.n_decimals = n_decimals
        self.iterations = iterations
        self.vector_size = vector_size
        self.window = window
        self.intensity_weighting_power = intensity_weighting_power
        self.allowed_missing_percentage = allowed_missing_percentage
        self.seed = seed
        self.workers = workers
        self.model = model
        self._library: Optional[np.ndarray] = None

    def settings(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "vector_size": self.vector_size, "window": self.window,
                "intensity_weighting_power": self.intensity_weighting_power,
                "words": "peak@{int mz}" if self.n_decimals == 0 else f"peak@{{mz:.{self.n_decimals}f}}",
                "trained_on": "library" if self._trained_here else "given model",
                "seed": self.seed}

    _trained_here = False

    def fit(self, library: Sequence[Spectrum]) -> "Spec2VecScorer":
        from spec2vec.model_building import train_new_word2vec_model

        docs = _documents(library, self.n_decimals)
        if self.model is None:
            gensim_logger = logging.getLogger("gensim")
            level = gensim_logger.level
            gensim_logger.setLevel(logging.WARNING)  # per-epoch INFO lines drown the evaluation log
            try:
                self.model = train_new_word2vec_model(
                    docs, iterations=self.iterations, vector_size=self.vector_size, window=self.window,
                    workers=self.workers, seed=self.seed, hashfxn=_stable_hash, progress_logger=False)
            finally:
                gensim_logger.setLevel(level)
            self._trained_here = True
        self._library = self._vectors(docs)
        self.n_library = self._library.shape[0]
        return self

    def embed(self, spectra: Sequence[Spectrum]) -> np.ndarray:
        """L2-normalised Spec2Vec vectors (n, vector_size); spectra with no known word give zeros."""
        return self._vectors(_documents(spectra, self.n_decimals))

    def _vectors(self, docs: list) -> np.ndarray:
        from spec2vec.vector_operations import calc_vector

        dim = self.model.wv.vector_size
        out = np.zeros((len(docs), dim), dtype=np.float32)
        spec2vec_logger = logging.getLogger("spec2vec")
        level = spec2vec_logger.level
        spec2vec_logger.setLevel(logging.ERROR)  # one warning per unknown-word spectrum is noise here
        try:
            for i, doc in enumerate(docs):
                if not doc.words:
                    continue
                out[i] = calc_vector(self.model, doc, self.intensity_weighting_power,
                                     self.allowed_missing_percentage)
        finally:
            spec2vec_logger.setLevel(level)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        if self._library is None:
            raise RuntimeError("call fit(library) before searching")
        return self.embed(queries) @ self._library.T


class Spec2VecHRScorer(Spec2VecScorer):
    """Spec2Vec for accurate-mass MS/MS: words with two decimals (``peak@91.05``), trained on the library."""

    name = "spec2vec_hr"

    def __init__(self, n_decimals: int = 2, **options: Any) -> None:
        super().__init__(n_decimals=n_decimals, **options)
