"""Pool token hidden states into one vector per sequence, using only the attention mask.

All modes are vectorised (no per-sample loops) and work with left or right padding, because they
find real tokens from the mask rather than assuming where the padding is.
"""
from __future__ import annotations

import torch

from llm4ms.errors import ConfigError

POOLING_MODES = ("mean", "weighted_mean", "last_token", "first_token")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """(batch, seq, dim) hidden states + (batch, seq) 0/1 mask -> (batch, dim)."""
    if mode not in POOLING_MODES:
        raise ConfigError(f"unknown pooling {mode!r}; choose one of {', '.join(POOLING_MODES)}")
    mask = attention_mask.to(hidden.dtype)
    if mode == "mean":
        return _weighted_sum(hidden, mask)
    if mode == "weighted_mean":
        # weight = position among the real tokens (1, 2, ..., n), as in LLM2Vec / SGPT
        return _weighted_sum(hidden, torch.cumsum(mask, dim=1) * mask)
    positions = torch.arange(mask.shape[1], device=hidden.device).expand_as(attention_mask)
    real = attention_mask.bool()
    if mode == "last_token":
        index = torch.where(real, positions, torch.full_like(positions, -1)).amax(dim=1)
    else:  # first_token
        index = torch.where(real, positions, torch.full_like(positions, mask.shape[1])).amin(dim=1)
    index = index.clamp(0, mask.shape[1] - 1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def _weighted_sum(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    total = weights.sum(dim=1, keepdim=True).clamp_min(1e-9)
    return torch.einsum("bsd,bs->bd", hidden, weights) / total
