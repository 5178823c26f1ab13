"""Training data and loop for the EI predictor (importable; `data_prep/train_predictor.py` is the front door).

Targets are per compound (InChIKey first block): each measured spectrum is made nominal, scaled to max 1,
square-rooted, and the replicates of a compound are averaged, so a compound measured ten times does not
weigh ten times more than one measured once.
"""
from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from llm4ms.data.split import compound_split
from llm4ms.predict.featurize import Featurized, FeaturizerSettings, featurize_many
from llm4ms.predict.model import LossSettings, spectrum_loss
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


@dataclass
class PseudoLabels:
    """Structures without a measured spectrum, labelled by a teacher (`llm4ms.predict.teacher`).

    Rows are student features, nominal masses and the teacher's sqrt-intensity predictions (max 1); they
    join the TRAIN rows with `weight` (< 1: a teacher's guess counts less than a measurement).
    """

    features: np.ndarray
    masses: np.ndarray
    targets: np.ndarray
    weight: float = 0.5


def _batches(n: int, batch_size: int, rng: np.random.Generator, shuffle: bool):
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _forward(model: torch.nn.Module, x: np.ndarray, m: np.ndarray, idx: np.ndarray,
             graphs: Optional[list] = None) -> torch.Tensor:
    """One batch through the student (features, mass) or the graph teacher (features, mass, graphs)."""
    args = [torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)), torch.from_numpy(m[idx])]
    if graphs is not None:
        from llm4ms.predict.teacher import collate

        args.append(collate(graphs, idx))
    return model(*args)


def _model(predictor) -> torch.nn.Module:
    return getattr(predictor, "model", predictor)


def evaluate_loss(predictor, x: np.ndarray, m: np.ndarray, y: np.ndarray,
                  settings: TrainSettings, graphs: Optional[list] = None) -> float:
    model = _model(predictor).eval()
    total = 0.0
    with torch.inference_mode():
        for idx in _batches(len(x), 512, np.random.default_rng(0), shuffle=False):
            pred = _forward(model, x, m, idx, graphs)
            total += float(spectrum_loss(pred, torch.from_numpy(y[idx]), settings.loss)) * len(idx)
    return total / max(len(x), 1)


def train(predictor, table: CompoundTable, settings: TrainSettings = TrainSettings(),
          graphs: Optional[list] = None, pseudo: Optional[PseudoLabels] = None) -> dict:
    """AdamW on the train split (+ teacher-labelled rows), early stopping on validation loss; keeps the best.

    `predictor` is an `EIPredictor` or a bare network; `graphs` (one per table row, for the graph teacher)
    are given to the network as a third input.
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    train_rows, val_rows = np.flatnonzero(table.splits == "train"), np.flatnonzero(table.splits == "validation")
    xt, mt, yt = table.features[train_rows], table.masses[train_rows], table.targets[train_rows]
    xv, mv, yv = table.features[val_rows], table.masses[val_rows], table.targets[val_rows]
    gt = [graphs[i] for i in train_rows] if graphs is not None else None
    gv = [graphs[i] for i in val_rows] if graphs is not None else None
    wt = np.ones(len(xt), dtype=np.float32)
    if pseudo is not None:
        if graphs is not None:
            raise ValueError("teacher-labelled rows are for the student (no graphs)")
        xt = np.concatenate([xt, pseudo.features.astype(np.float32, copy=False)])
        mt = np.concatenate([mt, pseudo.masses.astype(np.int64, copy=False)])
        yt = np.concatenate([yt, pseudo.targets.astype(np.float32, copy=False)])
        wt = np.concatenate([wt, np.full(len(pseudo.features), pseudo.weight, dtype=np.float32)])
    model = _model(predictor)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    best, best_state, best_epoch, history = float("inf"), None, -1, []
    t0 = time.monotonic()
    for epoch in range(settings.epochs):
        model.train()
        running = 0.0
        for idx in _batches(len(xt), settings.batch_size, rng, shuffle=True):
            pred = _forward(model, xt, mt, idx, gt)
            w = torch.from_numpy(wt[idx])
            loss = spectrum_loss(pred, torch.from_numpy(yt[idx]), settings.loss, weights=w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item() * len(idx)
        val = evaluate_loss(model, xv, mv, yv, settings, gv)
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
            "n_train": int(len(train_rows)), "n_validation": int(len(val_rows)),
            "n_pseudo": int(len(pseudo.features)) if pseudo is not None else 0}


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


def training_table(featurizer: FeaturizerSettings, data: Optional[Path] = None,
                   extra_min_ev: Optional[float] = None, licenses: Optional[Sequence[str]] = None,
                   n_jobs: int = 1) -> tuple[CompoundTable, int]:
    """The compound table every predictor script trains on, and how many extra low-energy spectra joined.

    Nominal-set spectra (default `massbank_ei_nominal.msp`), plus TRAIN compounds from other-energy
    records when `extra_min_ev` is set (`extra_train_spectra`), optionally only some licences.
    """
    spectra = list(read_spectra(data or default_data_path()))
    n_extra = 0
    if extra_min_ev is not None:
        extra = extra_train_spectra(shared_path("massbank_ei", "massbank_ei_all.msp"),
                                    shared_path("massbank_ei", "massbank_ei_index.tsv"),
                                    extra_min_ev, {s.inchikey14 for s in spectra})
        n_extra = len(extra)
        log.info("extra train spectra (>= %g eV): %d of %d compounds", extra_min_ev, n_extra,
                 len({s.inchikey14 for s in extra}))
        spectra += extra
    if licenses:
        wanted = set(licenses)
        spectra = [s for s in spectra if s.get("license") in wanted]
    t0 = time.monotonic()
    table = build_compound_table(spectra, featurizer, n_jobs=n_jobs)
    log.info("%d spectra -> %d compounds (rejected %s) in %.1f s", table.n_spectra, len(table.keys),
             table.rejected, time.monotonic() - t0)
    return table, n_extra


def load_pseudo_labels(paths: Sequence[Path], featurizer: FeaturizerSettings, weight: float = 0.5,
                       max_rows: Optional[int] = None, measured_keys: Iterable[str] = ()) -> PseudoLabels:
    """Teacher-labelled rows from `.npz` parts (files, or folders of `part-*.npz`), in a fixed order.

    Refuses parts made with another featuriser (their features would not fit the student); drops rows of
    compounds that have a measured spectrum (`measured_keys`) or that are not TRAIN compounds, so no
    validation or test structure can reach the student through the teacher.
    """
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        files += sorted(path.glob("part-*.npz")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"no teacher-labelled parts in {', '.join(map(str, paths))}")
    wanted = featurizer.to_dict()
    measured, seen = set(measured_keys), set()
    feats, masses, targets = [], [], []
    for file in files:
        with np.load(file, allow_pickle=False) as part:
            if json.loads(str(part["featurizer"])) != wanted:
                raise ValueError(f"{file}: labelled with another featuriser than this student's")
            keep = []
            for i, key in enumerate(part["keys"].tolist()):
                if key in measured or key in seen or compound_split(key) != "train":
                    continue
                seen.add(key)
                keep.append(i)
            feats.append(part["features"][keep])
            masses.append(part["masses"][keep])
            targets.append(part["targets"][keep])
    pseudo = PseudoLabels(np.concatenate(feats), np.concatenate(masses).astype(np.int64),
                          np.concatenate(targets), weight)
    if max_rows is not None and max_rows < len(pseudo.features):
        pseudo = PseudoLabels(pseudo.features[:max_rows], pseudo.masses[:max_rows], pseudo.targets[:max_rows],
                              weight)
    log.info("teacher-labelled rows: %d (weight %g)", len(pseudo.features), weight)
    return pseudo
