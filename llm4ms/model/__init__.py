"""The spectrum encoder: a Hugging Face causal LM made bidirectional (+ LoRA), pooled, as a sentence-transformers folder."""
from __future__ import annotations

from llm4ms.model.bidirectional import is_bidirectional, make_bidirectional
from llm4ms.model.encoder import POOLING_MODES, SpectrumEncoder, is_model_folder
from llm4ms.model.weights import LoraSettings

__all__ = ["LoraSettings", "POOLING_MODES", "SpectrumEncoder", "is_bidirectional", "is_model_folder",
           "make_bidirectional"]
