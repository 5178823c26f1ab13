"""In-silico EI spectra from structures (NEIMS-style MLP over Morgan count fingerprints).

>>> from llm4ms.predict import EIPredictor
>>> spectra = EIPredictor.from_pretrained().predict(["CCO", "c1ccccc1"])

Names are imported lazily so that featurisation workers do not pay for importing torch.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "EIPredictor": "llm4ms.predict.predictor",
    "PredictionReport": "llm4ms.predict.predictor",
    "OutputSettings": "llm4ms.predict.predictor",
    "FeaturizerSettings": "llm4ms.predict.featurize",
    "featurize_many": "llm4ms.predict.featurize",
    "predict_file": "llm4ms.predict.batch",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llm4ms.predict' has no attribute {name!r}")
