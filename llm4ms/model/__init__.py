"""The spectrum encoder: a bidirectional LLM (+ LoRA) with pooling, save/load and exports."""
from __future__ import annotations

from llm4ms.model.bidirectional import is_bidirectional, make_bidirectional
from llm4ms.model.encoder import LoraSettings, SpectrumEncoder
from llm4ms.model.pooling import POOLING_MODES, pool

__all__ = ["LoraSettings", "POOLING_MODES", "SpectrumEncoder", "is_bidirectional", "make_bidirectional", "pool"]
