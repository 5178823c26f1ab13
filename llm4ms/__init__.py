"""llm4ms: compound identification from mass spectra with LLM spectrum encoders."""
from __future__ import annotations

__version__ = "0.1.0"

from llm4ms.spectrum import Spectrum  # noqa: E402

__all__ = ["Spectrum", "__version__"]
