"""The NEIMS-style network: fingerprint -> MLP -> forward and reverse heads mixed by a per-bin gate.

Why two heads: low-mass fragments (m/z 43, 77, 91 ...) are best learned at fixed m/z, while losses from the
molecular ion (M-15, M-18, M-29 ...) sit at a fixed distance below M. The reverse head predicts bin j as
m/z = M - j, so one weight learns "loss of a methyl" for every molecule; a sigmoid gate per bin, computed
from the same hidden state, chooses between the heads (Wei et al., ACS Cent Sci 2019).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    """Shape of the network; saved as part of the predictor's config.json."""

    n_features: int
    max_mz: int = 1000
    hidden: tuple[int, ...] = (512, 512)
    dropout: float = 0.25
    mass_margin: int = 5  # bins above the molecular mass that may keep intensity (isotopes, M+H)

    @property
    def n_bins(self) -> int:
        return self.max_mz + 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["hidden"] = tuple(d.get("hidden", (512, 512)))
        return cls(**d)


def reverse_to_mz(reverse: torch.Tensor, mol_mass: torch.Tensor) -> torch.Tensor:
    """Re-index reverse-head outputs so column k holds reverse bin M - k (zero where M - k < 0).

    `reverse` is (batch, n_bins) with bin j meaning "j below the molecular mass"; `mol_mass` is (batch,)
    integer masses. Masses above the last bin are fine: peaks beyond max_mz fall off the end.
    """
    n_bins = reverse.shape[-1]
    mz = torch.arange(n_bins, device=reverse.device)
    j = mol_mass.to(reverse.device).long().unsqueeze(1) - mz.unsqueeze(0)
    valid = (j >= 0) & (j < n_bins)
    gathered = torch.gather(reverse, 1, j.clamp(0, n_bins - 1))
    return gathered * valid.to(reverse.dtype)


def mass_mask(mol_mass: torch.Tensor, n_bins: int, margin: int) -> torch.Tensor:
    """1 for m/z <= M + margin, else 0 (batch, n_bins)."""
    mz = torch.arange(n_bins, device=mol_mass.device)
    return (mz.unsqueeze(0) <= (mol_mass.long().unsqueeze(1) + margin)).float()


class NEIMSModel(nn.Module):
    """Predicts sqrt-scaled relative intensities for nominal m/z 0..max_mz."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.n_features
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.forward_head = nn.Linear(width, config.n_bins)
        self.reverse_head = nn.Linear(width, config.n_bins)
        self.gate = nn.Linear(width, config.n_bins)

    def forward(self, features: torch.Tensor, mol_mass: torch.Tensor) -> torch.Tensor:
        h = self.body(features)
        fwd = self.forward_head(h)
        rev = reverse_to_mz(self.reverse_head(h), mol_mass)
        g = torch.sigmoid(self.gate(h))
        out = g * fwd + (1.0 - g) * rev
        out = out * mass_mask(mol_mass, self.config.n_bins, self.config.mass_margin).to(out.dtype)
        return torch.relu(out)


@dataclass
class LossSettings:
    """Cosine on sqrt intensities, plus the same with an m/z weight that favours informative high masses."""

    mz_power: float = 1.0
    weighted_share: float = 0.5


def spectrum_loss(pred: torch.Tensor, target: torch.Tensor, settings: LossSettings = LossSettings()) -> torch.Tensor:
    """Mean of (1 - cosine) and (1 - m/z-weighted cosine); both inputs are sqrt-intensity bins."""
    eps = 1e-8
    plain = 1.0 - nn.functional.cosine_similarity(pred, target, dim=1, eps=eps)
    if settings.weighted_share <= 0:
        return plain.mean()
    w = (torch.arange(pred.shape[1], device=pred.device, dtype=pred.dtype) / 100.0) ** settings.mz_power
    weighted = 1.0 - nn.functional.cosine_similarity(pred * w, target * w, dim=1, eps=eps)
    s = settings.weighted_share
    return ((1.0 - s) * plain + s * weighted).mean()
