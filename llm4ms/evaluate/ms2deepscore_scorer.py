"""MS2DeepScore baseline (Huber et al., J Cheminform 13, 84, 2021; de Jonge et al. 2024; package ms2deepscore).

A Siamese network embeds each MS/MS spectrum; the predicted structural similarity of two spectra is the cosine
of their embeddings, so library search is one matrix product per query chunk. The model is not trained here:
pass ``model_path=`` a model file you have (the published ones are downloaded from Zenodo, e.g. the
``ms2deepscore_model.pt`` of ms2deepscore 2.x). The package is optional and imported when the scorer is made;
a missing package or model file is a one-line `ConfigError`.

Peaks go in as recorded with the precursor m/z and ion mode (ms2deepscore 2.x uses both as inputs).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.evaluate.scorers import Scorer
from llm4ms.spectrum import Spectrum

INSTALL_HINT = "pip install ms2deepscore (it also needs onnxruntime)"


def _matchms_spectrum(spectrum: Spectrum):
    from matchms import Spectrum as MatchmsSpectrum

    keep = np.isfinite(spectrum.mz) & np.isfinite(spectrum.intensities) & (spectrum.intensities > 0)
    meta: dict[str, Any] = {}
    if spectrum.precursor_mz is not None:
        meta["precursor_mz"] = float(spectrum.precursor_mz)
    if spectrum.ion_mode is not None:
        meta["ionmode"] = spectrum.ion_mode
    return MatchmsSpectrum(mz=spectrum.mz[keep].astype(float), intensities=spectrum.intensities[keep].astype(float),
                           metadata=meta, metadata_harmonization=False)


class MS2DeepScoreScorer(Scorer):
    """Cosine of MS2DeepScore embeddings from the model at `model_path` (a file you provide)."""

    name = "ms2deepscore"

    def __init__(self, model_path: Optional[str] = None, batch_size: int = 256, chunk_size: int = 1024,
                 model: Any = None) -> None:
        super().__init__(chunk_size)
        if model is None:
            try:
                from ms2deepscore.models import load_model
            except ImportError as err:
                raise ConfigError(f"method 'ms2deepscore' needs the ms2deepscore package ({err}): "
                                  f"{INSTALL_HINT}") from None
            if not model_path:
                raise ConfigError("method 'ms2deepscore' needs model_path= (a trained MS2DeepScore model file; "
                                  "the published ones are on Zenodo)")
            if not Path(model_path).is_file():
                raise ConfigError(f"{model_path}: no such MS2DeepScore model file")
            try:
                model = load_model(str(model_path))
            except Exception as err:  # noqa: BLE001 - any load failure is a bad model file for the user
                raise ConfigError(f"{model_path}: not a loadable MS2DeepScore model "
                                  f"({type(err).__name__}: {str(err)[:120]})") from None
        self.model = model
        self.model_path = str(model_path) if model_path else None
        self.batch_size = batch_size
        self._library: Optional[np.ndarray] = None

    def settings(self) -> dict[str, Any]:
        from llm4ms.data.shared import portable_path

        return {"model": portable_path(self.model_path) if self.model_path else "given model object",
                "search": "exact cosine of embeddings"}

    def embed(self, spectra: Sequence[Spectrum]) -> np.ndarray:
        """L2-normalised MS2DeepScore embeddings (n, dim)."""
        from ms2deepscore import MS2DeepScore

        similarity = MS2DeepScore(self.model, progress_bar=False)
        emb = np.asarray(similarity.get_embedding_array([_matchms_spectrum(s) for s in spectra],
                                                        batch_size=self.batch_size, progress_bar=False),
                         dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        np.divide(emb, norms, out=emb, where=norms > 0)
        return emb

    def fit(self, library: Sequence[Spectrum]) -> "MS2DeepScoreScorer":
        self._library = self.embed(library)
        self.n_library = self._library.shape[0]
        return self

    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        if self._library is None:
            raise RuntimeError("call fit(library) before searching")
        return self.embed(queries) @ self._library.T
