"""Training data and loop for the EI predictor (importable; `data_prep/train_predictor.py` is the front door).

Targets are per compound (InChIKey first block): each measured spectrum is made nominal, scaled to max 1,
square-rooted, and the replicates of a compound are averaged, so a compound measured ten times does not
weigh ten times more than one measured once.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch

from llm4ms.data.split import compound_split
from llm4ms.predict.featurize import Featurized, FeaturizerSettings, featurize_many
from llm4ms.predict.model import LossSettings, spectrum_loss
from llm4ms.predict.predictor import EIPredictor
from llm4ms.spectrum import Spectrum, binned_vector, normalize_intensities, to_nominal_mass
from llm4ms.data.shared import shared_path
from llm4ms.io import read_spectra

log = logging.getLogger(__name__)


@dataclass
class CompoundTable:
    """One row per compound: key, SMILES, split, features, nominal mass and sqrt-intensity target."""

    keys: list[str]
    smiles: list[str]
    splits: np.ndarray
    features: np.ndarray
    masses: np.ndarray
    targets: np.ndarray
    rejected: dict[str, int] = field(default_factory=dict)
    n_spectra: int = 0

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.splits == split
        return self.features[rows], self.masses[rows], self.targets[rows]


def sqrt_target(spectrum: Spectrum, max_mz: int) -> Optional[np.ndarray]:
    """Nominal, max-1, sqrt-scaled bin vector of a measured spectrum (None if it has no peak)."""
    s = normalize_intensities(to_nominal_mass(spectrum))
    if s is None:
        return None
    return binned_vector(s, max_mz=max_mz, power=0.5)


def build_compound_table(spectra: Iterable[Spectrum], featurizer: FeaturizerSettings, max_mz: int = 1000,
                         n_jobs: int = 1) -> CompoundTable:
    """Average replicate targets per InChIKey first block and featurise each compound once."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    smiles: dict[str, str] = {}
    n_spectra = 0
    for spectrum in spectra:
        key, smi = spectrum.inchikey14, spectrum.smiles
        if not key or not smi:
            continue
        vec = sqrt_target(spectrum, max_mz)
        if vec is None:
            continue
        n_spectra += 1
        if key in sums:
            sums[key] += vec
            counts[key] += 1
        else:
            sums[key], counts[key], smiles[key] = vec.copy(), 1, smi
    keys = sorted(sums)
    items: list[Featurized] = featurize_many([smiles[k] for k in keys], featurizer, n_jobs=n_jobs)
    rejected: dict[str, int] = {}
    rows, feats, masses, targets = [], [], [], []
    for key, item in zip(keys, items):
        if not item.ok:
            rejected[item.reason] = rejected.get(item.reason, 0) + 1
            continue
        target = sums[key] / counts[key]
        target /= max(float(target.max()), 1e-12)
        rows.append(key)
        feats.append(item.features)
        masses.append(item.nominal_mass)
        targets.append(target.astype(np.float32))
    return CompoundTable(
        keys=rows, smiles=[smiles[k] for k in rows],
        splits=np.asarray([compound_split(k) for k in rows]),
        features=np.stack(feats).astype(np.float32), masses=np.asarray(masses, dtype=np.int64),
        targets=np.stack(targets), rejected=rejected, n_spectra=n_spectra)


@dataclass
class TrainSettings:
    epochs: int = 80
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 8
    max_minutes: float = 6.0
    seed: int = 0
    loss: LossSettings = field(default_factory=LossSettings)


def _batches(n: int, batch_size: int, rng: np.random.Generator, shuffle: bool):
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def evaluate_loss(predictor: EIPredictor, x: np.ndarray, m: np.ndarray, y: np.ndarray,
                  settings: TrainSettings) -> float:
    model = predictor.model.eval()
    total = 0.0
    with torch.inference_mode():
        for idx in _batches(len(x), 512, np.random.default_rng(0), shuffle=False):
            pred = model(torch.from_numpy(x[idx]), torch.from_numpy(m[idx]))
            total += float(spectrum_loss(pred, torch.from_numpy(y[idx]), settings.loss)) * len(idx)
    return total / max(len(x), 1)


def train(predictor: EIPredictor, table: CompoundTable, settings: TrainSettings = TrainSettings()) -> dict:
    """Adam on the train split, early stopping on validation loss; keeps the best weights."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    xt, mt, yt = table.subset("train")
    xv, mv, yv = table.subset("validation")
    model = predictor.model
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    best, best_state, best_epoch, history = float("inf"), None, -1, []
    t0 = time.monotonic()
    for epoch in range(settings.epochs):
        model.train()
        running = 0.0
        for idx in _batches(len(xt), settings.batch_size, rng, shuffle=True):
            pred = model(torch.from_numpy(xt[idx]), torch.from_numpy(mt[idx]))
            loss = spectrum_loss(pred, torch.from_numpy(yt[idx]), settings.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item() * len(idx)
        val = evaluate_loss(predictor, xv, mv, yv, settings)
        sched.step(val)
        history.append({"epoch": epoch + 1, "train_loss": running / len(xt), "val_loss": val,
                        "minutes": (time.monotonic() - t0) / 60})
        log.info("epoch %d train %.4f val %.4f", epoch + 1, running / len(xt), val)
        if val < best - 1e-4:
            best, best_epoch, best_state = val, epoch + 1, copy.deepcopy(model.state_dict())
        elif epoch + 1 - best_epoch >= settings.patience:
            break
        if (time.monotonic() - t0) / 60 > settings.max_minutes:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {"best_epoch": best_epoch, "best_val_loss": best, "epochs_run": len(history),
            "minutes": (time.monotonic() - t0) / 60, "history": history,
            "n_train": int(len(xt)), "n_validation": int(len(xv))}


def default_data_path() -> Path:
    return shared_path("massbank_ei", "massbank_ei_nominal.msp")


def extra_train_spectra(all_path: Path, index_path: Path, min_ev: float, exclude_keys: set[str],
                        max_ev: float = 1000.0) -> list[Spectrum]:
    """Records of `massbank_ei_all.msp` outside the nominal set that may add TRAIN compounds.

    What the nominal set left out (see the README next to it) is mostly low-energy EI (13.5-60 eV) of
    the Tokyo collection, derivatised records (structure = parent, so never usable) and 70 eV records
    without structure. Kept: not in the nominal set, MS (not MS2), no derivative, a stated ionization
    energy in [min_ev, max_ev], a structure, a TRAIN-split compound (`compound_split`, so no
    validation/test compound can leak in) that the nominal set does not already hold (its 70 eV
    target stays as it is). m/z is made nominal by the usual `to_nominal_mass` in the target builder.
    """
    import csv

    allowed: set[str] = set()
    with open(index_path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row.get("in_nominal_set") == "1" or (row.get("derivative") or "").strip():
                continue
            if row.get("ms_type") != "MS" or not row.get("inchikey"):
                continue
            try:
                ev = float(row.get("ionization_energy_eV") or "nan")
            except ValueError:
                continue
            if min_ev <= ev <= max_ev:
                allowed.add(row["accession"])
    out = []
    for spectrum in read_spectra(all_path):
        key = spectrum.inchikey14
        if spectrum.get("id") in allowed and key and spectrum.smiles and key not in exclude_keys \
                and compound_split(key) == "train":
            out.append(spectrum)
    return out
