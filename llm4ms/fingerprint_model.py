"""Spectrum -> structure fingerprint: a second, structural view of a library candidate.

Every similarity score compares the query with the candidate's *predicted* spectrum, so all of them share the
predictor's mistakes. This model reads the *measured* query alone and predicts which substructures (Morgan
radius-2 bits and the 166 MACCS keys) its molecule has; a candidate's own structure (its SMILES) is then judged
against that prediction (`agreement`). It learns from TRAIN-split structures only: first from predicted spectra
of many of them (what bits go with what peaks, over more chemistry than the measured set holds), then from the
measured spectra, which it ends on; so its errors are mostly not the forward predictor's, which every spectral score
shares. The learned re-ranker (`llm4ms.reranker`) uses its agreement as features.

The network is a small MLP in PyTorch (hand-written: nothing in sentence-transformers or matchms maps a
spectrum to fingerprint probabilities); its inputs are the sqrt-intensity spectrum on a nominal grid plus the
neutral losses from the last >= 1 % peak (losses say which groups left the molecule).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.network_folder import load_network_weights, read_network_config, save_networks
from llm4ms.spectrum import Spectrum

CONFIG_FILE = "fingerprint_model.json"
#: version of the input/output encoding; a saved model records the one it was trained with
FORMAT_VERSION = 1
MACCS_KEYS = 167
#: names of the three agreement scores `agreement` returns per candidate
AGREEMENT_NAMES = ("fp_log_likelihood", "fp_cosine", "fp_tanimoto")
#: training epochs of the shipped recipe, chosen on VALIDATION: the network was undertrained at 40 (true structure's
#: median rank among the 10k validation candidates 50 at 40 epochs, 21 at 80, 17 at 160, 16 at 320)
DEFAULT_EPOCHS = 160
#: epochs over the predicted pretraining spectra (`train_fingerprint_model`'s `pretrain`) before the measured ones,
#: chosen on VALIDATION with 60,000 MOSES structures (median rank 17 -> 14; 10 epochs or 200,000 structures x 5 also
#: reached 14, with less gain in the re-ranker)
DEFAULT_PRETRAIN_EPOCHS = 20


@dataclass(frozen=True)
class FingerprintConfig:
    """Input grid (m/z 0..max_mz, losses 0..max_loss-1), output bits (Morgan + MACCS) and network width."""

    max_mz: int = 600
    max_loss: int = 200
    morgan_radius: int = 2
    morgan_bits: int = 1024
    hidden: int = 1024
    dropout: float = 0.3
    version: int = FORMAT_VERSION

    @property
    def n_inputs(self) -> int:
        return self.max_mz + 1 + self.max_loss

    @property
    def n_outputs(self) -> int:
        return self.morgan_bits + MACCS_KEYS


def spectrum_vector(spectrum: Spectrum, config: FingerprintConfig) -> np.ndarray:
    """(n_inputs,) float32: unit-norm sqrt relative intensities at nominal m/z 0..max_mz, then the sqrt relative
    intensity of each neutral loss 0..max_loss-1 below the last peak of >= 1 % (the largest peak per bin)."""
    out = np.zeros(config.n_inputs, dtype=np.float32)
    if len(spectrum.mz) == 0 or spectrum.intensities.max() <= 0:
        return out
    rel = np.sqrt(np.clip(spectrum.intensities / spectrum.intensities.max(), 0, None)).astype(np.float32)
    mz = np.rint(spectrum.mz).astype(np.int64)
    inside = (mz >= 0) & (mz <= config.max_mz)
    np.maximum.at(out, mz[inside], rel[inside])
    norm = np.linalg.norm(out[:config.max_mz + 1])
    if norm > 0:
        out[:config.max_mz + 1] /= norm
    last = mz[rel >= 0.1].max()  # sqrt(0.01): the last peak of >= 1 % relative intensity
    loss = last - mz
    ok = (loss >= 0) & (loss < config.max_loss)
    np.maximum.at(out, config.max_mz + 1 + loss[ok], rel[ok])
    return out


def spectrum_rows(spectra: Sequence[Spectrum], config: FingerprintConfig) -> np.ndarray:
    """(len(spectra), n_inputs) float32: `spectrum_vector` of each (the input of both structure models)."""
    if not spectra:
        return np.zeros((0, config.n_inputs), dtype=np.float32)
    return np.stack([spectrum_vector(s, config) for s in spectra])


class FingerprintModel:
    """A trained spectrum -> fingerprint-probability network with its encoding (`FingerprintConfig`)."""

    def __init__(self, config: FingerprintConfig, network=None, info: Optional[dict] = None) -> None:
        import torch

        self.config, self.info = config, dict(info or {})
        self.network = network if network is not None else build_network(config)
        self.network.eval()
        self._torch = torch
        self._fingerprints: dict[str, Optional[np.ndarray]] = {}

    def predict(self, spectra: Sequence[Spectrum], batch_size: int = 512) -> np.ndarray:
        """(len(spectra), n_outputs) probabilities that each fingerprint bit is set."""
        torch = self._torch
        rows = spectrum_rows(spectra, self.config)
        out = []
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                out.append(torch.sigmoid(self.network(torch.from_numpy(rows[start:start + batch_size]))).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.n_outputs), dtype=np.float32)

    #: fingerprints kept per model (a search sees the same candidates again and again)
    CACHE_SIZE = 200_000

    def fingerprints(self, smiles: Sequence[Optional[str]]) -> tuple[np.ndarray, np.ndarray]:
        """((n, n_outputs) float32 bits, (n,) bool parsed) for candidate SMILES; unparsable ones are all 0."""
        out = np.zeros((len(smiles), self.config.n_outputs), dtype=np.float32)
        ok = np.zeros(len(smiles), dtype=bool)
        for i, text in enumerate(smiles):
            key = text or ""
            if key not in self._fingerprints:
                if len(self._fingerprints) >= self.CACHE_SIZE:
                    self._fingerprints.clear()
                self._fingerprints[key] = structure_bits(key, self.config)
            bits = self._fingerprints[key]
            if bits is not None:
                out[i], ok[i] = bits, True
        return out, ok

    def agreement(self, probabilities: np.ndarray, smiles: Sequence[Optional[str]],
                  bits: Optional[tuple[np.ndarray, np.ndarray]] = None) -> np.ndarray:
        """(len(smiles), 3): mean Bernoulli log-likelihood of the candidate's bits under the prediction, cosine
        and soft Tanimoto of prediction and bits (`AGREEMENT_NAMES`); NaN where the SMILES does not parse.
        `bits`: the candidates' ``fingerprints`` computed before (a library's `structure_cache`)."""
        bits, ok = bits if bits is not None else self.fingerprints(smiles)
        p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-4, 1 - 1e-4)
        ll = (bits @ np.log(p) + (1 - bits) @ np.log(1 - p)) / p.size
        inter = bits @ p
        cos = inter / np.maximum(np.linalg.norm(bits, axis=1) * np.linalg.norm(p), 1e-12)
        tani = inter / np.maximum(bits.sum(1) + p.sum() - inter, 1e-12)
        out = np.stack([ll, cos, tani], axis=1)
        out[~ok] = np.nan
        return out

    def save(self, folder: str | Path) -> Path:
        return save_networks(folder, {"": self.network}, self.config, self.info, CONFIG_FILE)

    @classmethod
    def load(cls, folder: str | Path) -> "FingerprintModel":
        config, info = read_network_config(folder, "fingerprint model", CONFIG_FILE,
                                           lambda raw: FingerprintConfig(**raw), FORMAT_VERSION)
        network = build_network(config)
        load_network_weights(folder, {"": network})
        return cls(config, network, info)


def build_network(config: FingerprintConfig):
    import torch

    h = config.hidden
    return torch.nn.Sequential(torch.nn.Linear(config.n_inputs, h), torch.nn.ReLU(), torch.nn.Dropout(config.dropout),
                               torch.nn.Linear(h, h), torch.nn.ReLU(), torch.nn.Dropout(config.dropout),
                               torch.nn.Linear(h, config.n_outputs))


def structure_bits(smiles: str, config: FingerprintConfig) -> Optional[np.ndarray]:
    """Morgan bits then MACCS keys of a SMILES (None when RDKit cannot parse it)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import MACCSkeys

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        return None
    out = np.zeros(config.n_outputs, dtype=np.float32)
    out[:config.morgan_bits] = _morgan(config.morgan_radius, config.morgan_bits).GetFingerprintAsNumPy(mol) > 0
    maccs = MACCSkeys.GenMACCSKeys(mol)
    out[config.morgan_bits + np.fromiter(maccs.GetOnBits(), dtype=np.int64)] = 1.0
    return out


@lru_cache(maxsize=4)
def _morgan(radius: int, n_bits: int):
    from rdkit.Chem import rdFingerprintGenerator

    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)


def train_fingerprint_model(spectra: Iterable[Spectrum], config: FingerprintConfig = FingerprintConfig(),
                            epochs: int = DEFAULT_EPOCHS, batch_size: int = 128, learning_rate: float = 1e-3,
                            peak_dropout: float = 0.1, seed: int = 0, info: Optional[dict] = None,
                            pretrain: Iterable[Spectrum] = (),
                            pretrain_epochs: int = DEFAULT_PRETRAIN_EPOCHS) -> FingerprintModel:
    """Fit the network (binary cross-entropy per bit, AdamW) on measured spectra with a SMILES.

    `peak_dropout`: share of input bins zeroed per step (spectra from other instruments miss peaks).
    `pretrain`: *predicted* spectra of other structures (``llm4ms predict``), seen for `pretrain_epochs` before the
    measured ones, with the same optimiser: they teach which bits go with which peaks over far more structures than
    the measured set holds, and the measured epochs then adapt the network to real spectra. (Mixing both in one
    set was worse on validation: predicted spectra then outweigh the measured ones.)
    """
    import torch

    x, y, _ = training_examples(spectra, config)
    if len(x) < 2:
        raise ConfigError("fingerprint model training needs >= 2 spectra with a parsable SMILES")
    px, py, _ = training_examples(pretrain, config)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    network = build_network(config)
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-2)
    network.train()
    fit = dict(network=network, optimizer=optimizer, batch_size=batch_size, peak_dropout=peak_dropout,
               generator=generator)
    if len(px):
        _fit(px, py, pretrain_epochs, **fit)
    loss = _fit(x, y, epochs, **fit)
    settings = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                "peak_dropout": peak_dropout, "seed": seed, "spectra": len(x), "final_loss": round(loss, 5)}
    if len(px):
        settings.update(pretrain_spectra=len(px), pretrain_epochs=pretrain_epochs)
    return FingerprintModel(config, network, {**(info or {}), "training": settings})


def training_examples(spectra: Iterable[Spectrum], config: FingerprintConfig):
    """(inputs, bits) float32 tensors and (n,) compound keys (InChIKey first block, else SMILES) of the spectra
    that have peaks and a parsable SMILES: what both structure models learn from."""
    import torch

    rows, targets, keys = [], [], []
    for s in spectra:
        bits = structure_bits(s.smiles or "", config)
        if bits is not None and len(s.mz):
            rows.append(spectrum_vector(s, config))
            targets.append(bits)
            keys.append(s.inchikey14 or s.smiles)
    if not rows:
        return torch.zeros((0, config.n_inputs)), torch.zeros((0, config.n_outputs)), np.array([])
    return torch.from_numpy(np.stack(rows)), torch.from_numpy(np.stack(targets)), np.array(keys)


def _fit(x, y, epochs: int, network, optimizer, batch_size: int, peak_dropout: float, generator) -> float:
    """`epochs` passes over (x, y) in shuffled batches with peak dropout; the last batch's loss."""
    import torch

    loss = torch.tensor(float("nan"))
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            keep = (torch.rand(x[batch].shape, generator=generator) > peak_dropout).float()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(network(x[batch] * keep), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return float(loss.detach())
