"""sentence-transformers modules that make an llm4ms model folder a plain `SentenceTransformer` folder.

    SpectrumTransformer  (HF causal LM body, ``is_causal: false``; owns the textualizer and the tokenizer)
      -> IntensityPooling (mean of token states weighted by each peak token's intensity)
      -> Normalize

`SentenceTransformer(folder).encode(texts)` gives llm4ms's vectors for texts made by the model's
textualizer; `llm4ms.model.SpectrumEncoder` adds the spectrum -> text step, identity and card data.
Why custom modules: sentence-transformers has no notion of a spectrum, and its `Pooling` weights tokens
only by position, while the weights we need (peak intensities) are a property of the token itself.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

import torch

from sentence_transformers.base.modules import Module, Transformer

from llm4ms.text import Textualizer

TEXTUALIZER_FILE = "textualizer.json"


class SpectrumTransformer(Transformer):
    """A `Transformer` that also owns the `Textualizer` its texts were made with (``textualizer.json``)."""

    def __init__(self, *args: Any, textualizer: Optional[Textualizer] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.textualizer = textualizer or Textualizer()

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        super().save(output_path, *args, safe_serialization=safe_serialization, **kwargs)
        with open(os.path.join(output_path, TEXTUALIZER_FILE), "w", encoding="utf-8") as handle:
            json.dump(self.textualizer.to_dict(), handle, indent=2)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> "SpectrumTransformer":
        module = super().load(model_name_or_path, subfolder=subfolder, **kwargs)
        path = cls.load_file_path(model_name_or_path, filename=TEXTUALIZER_FILE, subfolder=subfolder,
                                  token=kwargs.get("token"), cache_folder=kwargs.get("cache_folder"),
                                  revision=kwargs.get("revision"),
                                  local_files_only=kwargs.get("local_files_only", False))
        if path is not None:
            with open(path, encoding="utf-8") as handle:
                module.textualizer = Textualizer.from_dict(json.load(handle))
        return module


class IntensityPooling(Module):
    """Weighted mean of token embeddings, the weight of a token looked up by its id.

    ``token_weights[id]`` is (relative intensity of the peak word)^power, 0 for special and domain tokens;
    a sequence whose weights are all zero (no peak word) falls back to the plain mean.
    """

    config_keys = ["embedding_dimension", "vocab_size"]

    def __init__(self, embedding_dimension: int, vocab_size: int,
                 token_weights: Optional[list[float]] = None) -> None:
        super().__init__()
        self.embedding_dimension = int(embedding_dimension)
        self.vocab_size = int(vocab_size)
        weights = torch.zeros(self.vocab_size) if token_weights is None else torch.tensor(token_weights)
        if weights.shape != (self.vocab_size,):
            raise ValueError(f"token_weights must have {self.vocab_size} entries, not {tuple(weights.shape)}")
        self.register_buffer("token_weights", weights.float())

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        hidden = features["token_embeddings"]
        mask = features["attention_mask"].to(hidden.dtype)
        weights = self.token_weights.to(hidden.dtype)[features["input_ids"]] * mask
        empty = weights.sum(dim=1, keepdim=True) <= 0
        weights = torch.where(empty, mask, weights)
        total = weights.sum(dim=1, keepdim=True).clamp_min(1e-9)
        features["sentence_embedding"] = torch.einsum("bsd,bs->bd", hidden, weights) / total
        return features

    def get_sentence_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token=None, cache_folder=None, revision=None,
             local_files_only: bool = False, **kwargs: Any) -> "IntensityPooling":
        hub = dict(subfolder=subfolder, token=token, cache_folder=cache_folder, revision=revision,
                   local_files_only=local_files_only)
        config = cls.load_config(model_name_or_path, **hub)
        module = cls(**config)
        return cls.load_torch_weights(model_name_or_path, model=module, **hub)
