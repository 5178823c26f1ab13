"""How well does a candidate's structure fit a measured spectrum? Both in one learned space (a two-tower model).

The fingerprint network (`llm4ms.fingerprint_model`) predicts every structure bit on its own and a candidate is
scored by the likelihood of its bits, every bit weighing alike. Here a spectrum tower (the same input: sqrt spectrum
and neutral losses) and a structure tower (the same Morgan + MACCS bits) are trained together so that a spectrum's
vector lies closest to its own structure's: InfoNCE over each batch's structures plus random structures of the
training pool, the other spectra of the same compound masked out. It learns which bits tell candidates apart. On
VALIDATION (the true structure's rank among the 10k library's structures, 679 queries) one such model put the true
structure first for about 20-22 % of queries (median rank 5-8), against 14.8 % (median 14) for the fingerprint
network; as one more feature pair of the re-ranker (`llm4ms.reranker`) one model's gain swung with its training seed
(-0.2 to +1.9 R@1 at 100k), the mean cosine of three (``members``) gained in every cross-validation run
(benchmarks/RESULTS.md §0).

The training loop is written here, not taken from sentence-transformers or the HF Trainer: both expect a text
model and a tokenizer, and these are two small MLPs over fixed numeric vectors whose batches need the masking and
the structure pool above (the fingerprint network has its own loop for the same reason).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.network_folder import load_network_weights, read_network_config, save_networks
from llm4ms.fingerprint_model import FingerprintConfig, spectrum_rows, training_examples
from llm4ms.spectrum import Spectrum

CONFIG_FILE = "structure_matcher.json"
FORMAT_VERSION = 1
DEFAULT_EPOCHS = 60
#: epochs over predicted spectra of other structures first, when given (chosen on validation)
DEFAULT_PRETRAIN_EPOCHS = 0


@dataclass(frozen=True)
class MatcherConfig:
    """Vector size, tower widths (``structure_hidden`` 0 = a linear structure tower), how many independently trained
    tower pairs are averaged (``members``) and the shared encodings."""

    dim: int = 256
    hidden: int = 1024
    structure_hidden: int = 512
    dropout: float = 0.3
    temperature: float = 0.05
    members: int = 3
    fingerprint: FingerprintConfig = field(default_factory=FingerprintConfig)
    version: int = FORMAT_VERSION


def build_towers(config: MatcherConfig):
    """(spectrum tower, structure tower) as torch modules."""
    import torch

    fp, h = config.fingerprint, config.hidden
    spectrum = torch.nn.Sequential(
        torch.nn.Linear(fp.n_inputs, h), torch.nn.ReLU(), torch.nn.Dropout(config.dropout),
        torch.nn.Linear(h, h), torch.nn.ReLU(), torch.nn.Dropout(config.dropout), torch.nn.Linear(h, config.dim))
    if config.structure_hidden:
        structure = torch.nn.Sequential(torch.nn.Linear(fp.n_outputs, config.structure_hidden), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.1), torch.nn.Linear(config.structure_hidden, config.dim))
    else:
        structure = torch.nn.Linear(fp.n_outputs, config.dim)
    return spectrum, structure


class StructureMatcher:
    """A trained two-tower model: `encode_spectra`, `encode_structures`, and `match` (cosine) between them.

    With several members (tower pairs trained from different seeds) a vector is the members' unit vectors side by
    side, each scaled by 1/sqrt(members), so one dot product is the mean of the members' cosines: one member's
    cosine moves with its training seed, the mean much less."""

    def __init__(self, config: MatcherConfig = MatcherConfig(), members=None, info: Optional[dict] = None) -> None:
        import torch

        self.config, self.info, self._torch = config, dict(info or {}), torch
        self.members = list(members) if members is not None else [build_towers(config)
                                                                   for _ in range(config.members)]
        if len(self.members) != config.members:
            raise ConfigError(f"structure matcher: {len(self.members)} tower pairs for members={config.members}")
        for spectrum_tower, structure_tower in self.members:
            spectrum_tower.eval()
            structure_tower.eval()

    def encode_spectra(self, spectra: Sequence[Spectrum], batch_size: int = 512) -> np.ndarray:
        """(len(spectra), dim x members) vectors of unit length."""
        return self._joined(0, spectrum_rows(spectra, self.config.fingerprint), batch_size)

    def encode_structures(self, bits: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """(n, dim x members) unit vectors of structure bits (`llm4ms.fingerprint_model.structure_bits` rows)."""
        return self._joined(1, np.asarray(bits, dtype=np.float32), batch_size)

    def match(self, query_vector: np.ndarray, bits: np.ndarray, parsed: Optional[np.ndarray] = None) -> np.ndarray:
        """(len(bits),) cosine of one spectrum's vector with each structure's; NaN where `parsed` is False."""
        return self.match_lists([query_vector], [(bits, parsed)])[0]

    def match_lists(self, query_vectors: Sequence[np.ndarray],
                    structures: Sequence[tuple[np.ndarray, Optional[np.ndarray]]]) -> list[np.ndarray]:
        """`match` of each spectrum vector with its own list of (bits, parsed), the structure tower run once over
        every list (the re-ranker scores a search's lists together)."""
        if not structures:
            return []
        vectors = self.encode_structures(np.concatenate([bits for bits, _ in structures]))
        out, start = [], 0
        for query_vector, (bits, parsed) in zip(query_vectors, structures):
            cosine = (vectors[start:start + len(bits)] @ np.asarray(query_vector, dtype=np.float32)).astype(np.float64)
            if parsed is not None:
                cosine[~np.asarray(parsed, dtype=bool)] = np.nan
            out.append(cosine)
            start += len(bits)
        return out

    def _joined(self, side: int, rows: np.ndarray, batch_size: int) -> np.ndarray:
        scale = np.float32(1 / np.sqrt(len(self.members)))
        return np.concatenate([self._encode(towers[side], rows, batch_size) * scale for towers in self.members],
                              axis=1)

    def _encode(self, tower, rows: np.ndarray, batch_size: int) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                out.append(torch.nn.functional.normalize(tower(torch.from_numpy(rows[start:start + batch_size])),
                                                         dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.dim), dtype=np.float32)

    def save(self, folder: str | Path) -> Path:
        return save_networks(folder, _by_prefix(self.members), self.config, self.info, CONFIG_FILE)

    @classmethod
    def load(cls, folder: str | Path) -> "StructureMatcher":
        config, info = read_network_config(
            folder, "structure matcher", CONFIG_FILE,
            lambda raw: MatcherConfig(**{**raw, "fingerprint": FingerprintConfig(**raw["fingerprint"])}),
            FORMAT_VERSION)
        members = [build_towers(config) for _ in range(config.members)]
        load_network_weights(folder, _by_prefix(members))
        return cls(config, members, info)


def _by_prefix(members) -> dict:
    """State-dict key prefix -> tower, as the weights file holds them (``{member}.spectrum.``,
    ``{member}.structure.``)."""
    return {f"{m}.{name}.": tower for m, towers in enumerate(members)
            for name, tower in zip(("spectrum", "structure"), towers)}


def train_structure_matcher(spectra: Iterable[Spectrum], config: MatcherConfig = MatcherConfig(),
                            epochs: int = DEFAULT_EPOCHS, batch_size: int = 256, pool_negatives: int = 512,
                            learning_rate: float = 1e-3, peak_dropout: float = 0.1, seed: int = 0,
                            pretrain: Iterable[Spectrum] = (), pretrain_epochs: int = 0,
                            info: Optional[dict] = None) -> StructureMatcher:
    """Fit both towers on spectra with a SMILES (measured TRAIN spectra; `pretrain`: predicted spectra of other
    structures seen first for `pretrain_epochs`, as for the fingerprint network).

    Each step: a batch of spectra against the batch's structures plus `pool_negatives` structures drawn from every
    training structure; a spectrum's own structure is the positive, other spectra of its compound (same InChIKey
    first block, else SMILES) are masked, not counted as negatives. `peak_dropout` zeroes that share of input bins.
    """
    import torch

    x, bits, keys = training_examples(spectra, config.fingerprint)
    if len(x) < 2:
        raise ConfigError("structure matcher training needs >= 2 spectra with a parsable SMILES")
    px, pbits, pkeys = training_examples(pretrain, config.fingerprint)
    pool = torch.cat([bits, pbits]) if len(px) else bits
    members, losses = [], []
    for member in range(config.members):  # member m trains from seed + m
        generator = torch.Generator().manual_seed(seed + member)
        torch.manual_seed(seed + member)
        towers = build_towers(config)
        parameters = [p for tower in towers for p in tower.parameters()]
        optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=1e-2)
        fit = dict(towers=towers, optimizer=optimizer, pool=pool, batch_size=batch_size,
                   pool_negatives=pool_negatives, temperature=config.temperature, peak_dropout=peak_dropout,
                   generator=generator)
        if len(px) and pretrain_epochs:
            _fit(px, pbits, pkeys, pretrain_epochs, **fit)
        losses.append(round(_fit(x, bits, keys, epochs, **fit), 5))
        members.append(towers)
    settings = {"epochs": epochs, "batch_size": batch_size, "pool_negatives": pool_negatives,
                "learning_rate": learning_rate, "peak_dropout": peak_dropout, "seed": seed, "spectra": len(x),
                "final_loss": losses}
    if len(px) and pretrain_epochs:
        settings.update(pretrain_spectra=len(px), pretrain_epochs=pretrain_epochs)
    return StructureMatcher(config, members, {**(info or {}), "training": settings})


def _fit(x, bits, keys, epochs: int, towers, optimizer, pool, batch_size: int, pool_negatives: int,
         temperature: float, peak_dropout: float, generator) -> float:
    """`epochs` passes of InfoNCE (spectrum -> structures); the last batch's loss."""
    import torch

    spectrum_tower, structure_tower = towers
    spectrum_tower.train()
    structure_tower.train()
    normalize = torch.nn.functional.normalize
    loss = torch.tensor(float("nan"))
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            n = len(batch)
            keep = (torch.rand(x[batch].shape, generator=generator) > peak_dropout).float()
            spectra = normalize(spectrum_tower(x[batch] * keep), dim=1)
            negatives = pool[torch.randint(len(pool), (pool_negatives,), generator=generator)]
            structures = normalize(structure_tower(torch.cat([bits[batch], negatives])), dim=1)
            logits = spectra @ structures.T / temperature
            batch_keys = keys[batch.numpy()]
            masked = torch.zeros_like(logits, dtype=torch.bool)
            masked[:, :n] = torch.from_numpy(batch_keys[:, None] == batch_keys[None, :])
            masked[torch.arange(n), torch.arange(n)] = False
            logits = logits.masked_fill(masked, -1e4)
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(n))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    spectrum_tower.eval()
    structure_tower.eval()
    return float(loss.detach())
