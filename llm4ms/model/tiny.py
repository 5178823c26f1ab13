"""Small Llama models with a tokenizer trained on spectrum texts: tests, benchmarks, quick experiments.

Nothing is downloaded: the tokenizer is trained locally with `tokenizers` and the weights are random.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from llm4ms.errors import ConfigError

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                  "mask_token": "<mask>"}


def train_spectrum_tokenizer(texts: Iterable[str], vocab_size: int = 1000, kind: str = "bpe"):
    """Train a tokenizer on spectrum texts and wrap it as a `PreTrainedTokenizerFast`.

    ``kind="bpe"``: byte-level BPE, so any text tokenizes without unknowns (the byte fallback).
    ``kind="wordlevel"``: one token per whitespace/punctuation word, unknown words -> ``<unk>``.
    A BOS token is prepended, like Llama tokenizers.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())
    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif kind == "wordlevel":
        tokenizer = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    else:
        raise ConfigError(f"unknown tokenizer kind {kind!r}; choose bpe or wordlevel")
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_input_names=["input_ids", "attention_mask"],
                                   padding_side="right", **SPECIAL_TOKENS)


def build_tiny_model(out_dir: str | Path, texts: Sequence[str], hidden_size: int = 64, num_layers: int = 2,
                     heads: int = 4, vocab_size: int = 1000, intermediate_size: int | None = None,
                     max_position_embeddings: int = 512, attention_dropout: float = 0.0, seed: int = 0,
                     tokenizer_kind: str = "bpe") -> Path:
    """Save a random bidirectional `LlamaForCausalLM` + trained tokenizer to `out_dir`; returns the path.

    The folder loads with ``SpectrumEncoder.from_base(out_dir)`` like any Hub model.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = train_spectrum_tokenizer(texts, vocab_size=vocab_size, kind=tokenizer_kind)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max_position_embeddings, attention_dropout=attention_dropout,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    config.is_causal = False
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
