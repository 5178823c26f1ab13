"""A learned second stage: re-order the fused ranking's top candidates with every signal we have.

The fused score (`llm4ms.ranking`) adds a few signals with fixed weights. Which signal deserves trust depends on
the candidate list (two candidates of the same mass, one query with no molecular ion, a near-tie in sqrt cosine
but not in WCS), and one signal no spectral score has — does the candidate's *structure* fit what the measured
spectrum says about substructures (`llm4ms.fingerprint_model`) — only helps inside a list. A LightGBM LambdaRank
model (a well-kept library; its text model format is the stored artefact) scores each of the top `top`
candidates from `FEATURE_NAMES`: the fused score, the embedding, sqrt cosine, cosine, WCS, entropy, the molecular-ion
log-odds, the hand mass penalty, three structure agreements and the structure matcher's cosine
(`llm4ms.structure_matcher`), each as a value and as its gap to the list's best, plus the fused rank and the
predictor's confidence in the candidate's spectrum (on validation the confidence is worth 3-5 R@1 points: an unsure
prediction makes the spectral scores less and the structure agreement more telling). Candidates are re-ordered by
that score; a hit's score becomes the re-ranker's probability (softmax over the list) that it is the compound
among the top `top`.

It was trained on lists from *predicted* libraries, so it runs only on lists with at least one candidate whose
predictor confidence is recorded (what `llm4ms predict` writes); a list of measured spectra keeps the fused order
(on measured validation the re-ranker lost 1 of 121 queries there, with no confidence it had never seen).
The same `llm4ms.ranking.rerank_lists` runs in `Library.search` and in `llm4ms evaluate` (via `rerank_all`).
Training: ``data_prep/train_reranker.py`` (VALIDATION queries; the fingerprint model and the structure matcher on
TRAIN-split structures only: the fingerprint model on predicted spectra of many, then both on the measured ones).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.fingerprint_model import AGREEMENT_NAMES, FingerprintModel
from llm4ms.spectrum import Spectrum
from llm4ms.structure_matcher import StructureMatcher

FEATURE_VERSION = 2
SCORES = ("fused", "embedding", "classic", "cosine", "wcs", "entropy", "ion_log_odds", "mass_penalty",
          *AGREEMENT_NAMES, "structure_match")
FEATURE_NAMES = tuple(n for s in SCORES for n in (s, f"{s}_minus_best")) + ("fused_rank", "prediction_confidence")
BUNDLED_RERANKER = Path(__file__).parent / "resources" / "reranker"
CONFIG_FILE = "reranker.json"
MODEL_FILE = "model.txt"
FINGERPRINT_FOLDER = "fingerprint"
MATCHER_FOLDER = "structure_matcher"


@dataclass(frozen=True)
class QueryEvidence:
    """What the re-ranker reads of a query once, before its list: the fingerprint network's bit probabilities and
    the structure matcher's vector of the spectrum (None without a matcher)."""

    probabilities: np.ndarray
    structure_vector: Optional[np.ndarray] = None


@dataclass(frozen=True)
class CandidateList:
    """One query's list as the re-ranker reads it, best fused first.

    `fused`, `embedding`, `classic`: the list's scores as the ranking computed them; `candidates`: their spectra,
    with ``smiles`` and ``prediction_confidence`` in the metadata where known; `masses`: their molecular masses
    (NaN unknown); `evidence`: the query's `Reranker.query_evidence`; `structures`: the candidates' fingerprint
    bits and parsed mask if already known (else computed from their SMILES); `log_odds`: their molecular-ion
    log-odds if already known (`llm4ms.ranking.IonOdds`)."""

    query: Spectrum
    fused: np.ndarray
    embedding: np.ndarray
    classic: np.ndarray
    candidates: Sequence[Spectrum]
    masses: Optional[np.ndarray]
    evidence: QueryEvidence
    structures: Optional[tuple[np.ndarray, np.ndarray]] = None
    log_odds: Optional[np.ndarray] = None


class Reranker:
    """A LambdaRank booster over `FEATURE_NAMES` and the structure models its features need (the fingerprint
    network; the structure matcher where one was trained with it)."""

    def __init__(self, booster: Any, fingerprint_model: FingerprintModel, top: int = 50,
                 info: Optional[dict] = None, structure_matcher: Optional[StructureMatcher] = None) -> None:
        if top < 2:
            raise ConfigError(f"reranker: top must be >= 2, not {top}")
        if structure_matcher is not None and structure_matcher.config.fingerprint != fingerprint_model.config:
            raise ConfigError("reranker: the structure matcher and the fingerprint model encode structures "
                              "differently; train them with the same FingerprintConfig")
        self.booster, self.fingerprint_model, self.top, self.info = booster, fingerprint_model, top, dict(info or {})
        self.structure_matcher = structure_matcher

    def query_evidence(self, queries: Sequence[Spectrum]) -> list[QueryEvidence]:
        """Per query, what `features` needs of it beside its list (computed for all queries in one batch)."""
        probabilities = self.fingerprint_model.predict(list(queries))
        vectors = (self.structure_matcher.encode_spectra(list(queries)) if self.structure_matcher is not None
                   else [None] * len(queries))
        return [QueryEvidence(p, v) for p, v in zip(probabilities, vectors)]

    def features(self, query: Spectrum, ranking: Any, fused: np.ndarray, embedding: np.ndarray,
                 classic: np.ndarray, candidates: Sequence[Spectrum], masses: Optional[np.ndarray],
                 evidence: QueryEvidence, structures: Optional[tuple[np.ndarray, np.ndarray]] = None,
                 log_odds: Optional[np.ndarray] = None) -> np.ndarray:
        """(len(candidates), len(FEATURE_NAMES)) for one query's list, best fused first (`CandidateList` says what
        each argument is; `features_many` computes many lists at once, with the same values)."""
        return self.features_many(ranking, [CandidateList(query, fused, embedding, classic, candidates, masses,
                                                          evidence, structures, log_odds)])[0]

    def features_many(self, ranking: Any, lists: Sequence["CandidateList"]) -> list[np.ndarray]:
        """`features` of each list. Why many at once: the structure matcher's tower runs once over every list's
        structures (about half its cost a list when run list by list, measured at 200 lists of 50)."""
        from dataclasses import replace

        from llm4ms.molecular_ion import load_ion_model
        from llm4ms.similarity.named import scores

        hand = replace(ranking.prior, weight=1.0, ion_weight=0.0)
        structures = [item.structures if item.structures is not None
                      else self.fingerprint_model.fingerprints([c.smiles for c in item.candidates])
                      for item in lists]
        matches = self._structure_matches(lists, structures)
        out = []
        for item, bits, match in zip(lists, structures, matches):
            query, candidates, n = item.query, list(item.candidates), len(item.candidates)
            masses = np.full(n, np.nan) if item.masses is None else np.asarray(item.masses, dtype=np.float64)
            log_odds = (load_ion_model(ranking.prior.ion_model).log_odds(query, masses) if item.log_odds is None
                        else item.log_odds)
            columns = [np.asarray(item.fused, dtype=np.float64), np.asarray(item.embedding, dtype=np.float64),
                       np.asarray(item.classic, dtype=np.float64), scores("cosine", query, candidates),
                       scores("wcs", query, candidates), scores("entropy", query, candidates), log_odds,
                       hand.penalties(query, masses)]
            agreement = self.fingerprint_model.agreement(item.evidence.probabilities, [], bits)
            columns += [agreement[:, j] for j in range(agreement.shape[1])]
            columns.append(match)
            table = []
            for column in columns:
                column = np.asarray(column, dtype=np.float64)
                best = np.nanmax(column) if np.isfinite(column).any() else np.nan
                table += [column, column - best]
            table.append(np.arange(n, dtype=np.float64))
            table.append(np.array([prediction_confidence(c) for c in candidates], dtype=np.float64))
            out.append(np.stack(table, axis=1))
        return out

    def _structure_matches(self, lists: Sequence["CandidateList"],
                           structures: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Per list, the matcher's cosine of the query with each candidate's structure (NaN without a matcher)."""
        matched = [i for i, item in enumerate(lists)
                   if self.structure_matcher is not None and item.evidence.structure_vector is not None]
        out = [np.full(len(item.candidates), np.nan) for item in lists]
        if not matched:
            return out
        cosines = self.structure_matcher.match_lists([lists[i].evidence.structure_vector for i in matched],
                                                     [structures[i] for i in matched])
        for i, cosine in zip(matched, cosines):
            out[i] = cosine
        return out

    def rescore(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float64)

    def rescore_many(self, features: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`rescore` of each list's features in one call of the booster (a call costs ~4 ms whatever its size)."""
        if not features:
            return []
        scored = self.rescore(np.concatenate(features))
        return np.split(scored, np.cumsum([len(f) for f in features])[:-1])

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / MODEL_FILE))
        self.fingerprint_model.save(folder / FINGERPRINT_FOLDER)
        if self.structure_matcher is not None:
            self.structure_matcher.save(folder / MATCHER_FOLDER)
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
        matcher = StructureMatcher.load(folder / MATCHER_FOLDER) if (folder / MATCHER_FOLDER).is_dir() else None
        return cls(booster, FingerprintModel.load(folder / FINGERPRINT_FOLDER), int(config["top"]),
                   config.get("info"), matcher)


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
                   seed: int = 0, info: Optional[dict] = None,
                   structure_matcher: Optional[StructureMatcher] = None) -> Reranker:
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
    return Reranker(model.booster_, fingerprint_model, top, {**(info or {}), "training": settings}, structure_matcher)
