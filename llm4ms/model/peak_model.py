"""Build a peak-token spectrum model: a small Llama (made bidirectional) over one token per peak.

Nothing is downloaded: the vocabulary is generated from the textualizer (`llm4ms.model.peak_vocab`), the
weights are random with one structured choice — the embedding of ``"mz:b"`` starts as an m/z vector plus
a small intensity-bin vector, so the bins of one m/z begin close together and intensity-weighted pooling
of the untrained model is already a random projection of the sqrt-intensity spectrum (about sqrt cosine).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from llm4ms.text import PRESETS, Textualizer

#: The textualizer of EI peak-token models (preset "peaks", the shipped model's); MS/MS models use "msms-peaks".
PEAK_TEXTUALIZER = PRESETS["peaks"]


def build_peak_model(out_dir: str | Path, textualizer: Optional[Textualizer] = None, max_mz: int = 1000,
                     hidden_size: int = 128, num_layers: int = 2, heads: int = 4,
                     intermediate_size: Optional[int] = None, max_length: int = 64, pooling_power: float = 0.5,
                     bin_scale: float = 0.3, embedding_std: float = 1.0, attention_dropout: float = 0.0, seed: int = 0,
                     pooling: str = "intensity") -> Path:
    """Write a random peak-token model folder (a sentence-transformers folder + llm4ms_config.json).

    ``pooling``: "intensity" (token weights = relative intensity^`pooling_power`) or any other mode of
    `SpectrumEncoder.from_base` (for the ablation).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llm4ms.model.peak_vocab import build_peak_tokenizer, token_weights

    textualizer = textualizer or PEAK_TEXTUALIZER
    tokenizer = build_peak_tokenizer(textualizer, max_mz=max_mz, max_length=max_length)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max(max_length, 64), attention_dropout=attention_dropout,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    config.is_causal = False
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    std = embedding_std  # >> the layers' init: the untrained model passes peak vectors through nearly unchanged
    with torch.no_grad():
        n_bins, n_special = textualizer.n_bins, len(tokenizer) - max_mz * textualizer.n_bins
        mz_vectors = torch.randn(max_mz, hidden_size) * std
        bin_vectors = torch.randn(n_bins, hidden_size) * std * bin_scale
        peaks = (mz_vectors[:, None, :] + bin_vectors[None, :, :]).reshape(max_mz * n_bins, hidden_size)
        model.get_input_embeddings().weight[n_special:] = peaks
    weights = token_weights(tokenizer, textualizer, power=pooling_power)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        from llm4ms.model.encoder import SpectrumEncoder

        encoder = SpectrumEncoder.from_base(tmp, textualizer=textualizer, pooling=pooling, token_weights=weights,
                                            max_length=max_length, device="cpu")
        encoder.config["base_model"] = f"peak-token Llama h{hidden_size}x{num_layers} (random init, llm4ms.model.peak_model)"
        return encoder.save_pretrained(out_dir)
