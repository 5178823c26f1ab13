"""Learned molecular-ion evidence: how well a candidate's nominal mass M fits a measured EI spectrum.

The hand-written `llm4ms.ranking.MassPrior` only says "peaks above M + margin cannot be explained". An
analyst reads much more off the high-mass end (McLafferty's molecular-ion rules): is there a peak at M, with
M+1 / M+2 isotopes and M-1 beside it; is there signal in the "forbidden" loss windows M-3..M-14 and M-19..M-25
(then M is too low); how far is M above the last real peak, and is that peak strong (then it is probably the
molecular ion itself); does the parity of the last peak agree with M (nitrogen rule); are common losses
(15, 17, 18, 28, 29, 31, 43, 45) seen below M. `ion_features` turns these into a row per (query, M), and a
gradient-boosted classifier (LightGBM: a well-kept library with a stable text model format) trained on
measured TRAIN-split spectra — the true M against the masses of the most similar other compounds — turns a
row into log-odds that M is the molecular mass (`MolecularIonModel.log_odds`).

It looks at the query and the candidate's mass only, never at the candidate's (predicted) spectrum, so it
applies to any library and any similarity score; the ranking adds ``ion_weight x log-odds`` to the score.
Every feature depends on the nominal mass only, so one query is scored once per distinct nominal mass.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum

#: Feature set version; a model folder records the version it was trained with.
FEATURE_VERSION = 1
COMMON_LOSSES = (15, 17, 18, 28, 29, 31, 43, 45)
FEATURE_NAMES = ("share_above_M+2", "share_above_M", "peak_M", "peak_M-1", "peak_M+1", "peak_M+2",
                 "max_loss_3_14", "max_loss_19_25", "gap_to_last_peak", "beyond_last_peak", "log_gap",
                 "last_peak_strength", "beyond_strong_last_peak", "parity_agrees_with_last_peak",
                 "max_common_loss", "signal_above_M+2", "last_peak_relative")
#: Peaks below this relative intensity are ignored; "the last peak" is the highest m/z at >= LAST_PEAK_MIN.
MIN_RELATIVE = 0.005
LAST_PEAK_MIN = 0.01
#: Nominal masses up to this are no molecule's: their rows are all 0 and their log-odds 0.
MIN_MASS = 30
BUNDLED_ION_MODEL = Path(__file__).parent / "resources" / "molecular_ion"
MODEL_FILE = "model.txt"
CONFIG_FILE = "molecular_ion.json"


@dataclass(frozen=True)
class IonProfile:
    """A query's high-mass evidence on a nominal grid: sqrt relative intensity, its upper cumulative sum,
    and the last peak of >= `LAST_PEAK_MIN`."""

    sqrt_rel: np.ndarray
    cumulative_above: np.ndarray
    last_peak: int

    @classmethod
    def of(cls, query: Spectrum) -> "IonProfile":
        mz = np.asarray(query.mz, dtype=np.float64)
        inten = np.asarray(query.intensities, dtype=np.float64)
        keep = np.isfinite(mz) & np.isfinite(inten) & (inten > 0) & (mz >= 0)
        bins, inten = np.rint(mz[keep]).astype(np.int64), inten[keep]
        size = max(int(bins.max()) + 64 if bins.size else 0, 2048)
        dense = np.zeros(size)
        np.maximum.at(dense, bins, inten)
        if dense.max() > 0:
            dense /= dense.max()
        sqrt_rel = np.where(dense >= MIN_RELATIVE, np.sqrt(dense), 0.0)
        strong = np.nonzero(dense >= LAST_PEAK_MIN)[0]
        return cls(sqrt_rel, np.cumsum(sqrt_rel[::-1])[::-1], int(strong[-1]) if strong.size else 0)


def ion_features(query: Spectrum, nominal_masses: Sequence[int] | np.ndarray,
                 profile: Optional[IonProfile] = None) -> np.ndarray:
    """(n, len(FEATURE_NAMES)) float rows for candidate nominal masses; rows of masses <= `MIN_MASS` are all 0."""
    prof = profile if profile is not None else IonProfile.of(query)
    s, cum, last = prof.sqrt_rel, prof.cumulative_above, prof.last_peak
    masses = np.asarray(nominal_masses, dtype=np.int64)
    need = int(masses.max()) + 33 if masses.size else 0
    if need > s.size:  # a candidate heavier than the grid: nothing is recorded up there
        s, cum = np.pad(s, (0, need - s.size)), np.pad(cum, (0, need - cum.size))
    n = s.size
    total = cum[0] if cum[0] > 0 else 1.0
    usable = masses > MIN_MASS
    m = np.clip(masses, MIN_MASS + 1, n - 33)

    def at(offset: int) -> np.ndarray:
        return s[m + offset]

    def window_max(low: int, high: int) -> np.ndarray:
        return np.max(np.stack([at(-k) for k in range(low, high + 1)]), axis=0)

    gap = (m - last).astype(np.float64)
    beyond = (gap > 2).astype(np.float64)
    last_strength = np.full(m.shape, s[last])
    rows = np.stack([
        cum[m + 3] / total, cum[m + 1] / total, at(0), at(-1), at(1), at(2),
        window_max(3, 14), window_max(19, 25),
        np.clip(gap, -100, 200) / 100, beyond, np.log1p(np.maximum(gap, 0)),
        last_strength, beyond * last_strength, ((last % 2) == (m % 2)) * last_strength,
        np.max(np.stack([at(-loss) for loss in COMMON_LOSSES]), axis=0),
        (cum[m + 3] > 0).astype(np.float64), last_strength ** 2,
    ], axis=1)
    rows[~usable] = 0.0
    return rows


class MolecularIonModel:
    """A trained molecular-ion classifier (a LightGBM booster) read from a folder (model.txt + molecular_ion.json)."""

    def __init__(self, booster: Any, info: Optional[dict] = None) -> None:
        self.booster = booster
        self.info = dict(info or {})

    @classmethod
    def load(cls, folder: str | Path) -> "MolecularIonModel":
        folder = Path(folder)
        model, config = folder / MODEL_FILE, folder / CONFIG_FILE
        if not model.exists() or not config.exists():
            raise ConfigError(f"{folder}: not a molecular-ion model folder ({MODEL_FILE} and {CONFIG_FILE} needed)")
        info = json.loads(config.read_text())
        if info.get("feature_version") != FEATURE_VERSION:
            raise ConfigError(f"{folder}: molecular-ion features version {info.get('feature_version')}, "
                              f"this llm4ms computes version {FEATURE_VERSION}; retrain it")
        import lightgbm

        return cls(lightgbm.Booster(model_str=model.read_text()), info)

    def save(self, folder: str | Path) -> Path:
        from llm4ms.utils import atomic_open, write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(folder / MODEL_FILE) as handle:
            handle.write(self.booster.model_to_string())
        write_json(folder / CONFIG_FILE, {**self.info, "feature_version": FEATURE_VERSION,
                                          "features": list(FEATURE_NAMES)})
        return folder

    def log_odds(self, query: Spectrum, masses: np.ndarray, profile: Optional[IonProfile] = None) -> np.ndarray:
        """Log-odds per candidate mass (Da, NaN = unknown -> 0) that it is the query's molecular mass."""
        masses = np.asarray(masses, dtype=np.float64)
        return self.log_odds_table([query], masses.ravel(), threads=1, profiles=[profile])[0].reshape(masses.shape)

    def log_odds_table(self, queries: Sequence[Spectrum], masses: np.ndarray, threads: Optional[int] = None,
                       profiles: Optional[Sequence[Optional[IonProfile]]] = None) -> np.ndarray:
        """(len(queries), len(masses)) `log_odds` of every query for the same candidate masses, in one booster
        call on `threads` threads (default: the CPU count). Why: the fused selection needs every query's
        log-odds for all of a library's distinct masses (877 at 1 M spectra); one call a query cost 5-7 ms.
        `profiles`: the queries' ion profiles when already computed."""
        masses = np.asarray(masses, dtype=np.float64)
        out = np.zeros((len(queries), masses.size), dtype=np.float64)
        known = np.isfinite(masses) & (np.rint(masses) > MIN_MASS)
        if not known.any() or not len(queries):
            return out
        nominal = np.rint(masses[known]).astype(np.int64)
        unique, inverse = np.unique(nominal, return_inverse=True)
        profiles = profiles if profiles is not None else [None] * len(queries)
        rows = np.concatenate([ion_features(query, unique, profile) for query, profile in zip(queries, profiles)])
        odds = self.booster.predict(rows, raw_score=True, num_threads=threads or os.cpu_count() or 1)
        out[:, known] = odds.reshape(len(queries), unique.size)[:, inverse]
        return out


@lru_cache(maxsize=8)
def load_ion_model(reference: str = "bundled") -> MolecularIonModel:
    """``"bundled"`` (the model shipped in the package) or a folder path; loaded once per process."""
    return MolecularIonModel.load(BUNDLED_ION_MODEL if reference == "bundled" else Path(reference))


def training_table(spectra: Iterable[Spectrum], negatives: int = 40,
                   block: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, query ids) to train a molecular-ion model on measured spectra with known masses.

    Per spectrum: its own nominal mass (label 1) against the distinct nominal masses of the `negatives` most
    similar spectra (sqrt cosine) of other compounds in the same set (label 0) — the masses a search would
    confuse it with. Masses within 0.5 Da of the true one are left out (isomers: mass cannot separate them).
    """
    from llm4ms.similarity.named import score_matrix

    spectra = [s for s in spectra if s.inchikey14 and s.molecular_mass]
    if len(spectra) < 2:
        raise ConfigError("molecular-ion training needs >= 2 spectra with an InChIKey and a molecular mass")
    keys = np.array([s.inchikey14 for s in spectra])
    masses = np.array([s.molecular_mass for s in spectra], dtype=np.float64)
    features, labels, groups = [], [], []
    for start in range(0, len(spectra), block):
        chunk = spectra[start:start + block]
        sims = score_matrix("cosine_sqrt", chunk, spectra)
        for row, query in enumerate(chunk):
            others = np.where(keys == query.inchikey14, -np.inf, sims[row])
            near = masses[np.argsort(-others, kind="stable")[:negatives]]
            true_mass = query.molecular_mass
            wrong = np.unique(np.rint(near[np.abs(near - true_mass) > 0.5])).astype(np.int64)
            nominal = np.concatenate([[int(round(true_mass))], wrong])
            features.append(ion_features(query, nominal))
            labels.append(np.r_[1.0, np.zeros(wrong.size)])
            groups.append(np.full(nominal.size, start + row))
    return np.concatenate(features), np.concatenate(labels), np.concatenate(groups)


def train_ion_model(features: np.ndarray, labels: np.ndarray, trees: int = 300, leaves: int = 31,
                    learning_rate: float = 0.05, seed: int = 0, info: Optional[dict] = None) -> MolecularIonModel:
    """Fit the LightGBM classifier (binary log-loss) on a `training_table`."""
    import lightgbm

    model = lightgbm.LGBMClassifier(n_estimators=trees, num_leaves=leaves, learning_rate=learning_rate,
                                    random_state=seed, deterministic=True, force_row_wise=True, n_jobs=2,
                                    verbose=-1)
    model.fit(features, labels)
    settings = {"trees": trees, "leaves": leaves, "learning_rate": learning_rate, "seed": seed}
    return MolecularIonModel(model.booster_, {**(info or {}), "training": settings})
