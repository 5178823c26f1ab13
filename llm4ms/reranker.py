"""A learned second stage: re-order the fused ranking's top candidates with every signal we have.

The fused score (`llm4ms.ranking`) adds a few signals with fixed weights. Which signal deserves trust depends on
the candidate list (two candidates of the same mass, one query with no molecular ion, a near-tie in sqrt cosine
but not in WCS), and one signal no spectral score has — does the candidate's *structure* fit what the measured
spectrum says about substructures (`llm4ms.fingerprint_model`) — only helps inside a list. A LightGBM LambdaRank
model (a well-kept library; its text model format is the stored artefact) scores each of the top `top`
candidates from `FEATURE_NAMES`: the fused score, the embedding, sqrt cosine, cosine, WCS, entropy, the molecular-ion
log-odds, the hand mass penalty and three structure agreements, each as a value and as its gap to the list's
best, plus the fused rank and the predictor's confidence in the candidate's spectrum (on validation the confidence
is worth 3-5 R@1 points: an unsure prediction makes the spectral scores less and the structure agreement more
telling). Candidates are re-ordered by that score; a hit's score becomes the re-ranker's
probability (softmax over the list) that it is the compound among the top `top`.

It was trained on lists from *predicted* libraries, so it runs only on lists with at least one candidate whose
predictor confidence is recorded (what `llm4ms predict` writes); a list of measured spectra keeps the fused order
(on measured validation the re-ranker lost 1 of 121 queries there, with no confidence it had never seen).
The same `rerank_list` runs in `Library.search` and in `llm4ms evaluate` (via `llm4ms.ranking.rerank_all`).
Training: ``data_prep/train_reranker.py`` (VALIDATION queries; the fingerprint model on TRAIN-split structures
only: predicted spectra of many, then the measured spectra).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.fingerprint_model import AGREEMENT_NAMES, FingerprintModel
from llm4ms.spectrum import Spectrum

FEATURE_VERSION = 1
SCORES = ("fused", "embedding", "classic", "cosine", "wcs", "entropy", "ion_log_odds", "mass_penalty",
          *AGREEMENT_NAMES)
FEATURE_NAMES = tuple(n for s in SCORES for n in (s, f"{s}_minus_best")) + ("fused_rank", "prediction_confidence")
BUNDLED_RERANKER = Path(__file__).parent / "resources" / "reranker"
CONFIG_FILE = "reranker.json"
MODEL_FILE = "model.txt"
FINGERPRINT_FOLDER = "fingerprint"


class Reranker:
    """A LambdaRank booster over `FEATURE_NAMES` and the fingerprint model its features need."""

    def __init__(self, booster: Any, fingerprint_model: FingerprintModel, top: int = 50,
                 info: Optional[dict] = None) -> None:
        if top < 2:
            raise ConfigError(f"reranker: top must be >= 2, not {top}")
        self.booster, self.fingerprint_model, self.top, self.info = booster, fingerprint_model, top, dict(info or {})

    def features(self, query: Spectrum, ranking: Any, fused: np.ndarray, embedding: np.ndarray,
                 classic: np.ndarray, candidates: Sequence[Spectrum], masses: Optional[np.ndarray],
                 probabilities: np.ndarray, structures: Optional[tuple[np.ndarray, np.ndarray]] = None,
                 log_odds: Optional[np.ndarray] = None) -> np.ndarray:
        """(len(candidates), len(FEATURE_NAMES)) for one query's list, best fused first.

        `fused`, `embedding`, `classic`: the list's scores as the ranking computed them; `candidates`: their
        spectra, with ``smiles`` and ``prediction_confidence`` in the metadata where known; `masses`: their
        molecular masses (NaN unknown); `probabilities`: the query's predicted fingerprint; `structures`: the
        candidates' fingerprint bits if already known (else computed from their SMILES); `log_odds`: their
        molecular-ion log-odds if already known (`llm4ms.ranking.IonOdds`).
        """
        from dataclasses import replace

        from llm4ms.molecular_ion import load_ion_model
        from llm4ms.similarity.named import scores

        n = len(candidates)
        masses = np.full(n, np.nan) if masses is None else np.asarray(masses, dtype=np.float64)
        hand = replace(ranking.prior, weight=1.0, ion_weight=0.0)
        columns = [np.asarray(fused, dtype=np.float64), np.asarray(embedding, dtype=np.float64),
                   np.asarray(classic, dtype=np.float64), scores("cosine", query, list(candidates)),
                   scores("wcs", query, list(candidates)), scores("entropy", query, list(candidates)),
                   load_ion_model(ranking.prior.ion_model).log_odds(query, masses) if log_odds is None else log_odds,
                   hand.penalties(query, masses)]
        agreement = self.fingerprint_model.agreement(probabilities, [c.smiles for c in candidates], structures)
        columns += [agreement[:, j] for j in range(agreement.shape[1])]
        out = []
        for column in columns:
            column = np.asarray(column, dtype=np.float64)
            best = np.nanmax(column) if np.isfinite(column).any() else np.nan
            out += [column, column - best]
        out.append(np.arange(n, dtype=np.float64))
        out.append(np.array([prediction_confidence(c) for c in candidates], dtype=np.float64))
        return np.stack(out, axis=1)

    def rescore(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float64)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / MODEL_FILE))
        self.fingerprint_model.save(folder / FINGERPRINT_FOLDER)
        config = {"feature_version": FEATURE_VERSION, "feature_names": list(FEATURE_NAMES), "top": self.top,
                  "info": self.info}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "Reranker":
        import lightgbm

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / MODEL_FILE).is_file():
            raise ConfigError(f"{folder}: not a re-ranker (needs {CONFIG_FILE} and {MODEL_FILE})")
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"{folder / CONFIG_FILE}: unreadable ({err}); retrain the re-ranker "
                              "(data_prep/train_reranker.py)") from err
        version = config.get("feature_version") if isinstance(config, dict) else None
        if version != FEATURE_VERSION:
            raise ConfigError(f"{folder}: re-ranker features v{version}, this llm4ms computes v{FEATURE_VERSION}; "
                              "retrain it (data_prep/train_reranker.py)")
        try:
            booster = lightgbm.Booster(model_file=str(folder / MODEL_FILE))
        except lightgbm.basic.LightGBMError as err:
            raise ConfigError(f"{folder / MODEL_FILE}: not a readable LightGBM model ({str(err)[:120]}); retrain "
                              "the re-ranker (data_prep/train_reranker.py)") from err
        return cls(booster, FingerprintModel.load(folder / FINGERPRINT_FOLDER), int(config["top"]),
                   config.get("info"))


@lru_cache(maxsize=4)
def load_reranker(reference: str = "bundled") -> Reranker:
    """``"bundled"`` (shipped in the package) or a folder path; loaded once per process."""
    return Reranker.load(BUNDLED_RERANKER if reference == "bundled" else Path(reference))


def prediction_confidence(spectrum: Spectrum) -> float:
    """The predictor's confidence in a library spectrum (NaN where none is recorded, e.g. a measured one)."""
    value = spectrum.prediction_confidence
    return np.nan if value is None else value


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def train_reranker(features: np.ndarray, labels: np.ndarray, fingerprint_model: FingerprintModel, top: int,
                   trees: int = 100, leaves: int = 7, learning_rate: float = 0.05, min_child_samples: int = 50,
                   seed: int = 0, info: Optional[dict] = None) -> Reranker:
    """Fit LambdaRank on (queries, top, features) lists with 0/1 labels (lists without a true hit teach nothing
    and are dropped)."""
    import lightgbm

    n, top_, width = features.shape
    useful = labels.any(axis=1)
    if useful.sum() < 2:
        raise ConfigError("re-ranker training needs >= 2 lists that contain the true compound")
    model = lightgbm.LGBMRanker(n_estimators=trees, num_leaves=leaves, learning_rate=learning_rate,
                                min_child_samples=min_child_samples, random_state=seed, deterministic=True,
                                force_row_wise=True, n_jobs=2, verbose=-1)
    model.fit(features[useful].reshape(-1, width), labels[useful].ravel().astype(int),
              group=[top_] * int(useful.sum()))
    settings = {"trees": trees, "leaves": leaves, "learning_rate": learning_rate,
                "min_child_samples": min_child_samples, "seed": seed, "lists": int(useful.sum())}
    return Reranker(model.booster_, fingerprint_model, top, {**(info or {}), "training": settings})
