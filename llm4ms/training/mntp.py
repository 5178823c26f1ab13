"""Stage 1, masked next-token prediction (LLM2Vec MNTP), on `transformers.Trainer`.

MNTP masks tokens BERT-style and predicts masked token i from the output at position i-1 of the
bidirectional model. `DataCollatorForLanguageModeling` (mlm) already writes labels = original id at masked
positions and -100 elsewhere, and the causal-LM loss shifts labels by one, so the two together are exactly
LLM2Vec's objective; `MNTPCollator` adds only what the stock collator lacks for spectrum texts: a mask token
for tokenizers without one (Llama's), chosen like LLM2Vec ("_" when it is one token, else a new ``<mask>``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from transformers import DataCollatorForLanguageModeling

from llm4ms.errors import ConfigError


def ensure_mask_token(tokenizer, model=None, preferred: str = "_") -> int:
    """Give `tokenizer` a mask token (growing the model's embeddings if a token is added); returns its id."""
    if tokenizer.mask_token_id is not None:
        return int(tokenizer.mask_token_id)
    vocab = tokenizer.get_vocab()
    if preferred in vocab:
        tokenizer.mask_token = preferred
        return int(vocab[preferred])
    tokenizer.add_special_tokens({"mask_token": "<mask>"})
    if model is not None and model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return int(tokenizer.mask_token_id)


class MNTPCollator(DataCollatorForLanguageModeling):
    """`DataCollatorForLanguageModeling` (80/10/10 masking of non-special tokens) for tokenizers without a
    mask token; pass the model so an added ``<mask>`` token gets an embedding row."""

    def __init__(self, tokenizer, model=None, mask_probability: float = 0.2, seed: Optional[int] = None) -> None:
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        ensure_mask_token(tokenizer, model)
        super().__init__(tokenizer=tokenizer, mlm=True, mlm_probability=mask_probability, seed=seed)


def load_mntp_model(base: str, torch_dtype=None, load_in_4bit: bool = False):
    """(causal LM with ``is_causal: false``, tokenizer) for MNTP; the LM head is what MNTP trains through."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm4ms.model.bidirectional import make_bidirectional
    from llm4ms.model.weights import four_bit_config, resolve_dtype

    dtype = resolve_dtype(torch_dtype)
    kwargs = {"dtype": dtype}
    if load_in_4bit:
        kwargs.update(quantization_config=four_bit_config(dtype), device_map="auto")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base), **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(base))
    except OSError as err:
        raise ConfigError(f"cannot load base model {base}: {str(err).splitlines()[0]}") from err
    tokenizer.padding_side = "right"
    return make_bidirectional(model), tokenizer


def tokenized_dataset(texts: Sequence[str], tokenizer, max_length: int):
    """A `datasets.Dataset` of ``input_ids`` (+ special-token masks) for the collator, like run_mlm.py."""
    from datasets import Dataset

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length, return_special_tokens_mask=True)

    return Dataset.from_dict({"text": list(texts)}).map(tokenize, batched=True, remove_columns=["text"])
