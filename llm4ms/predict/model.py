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
    #: "mlp" (the original NEIMS body) or "resmlp" (input projection to hidden[0], then one pre-norm
    #: residual block per entry of `hidden`). Configs written before this field load as "mlp".
    arch: str = "mlp"
    #: > 0: a mixture-of-experts residual layer (softmax-gated experts) after the body (NExtIMS student).
    n_experts: int = 0
    #: > 1: an ensemble of this many independently trained copies, averaged (see NEIMSEnsemble).
    n_members: int = 1

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


class ResidualBlock(nn.Module):
    """x + W2 relu(W1 norm(x)), dropout inside (pre-norm residual MLP block)."""

    def __init__(self, width: int, inner: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, inner), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(inner, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class MixtureOfExperts(nn.Module):
    """x + sum_e softmax(gate(x))_e * expert_e(x): soft-gated residual experts (dense, cheap at 4 experts)."""

    def __init__(self, width: int, n_experts: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.gate = nn.Linear(width, n_experts)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width))
            for _ in range(n_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        weights = torch.softmax(self.gate(h), dim=-1)  # (batch, E)
        outs = torch.stack([e(h) for e in self.experts], dim=1)  # (batch, E, width)
        return x + (weights.unsqueeze(-1) * outs).sum(dim=1)


def _body(config: ModelConfig) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    if config.arch == "mlp":
        width = config.n_features
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
    elif config.arch == "resmlp":
        width = config.hidden[0]
        layers += [nn.Linear(config.n_features, width), nn.ReLU(), nn.Dropout(config.dropout)]
        for inner in config.hidden:
            layers.append(ResidualBlock(width, inner, config.dropout))
        layers.append(nn.LayerNorm(width))
    else:
        raise ValueError(f"unknown predictor architecture {config.arch!r} (mlp, resmlp)")
    if config.n_experts > 0:
        layers.append(MixtureOfExperts(width, config.n_experts, config.dropout))
    return nn.Sequential(*layers), width


class NEIMSModel(nn.Module):
    """Predicts sqrt-scaled relative intensities for nominal m/z 0..max_mz."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.body, width = _body(config)
        self.forward_head = nn.Linear(width, config.n_bins)
        self.reverse_head = nn.Linear(width, config.n_bins)
        self.gate = nn.Linear(width, config.n_bins)

    def forward(self, features: torch.Tensor, mol_mass: torch.Tensor) -> torch.Tensor:
        return self.decode(self.body(features), mol_mass)

    def decode(self, h: torch.Tensor, mol_mass: torch.Tensor) -> torch.Tensor:
        """Hidden state -> spectrum (heads, gate, mass mask); training may condition `h` first."""
        fwd = self.forward_head(h)
        rev = reverse_to_mz(self.reverse_head(h), mol_mass)
        g = torch.sigmoid(self.gate(h))
        out = g * fwd + (1.0 - g) * rev
        out = out * mass_mask(mol_mass, self.config.n_bins, self.config.mass_margin).to(out.dtype)
        return torch.relu(out)


class NEIMSEnsemble(nn.Module):
    """`n_members` NEIMS models trained apart (different seeds), averaged in sqrt-intensity space.

    `forward_members` returns every member's output too: their disagreement is the per-spectrum
    confidence the predictor writes into the library (`PredictionConfidence`).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        member = ModelConfig.from_dict({**config.to_dict(), "n_members": 1})
        self.members = nn.ModuleList(NEIMSModel(member) for _ in range(config.n_members))

    @classmethod
    def from_models(cls, models: list[NEIMSModel]) -> "NEIMSEnsemble":
        first = models[0].config.to_dict()
        for m in models[1:]:
            if m.config.to_dict() != first:
                raise ValueError("ensemble members must share one configuration")
        ens = cls(ModelConfig.from_dict({**first, "n_members": len(models)}))
        for slot, m in zip(ens.members, models):
            slot.load_state_dict(m.state_dict())
        return ens

    def forward_members(self, features: torch.Tensor, mol_mass: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(features, mol_mass) for m in self.members], dim=0)  # (members, batch, bins)

    def forward(self, features: torch.Tensor, mol_mass: torch.Tensor) -> torch.Tensor:
        return self.forward_members(features, mol_mass).mean(dim=0)


def build_model(config: ModelConfig) -> nn.Module:
    """The network a config describes: a single NEIMSModel or an ensemble of them."""
    return NEIMSEnsemble(config) if config.n_members > 1 else NEIMSModel(config)


@dataclass
class LossSettings:
    """Cosine on sqrt intensities, plus the same with an m/z weight that favours informative high masses."""

    mz_power: float = 1.0
    weighted_share: float = 0.5
    #: share of 1 - cosine on LINEAR intensities (pred**2 vs target**2): the library-search score
    linear_share: float = 0.0


def spectrum_loss(pred: torch.Tensor, target: torch.Tensor, settings: LossSettings = LossSettings(),
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of (1 - cosine) and (1 - m/z-weighted cosine); both inputs are sqrt-intensity bins.

    `weights` (batch,) makes it a weighted mean over spectra (teacher-labelled rows count less).
    """
    if weights is None:
        weights = torch.ones(pred.shape[0], device=pred.device, dtype=pred.dtype)

    def mean(v: torch.Tensor) -> torch.Tensor:
        return (v * weights).sum() / weights.sum().clamp_min(1e-12)

    eps = 1e-8
    plain = 1.0 - nn.functional.cosine_similarity(pred, target, dim=1, eps=eps)
    if settings.weighted_share <= 0:
        sqrt_loss = mean(plain)
    else:
        w = (torch.arange(pred.shape[1], device=pred.device, dtype=pred.dtype) / 100.0) ** settings.mz_power
        weighted = 1.0 - nn.functional.cosine_similarity(pred * w, target * w, dim=1, eps=eps)
        s = settings.weighted_share
        sqrt_loss = mean((1.0 - s) * plain + s * weighted)
    if settings.linear_share <= 0:
        return sqrt_loss
    linear = 1.0 - nn.functional.cosine_similarity(pred * pred, target * target, dim=1, eps=eps)
    return (1.0 - settings.linear_share) * sqrt_loss + settings.linear_share * mean(linear)
