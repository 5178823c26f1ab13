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
    #: ionization-energy group of each row (`energy_group`; 0 = 70 eV); None when every row is 70 eV
    conditions: Optional[np.ndarray] = None

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.splits == split
        return self.features[rows], self.masses[rows], self.targets[rows]


def sqrt_target(spectrum: Spectrum, max_mz: int) -> Optional[np.ndarray]:
    """Nominal, max-1, sqrt-scaled bin vector of a measured spectrum (None if it has no peak)."""
    s = normalize_intensities(to_nominal_mass(spectrum))
    if s is None:
        return None
    return binned_vector(s, max_mz=max_mz, power=0.5)


#: upper ends (eV) of the ionization-energy groups a conditioned predictor learns apart; 65-80 eV is group 0
ENERGY_GROUP_EDGES = (17.0, 27.0, 45.0, 65.0)


def energy_group(ev: Optional[float]) -> int:
    """0 for standard EI (65-80 eV or unstated), else 1..5 (<= 17, <= 27, <= 45, < 65, > 80 eV)."""
    if ev is None or not np.isfinite(ev) or 65.0 <= ev <= 80.0:
        return 0
    for group, edge in enumerate(ENERGY_GROUP_EDGES, start=1):
        if ev <= edge:
            return group
    return len(ENERGY_GROUP_EDGES) + 1


N_ENERGY_GROUPS = len(ENERGY_GROUP_EDGES) + 2


def build_compound_table(spectra: Iterable[Spectrum], featurizer: FeaturizerSettings, max_mz: int = 1000,
                         n_jobs: int = 1, groups: Optional[Sequence[int]] = None) -> CompoundTable:
    """Average replicate targets per InChIKey first block and featurise each compound once.

    With `groups` (one `energy_group` per spectrum), replicates are averaged per compound and group, so a
    compound measured at 20 and 70 eV gives two rows; rows of groups > 0 must be TRAIN compounds (they
    train the conditioned predictor; validation and test stay at 70 eV).
    """
    sums: dict[tuple[str, int], np.ndarray] = {}
    counts: dict[tuple[str, int], int] = {}
    smiles: dict[str, str] = {}
    n_spectra = 0
    for i, spectrum in enumerate(spectra):
        key, smi = spectrum.inchikey14, spectrum.smiles
        if not key or not smi:
            continue
        vec = sqrt_target(spectrum, max_mz)
        if vec is None:
            continue
        cell = (key, int(groups[i]) if groups is not None else 0)
        if cell[1] and compound_split(key) != "train":
            raise ValueError(f"{spectrum.get('id') or key}: only TRAIN compounds may have non-70 eV rows")
        n_spectra += 1
        if cell in sums:
            sums[cell] += vec
            counts[cell] += 1
        else:
            sums[cell], counts[cell] = vec.copy(), 1
            smiles.setdefault(key, smi)
    keys = sorted(smiles)
    items: dict[str, Featurized] = dict(zip(keys, featurize_many([smiles[k] for k in keys], featurizer,
                                                                 n_jobs=n_jobs)))
    rejected: dict[str, int] = {}
    for item in items.values():
        if not item.ok:
            rejected[item.reason] = rejected.get(item.reason, 0) + 1
    rows, conds, feats, masses, targets = [], [], [], [], []
    for cell in sorted(sums):
        item = items[cell[0]]
        if not item.ok:
            continue
        target = sums[cell] / counts[cell]
        target /= max(float(target.max()), 1e-12)
        rows.append(cell[0])
        conds.append(cell[1])
        feats.append(item.features)
        masses.append(item.nominal_mass)
        targets.append(target.astype(np.float32))
    if not rows:
        from llm4ms.errors import ConfigError

        raise ConfigError(f"no spectrum with a usable structure and peaks (structures refused: {rejected or 'none'})")
    return CompoundTable(
        keys=rows, smiles=[smiles[k] for k in rows],
        splits=np.asarray([compound_split(k) for k in rows]),
        features=np.stack(feats).astype(np.float32), masses=np.asarray(masses, dtype=np.int64),
        targets=np.stack(targets), rejected=rejected, n_spectra=n_spectra,
        conditions=np.asarray(conds, dtype=np.int64) if any(conds) else None)


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
    #: > 0: validate and keep an exponential moving average of the weights (decay per step) instead of
    #: the raw weights (torch.optim.swa_utils); a smoother optimum than early stopping alone
    ema: float = 0.0


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


class EnergyConditioning(torch.nn.Module):
    """Training-time wrapper: the predictor's last hidden state, scaled and shifted per energy group (FiLM).

    Why: about 1,000 TRAIN compounds of MassBank were measured only at 10-60 eV (the Tokyo collection),
    and their spectra differ from 70 eV ones (less fragmentation), so adding them as if they were 70 eV
    hurt. Conditioning lets the shared body learn from them while group 0 (70 eV) passes unchanged, so
    the saved predictor is the plain network and predicts 70 eV spectra exactly as before. Measured on
    validation it gained nothing beyond seed noise (benchmarks/RESULTS.md §4d); kept as a training option.
    """

    def __init__(self, model: torch.nn.Module, n_groups: int = N_ENERGY_GROUPS) -> None:
        super().__init__()
        if not hasattr(model, "decode"):
            raise ValueError("energy conditioning needs a single NEIMS network (not an ensemble or teacher)")
        self.model = model
        width = model.forward_head.in_features
        self.scale = torch.nn.Parameter(torch.zeros(n_groups, width))
        self.shift = torch.nn.Parameter(torch.zeros(n_groups, width))

    def forward(self, features: torch.Tensor, mol_mass: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        h = self.model.body(features)
        other = (groups > 0).to(h.dtype).unsqueeze(1)
        h = h * (1.0 + other * self.scale[groups]) + other * self.shift[groups]
        return self.model.decode(h, mol_mass)


def _batches(n: int, batch_size: int, rng: np.random.Generator, shuffle: bool):
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _forward(model: torch.nn.Module, x: np.ndarray, m: np.ndarray, idx: np.ndarray,
             graphs: Optional[list] = None, conditions: Optional[np.ndarray] = None) -> torch.Tensor:
    """One batch through the student (features, mass), the graph teacher (features, mass, graphs) or the
    energy-conditioned student (features, mass, energy groups)."""
    args = [torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)), torch.from_numpy(m[idx])]
    if conditions is not None:
        args.append(torch.from_numpy(conditions[idx]))
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
    are given to the network as a third input. A table with non-70 eV rows (`conditions`) trains through
    `EnergyConditioning`; validation rows are 70 eV, so early stopping judges the plain network.
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    train_rows, val_rows = np.flatnonzero(table.splits == "train"), np.flatnonzero(table.splits == "validation")
    xt, mt, yt = table.features[train_rows], table.masses[train_rows], table.targets[train_rows]
    xv, mv, yv = table.features[val_rows], table.masses[val_rows], table.targets[val_rows]
    gt = [graphs[i] for i in train_rows] if graphs is not None else None
    gv = [graphs[i] for i in val_rows] if graphs is not None else None
    wt = np.ones(len(xt), dtype=np.float32)
    ct = table.conditions[train_rows] if table.conditions is not None else None
    if table.conditions is not None and np.any(table.conditions[val_rows]):
        raise ValueError("validation rows must be 70 eV (energy group 0)")
    if pseudo is not None:
        if graphs is not None:
            raise ValueError("teacher-labelled rows are for the student (no graphs)")
        xt = np.concatenate([xt, pseudo.features.astype(np.float32, copy=False)])
        mt = np.concatenate([mt, pseudo.masses.astype(np.int64, copy=False)])
        yt = np.concatenate([yt, pseudo.targets.astype(np.float32, copy=False)])
        wt = np.concatenate([wt, np.full(len(pseudo.features), pseudo.weight, dtype=np.float32)])
        if ct is not None:
            ct = np.concatenate([ct, np.zeros(len(pseudo.features), dtype=np.int64)])
    model = _model(predictor)
    net = EnergyConditioning(model) if ct is not None else model
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    averaged = None
    if settings.ema > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(settings.ema))
    judged = averaged.module if averaged is not None else model
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    best, best_state, best_epoch, history = float("inf"), None, -1, []
    t0 = time.monotonic()
    for epoch in range(settings.epochs):
        net.train()
        running = 0.0
        for idx in _batches(len(xt), settings.batch_size, rng, shuffle=True):
            pred = _forward(net, xt, mt, idx, gt, ct)
            w = torch.from_numpy(wt[idx])
            loss = spectrum_loss(pred, torch.from_numpy(yt[idx]), settings.loss, weights=w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if averaged is not None:
                averaged.update_parameters(model)
            running += loss.item() * len(idx)
        val = evaluate_loss(judged, xv, mv, yv, settings, gv)
        sched.step(val)
        history.append({"epoch": epoch + 1, "train_loss": running / len(xt), "val_loss": val,
                        "minutes": (time.monotonic() - t0) / 60})
        log.info("epoch %d train %.4f val %.4f", epoch + 1, running / len(xt), val)
        if val < best - 1e-4:
            best, best_epoch, best_state = val, epoch + 1, copy.deepcopy(judged.state_dict())
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


def train_split_spectra(data: Optional[Path] = None) -> list[Spectrum]:
    """The TRAIN-split spectra of the nominal set: what a predictor learned from, as reference spectra for
    benchmarks (`EIPredictor.use_references`; no validation or test compound among them)."""
    return [s for s in read_spectra(data or default_data_path())
            if s.inchikey14 and compound_split(s.inchikey14) == "train"]


def resolve_references(source: str, data: Optional[Path] = None) -> "str | list[Spectrum]":
    """A benchmark's `--references`: 'train' (`train_split_spectra` of `data`) or a spectrum file, as given."""
    return train_split_spectra(data) if source == "train" else source


def extra_train_spectra(all_path: Path, index_path: Path, min_ev: float, exclude_keys: set[str],
                        max_ev: float = 1000.0) -> list[Spectrum]:
    """New TRAIN compounds from other-energy records (`extra_train_records`), without their energies."""
    return [s for s, _ in extra_train_records(all_path, index_path, min_ev, exclude_keys, max_ev)]


def extra_train_records(all_path: Path, index_path: Path, min_ev: float, exclude_keys: set[str],
                        max_ev: float = 1000.0, other_energies_of_excluded: bool = False
                        ) -> list[tuple[Spectrum, float]]:
    """Records of `massbank_ei_all.msp` outside the nominal set that may add TRAIN compounds.

    What the nominal set left out (see the README next to it) is mostly low-energy EI (13.5-60 eV) of
    the Tokyo collection, derivatised records (structure = parent, so never usable) and 70 eV records
    without structure. Kept: not in the nominal set, MS (not MS2), no derivative, a stated ionization
    energy in [min_ev, max_ev], a structure, a TRAIN-split compound (`compound_split`, so no
    validation/test compound can leak in) that the nominal set does not already hold (its 70 eV
    target stays as it is). m/z is made nominal by the usual `to_nominal_mass` in the target builder.
    `other_energies_of_excluded` also keeps the non-70 eV records of the excluded compounds (for an
    energy-conditioned predictor, where they form rows of their own). Returns (spectrum, energy in eV).
    """
    import csv

    allowed: dict[str, float] = {}
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
                allowed[row["accession"]] = ev
    out = []
    for spectrum in read_spectra(all_path):
        key, ev = spectrum.inchikey14, allowed.get(spectrum.get("id"))
        if ev is None or not key or not spectrum.smiles or compound_split(key) != "train":
            continue
        if key not in exclude_keys or (other_energies_of_excluded and energy_group(ev) != 0):
            out.append((spectrum, ev))
    return out


def training_table(featurizer: FeaturizerSettings, data: Optional[Path] = None,
                   extra_min_ev: Optional[float] = None, licenses: Optional[Sequence[str]] = None,
                   n_jobs: int = 1, energy_conditioning: bool = False) -> tuple[CompoundTable, int]:
    """The compound table every predictor script trains on, and how many extra other-energy spectra joined.

    Nominal-set spectra (default `massbank_ei_nominal.msp`), plus TRAIN compounds from other-energy
    records when `extra_min_ev` is set (`extra_train_records`), optionally only some licences. With
    `energy_conditioning` each extra spectrum keeps its energy group (rows apart from 70 eV ones, also for
    compounds of the nominal set) and training goes through `EnergyConditioning`; without it they count
    as 70 eV spectra of new compounds (predictor v2).
    """
    spectra = list(read_spectra(data or default_data_path()))
    groups = [0] * len(spectra)
    n_extra = 0
    if extra_min_ev is not None:
        extra = extra_train_records(shared_path("massbank_ei", "massbank_ei_all.msp"),
                                    shared_path("massbank_ei", "massbank_ei_index.tsv"),
                                    extra_min_ev, {s.inchikey14 for s in spectra},
                                    other_energies_of_excluded=energy_conditioning)
        n_extra = len(extra)
        log.info("extra train spectra (>= %g eV): %d of %d compounds", extra_min_ev, n_extra,
                 len({s.inchikey14 for s, _ in extra}))
        spectra += [s for s, _ in extra]
        groups += [energy_group(ev) if energy_conditioning else 0 for _, ev in extra]
    if licenses:
        wanted = set(licenses)
        keep = [i for i, s in enumerate(spectra) if s.get("license") in wanted]
        spectra, groups = [spectra[i] for i in keep], [groups[i] for i in keep]
    t0 = time.monotonic()
    table = build_compound_table(spectra, featurizer, n_jobs=n_jobs, groups=groups)
    log.info("%d spectra -> %d rows, %d compounds (rejected %s) in %.1f s", table.n_spectra, len(table.keys),
             len(set(table.keys)), table.rejected, time.monotonic() - t0)
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
