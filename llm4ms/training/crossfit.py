"""Cross-fitted in-silico spectra of training compounds (measured-vs-predicted training pairs).

A predictor fit on a compound predicts that compound closer to its measured spectrum than it ever
predicts an unseen one, so pairs built from its own training predictions teach the encoder an easier
task than the benchmark (unseen compounds). Here the train compounds are cut into K folds by a hash of
the InChIKey first block; fold k is predicted by a predictor fit on the other K-1 folds (early stopping
on the validation split, test compounds never used), so every prediction is "unseen"-quality.
"""
from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from llm4ms.data.split import compound_split
from llm4ms.spectrum import Spectrum

log = logging.getLogger(__name__)
FOLD_SALT = "llm4ms-crossfit-v1"


def fold_of(inchikey14: str, folds: int, salt: str = FOLD_SALT) -> int:
    """Stable fold number in [0, folds) of a compound (independent of the train/validation/test split hash)."""
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    digest = hashlib.sha256(f"{salt}:{inchikey14[:14].upper()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds


@dataclass(frozen=True)
class CrossfitSettings:
    """Predictor settings per fold; defaults follow the bundled predictor (hidden 512x512, dropout 0.5)."""

    folds: int = 3
    n_bits: int = 2048
    hidden: tuple[int, ...] = (512, 512)
    dropout: float = 0.5
    mass_margin: int = 5
    epochs: int = 15
    max_minutes: float = 3.0
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    seed: int = 0
    #: predictor v2 options (see data_prep/train_predictor.py): extra feature blocks, seeds per fold
    #: (averaged, like the v2 ensemble), the formula's isotope envelope written into the predictions
    extra: tuple[str, ...] = ()
    members: int = 1
    isotope_envelope: str = ""


def crossfit_predictions(spectra: Sequence[Spectrum], settings: CrossfitSettings = CrossfitSettings(),
                         table=None) -> tuple[list[Spectrum], list[dict]]:
    """Predicted spectra (one per train compound that the predictor accepts) and per-fold training info.

    `spectra` are measured spectra of any split; only train compounds are predicted and only train +
    validation compounds are featurised (a test compound is dropped before anything else happens).
    """
    import torch

    from llm4ms.predict.featurize import FeaturizerSettings
    from llm4ms.predict.model import NEIMSEnsemble
    from llm4ms.predict.predictor import EIPredictor, OutputSettings
    from llm4ms.predict.training import TrainSettings, build_compound_table, train

    featurizer = FeaturizerSettings(n_bits=settings.n_bits, extra=tuple(settings.extra))
    if table is None:
        usable = (s for s in spectra if s.inchikey14 and compound_split(s.inchikey14) != "test")
        table = build_compound_table(usable, featurizer)
    folds = np.array([fold_of(k, settings.folds) if split == "train" else -1
                      for k, split in zip(table.keys, table.splits)])
    predicted: list[Spectrum] = []
    info: list[dict] = []
    for k in range(settings.folds):
        fold_table = copy.copy(table)
        fold_table.splits = np.where(folds == k, "heldout", table.splits)  # train() only reads train/validation
        members, results = [], []
        for j in range(settings.members):
            seed = settings.seed + k + 100 * j
            torch.manual_seed(seed)
            member = EIPredictor.new(featurizer, hidden=settings.hidden, dropout=settings.dropout,
                                     mass_margin=settings.mass_margin)
            results.append(train(member, fold_table, TrainSettings(
                epochs=settings.epochs, lr=settings.lr, weight_decay=settings.weight_decay,
                patience=settings.patience, max_minutes=settings.max_minutes, seed=seed)))
            members.append(member)
        output = OutputSettings(isotope_envelope=settings.isotope_envelope, confidence=False)
        predictor = members[0] if len(members) == 1 else EIPredictor(
            NEIMSEnsemble.from_models([m.model for m in members]), featurizer)
        predictor.output = output
        result = {"n_train": results[0]["n_train"], "best_epoch": [r["best_epoch"] for r in results],
                  "best_val_loss": float(np.mean([r["best_val_loss"] for r in results])),
                  "minutes": float(sum(r["minutes"] for r in results))}
        rows = np.flatnonzero(folds == k)
        smiles = [table.smiles[i] for i in rows]
        for i, spectrum in zip(rows, predictor.predict(smiles)):
            if spectrum is None or spectrum.n_peaks == 0:
                continue
            meta = dict(spectrum.metadata)
            meta.update({"inchikey": table.keys[i], "smiles": table.smiles[i], "id": f"pred-cv{k}-{table.keys[i]}",
                         "name": f"predicted {table.keys[i]}"})
            predicted.append(Spectrum(spectrum.mz, spectrum.intensities, meta))
        info.append({"fold": k, "predicted": int(len(rows)), "n_train": result["n_train"],
                     "best_epoch": result["best_epoch"], "best_val_loss": round(float(result["best_val_loss"]), 5),
                     "minutes": round(float(result["minutes"]), 2)})
        log.info("cross-fit fold %d: %d compounds predicted, best epoch %s, validation loss %.4f",
                 k, len(rows), result["best_epoch"], result["best_val_loss"])
    return predicted, info


def predict_compounds(spectra: Sequence[Spectrum], predictor_path: Optional[str] = None) -> list[Spectrum]:
    """One predicted spectrum per distinct compound of `spectra` with a given (shipped) predictor."""
    from llm4ms.predict.predictor import EIPredictor

    first: dict[str, Spectrum] = {}
    for s in spectra:
        if s.inchikey14 and s.smiles and s.inchikey14 not in first:
            first[s.inchikey14] = s
    predictor = EIPredictor.from_pretrained(predictor_path)
    out = []
    for key, spectrum in zip(first, predictor.predict([s.smiles for s in first.values()])):
        if spectrum is not None and spectrum.n_peaks:
            meta = {**spectrum.metadata, "inchikey": key, "id": f"pred-{key}", "name": f"predicted {key}"}
            out.append(Spectrum(spectrum.mz, spectrum.intensities, meta))
    return out
