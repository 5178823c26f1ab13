"""Batch builders for the three training stages.

MNTP (masked next-token prediction, LLM2Vec): mask a fraction of the non-special tokens BERT-style and
keep the original ids as labels only there. The ordinary causal-LM loss shifts labels by one, so masked
token i is predicted from the output at position i-1 -- exactly LLM2Vec's objective, no custom loss needed.
Contrastive stages only need the texts tokenized side by side (anchor, positive, negatives).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

IGNORE_INDEX = -100


def ensure_mask_token(tokenizer, model=None, preferred: str = "_") -> int:
    """Give `tokenizer` a mask token and return its id.

    Llama tokenizers have none; LLM2Vec uses "_" for Llama. Use `preferred` when it is a single token of
    the vocabulary, else add a ``<mask>`` special token and grow the model's embeddings to match.
    """
    if tokenizer.mask_token_id is not None:
        return int(tokenizer.mask_token_id)
    vocab = tokenizer.get_vocab()
    if preferred in vocab:
        tokenizer.mask_token = preferred
        return int(vocab[preferred])
    tokenizer.add_special_tokens({"mask_token": "<mask>"})
    if model is not None:
        embeddings = model.get_input_embeddings()
        if embeddings.num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
    return int(tokenizer.mask_token_id)


def _pad_token_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    raise ValueError("the tokenizer has neither a pad nor an eos token to pad with")


def _tokenize(tokenizer, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """Pad to the longest text in the batch; the tokenizer's own padding side is kept."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token_id = _pad_token_id(tokenizer)
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt", return_token_type_ids=False)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@dataclass
class MNTPCollator:
    """Texts -> ``input_ids, attention_mask, labels`` with 80/10/10 masking of non-special tokens.

    Call `ensure_mask_token` first (it may resize the model). `generator` makes masking reproducible.
    """

    tokenizer: Any
    mask_probability: float = 0.2
    replace_with_mask: float = 0.8
    replace_with_random: float = 0.1
    max_length: int = 512
    generator: torch.Generator | None = None
    _special_ids: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token: call ensure_mask_token(tokenizer, model) first")
        if not 0.0 < self.mask_probability < 1.0:
            raise ValueError(f"mask_probability must be in (0, 1), got {self.mask_probability}")
        if self.replace_with_mask + self.replace_with_random > 1.0:
            raise ValueError("replace_with_mask + replace_with_random must be <= 1")
        self._special_ids = torch.tensor(sorted(set(self.tokenizer.all_special_ids)), dtype=torch.long)

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = _tokenize(self.tokenizer, texts, self.max_length)
        input_ids, labels = self.mask(batch["input_ids"], batch["attention_mask"])
        return {"input_ids": input_ids, "attention_mask": batch["attention_mask"], "labels": labels}

    def mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return masked ids and labels (original id where masked, -100 elsewhere)."""
        g = self.generator
        candidates = attention_mask.bool() & ~torch.isin(input_ids, self._special_ids)
        draw = torch.rand(input_ids.shape, generator=g)
        masked = candidates & (draw < self.mask_probability)
        labels = torch.where(masked, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
        # Split the masked positions 80/10/10 by a second uniform draw.
        how = torch.rand(input_ids.shape, generator=g)
        to_mask = masked & (how < self.replace_with_mask)
        to_random = masked & (how >= self.replace_with_mask) & (how < self.replace_with_mask + self.replace_with_random)
        out = input_ids.clone()
        out[to_mask] = int(self.tokenizer.mask_token_id)
        random_ids = torch.randint(len(self.tokenizer), input_ids.shape, generator=g)
        out[to_random] = random_ids[to_random]
        return out, labels


@dataclass
class PairCollator:
    """(anchor, positive) texts -> two tokenized batches; row i of each is a positive pair."""

    tokenizer: Any
    max_length: int = 512

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> dict[str, dict[str, torch.Tensor]]:
        anchors = [a for a, _ in pairs]
        positives = [p for _, p in pairs]
        return {"anchor": _tokenize(self.tokenizer, anchors, self.max_length),
                "positive": _tokenize(self.tokenizer, positives, self.max_length)}


@dataclass
class TripleCollator:
    """Rows with ``anchor``, ``positive`` and ``negatives`` (a list, same length H per row) texts.

    Negatives are flattened row-major into one batch of B*H texts, so the loss reshapes them to (B, H, d).
    """

    tokenizer: Any
    max_length: int = 512
    num_negatives: int | None = None

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = PairCollator(self.tokenizer, self.max_length)(
            [(r["anchor"], r["positive"]) for r in rows])
        h = self.num_negatives if self.num_negatives is not None else min(len(r.get("negatives") or []) for r in rows)
        if h > 0:
            flat = []
            for r in rows:
                negs = list(r.get("negatives") or [])
                if len(negs) < h:
                    raise ValueError(f"a row has {len(negs)} negatives, {h} needed")
                flat.extend(negs[:h])
            out["negatives"] = _tokenize(self.tokenizer, flat, self.max_length)
        out["num_negatives"] = h
        return out
