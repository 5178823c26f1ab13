"""A word-level vocabulary with one token per peak: ``"<m/z>:<intensity bin>"``.

Why not BPE: byte-level BPE splits ``"143:7"`` into 2-4 pieces, so a 40-peak spectrum costs ~84 tokens and
the model must first learn to re-assemble numbers. Whole-peak tokens make a spectrum ~40 tokens long and
give every (m/z, intensity bin) its own embedding, which we initialise as an m/z vector plus an intensity
vector so that neighbouring bins of one m/z start out alike (see `llm4ms.model.peak_model`).

The vocabulary is built from the textualizer's settings (no training pass over data): every integer m/z
from 1 to ``max_mz`` times every bin, plus special tokens and two domain words (``[Q]`` measured query,
``[D]`` library document) that prompts may prepend. Unknown words (m/z above ``max_mz``) map to ``<unk>``.
"""
from __future__ import annotations

import math
from typing import Optional

from llm4ms.errors import ConfigError
from llm4ms.text import Textualizer

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "mask_token": "<mask>"}
DOMAIN_WORDS = ("[Q]", "[D]")


def peak_words(textualizer: Textualizer, max_mz: int) -> list[str]:
    """Every peak word the textualizer can emit for integer m/z 1..max_mz, in a fixed order."""
    if textualizer.style != "words" or textualizer.mz_decimals != 0:
        raise ConfigError("peak tokens need a 'words' textualizer with integer m/z (mz_decimals=0)")
    if textualizer.intensity not in ("bins", "logbins"):
        raise ConfigError("peak tokens need intensity bins in the text (intensity='bins' or 'logbins')")
    return [f"{mz}:{b}" for mz in range(1, max_mz + 1) for b in range(textualizer.n_bins)]


def bin_relative_intensity(textualizer: Textualizer, b: int) -> float:
    """The relative intensity at the centre of bin `b` (inverse of `Textualizer._bin`)."""
    position = (b + 0.5) / textualizer.n_bins
    if textualizer.intensity == "logbins":
        return float(textualizer.log_floor ** (1.0 - position))
    return position


def build_peak_tokenizer(textualizer: Textualizer, max_mz: int = 1000, max_length: Optional[int] = None):
    """A `PreTrainedTokenizerFast` with one token per peak word (whitespace split, no BOS)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [*SPECIALS.values(), *DOMAIN_WORDS, *peak_words(textualizer, max_mz)]
    vocab = {word: i for i, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIALS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_input_names=["input_ids", "attention_mask"],
                                   padding_side="right", **SPECIALS)
    if max_length:
        fast.model_max_length = max_length
    return fast


def token_weights(tokenizer, textualizer: Textualizer, power: float = 0.5) -> list[float]:
    """Pooling weight per token id: relative intensity of its bin to `power` (sqrt by default); 0 otherwise.

    With power 0.5 the pooled vector of untrained, orthogonal peak embeddings is the sqrt-intensity
    spectrum projected at random: intensity-weighted pooling starts the model near sqrt cosine.
    """
    weights = [0.0] * len(tokenizer)
    for word, index in tokenizer.get_vocab().items():
        mz, sep, b = word.partition(":")
        if sep and mz.isdigit() and b.isdigit():
            weights[index] = math.pow(bin_relative_intensity(textualizer, int(b)), power)
    return weights
