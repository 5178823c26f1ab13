"""Contrastive loss used by the SimCSE and supervised stages."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor | None = None,
             scale: float = 20.0, symmetric: bool = False) -> torch.Tensor:
    """InfoNCE over cosine similarities times `scale`.

    Row i of `anchor` must match row i of `positive`; every other positive in the batch is a negative
    (in-batch negatives). `negatives` adds hard negatives: shape (B, H, d) (each anchor's own) or
    (B*H, d) flattened row-major; all of them are shared across the batch, as in sentence-transformers'
    MultipleNegativesRankingLoss. `symmetric` also scores positives -> anchors and averages both.
    """
    if anchor.shape != positive.shape or anchor.dim() != 2:
        raise ValueError(f"anchor and positive must both be (B, d), got {tuple(anchor.shape)} and {tuple(positive.shape)}")
    a = F.normalize(anchor.float(), dim=-1)
    p = F.normalize(positive.float(), dim=-1)
    candidates = p
    if negatives is not None and negatives.numel() > 0:
        n = negatives.float().reshape(-1, anchor.shape[-1])
        candidates = torch.cat([p, F.normalize(n, dim=-1)], dim=0)
    logits = scale * a @ candidates.T  # (B, B + B*H)
    target = torch.arange(a.shape[0], device=a.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(scale * p @ a.T, target))
    return loss
