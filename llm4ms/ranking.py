"""How candidates are ordered: embedding retrieval, then a fused score and a molecular-ion plausibility prior.

One owner for the ranking that `llm4ms search`, the web API, `Library.search` and `llm4ms evaluate` all use:

1. the index (or an exact product) proposes the ``depth`` best candidates by embedding cosine, and, with
   ``classic_depth > 0``, an exhaustive sparse product (`llm4ms.similarity.named.ClassicIndex`) adds the
   ``fused_depth`` best of the whole library by the fused score of steps 2-3 itself (`FusedSelection`; with
   ``fused_depth`` 0 or an approximate index, the ``classic_depth`` best by the classic score): a fused top hit can
   lie deep in both the embedding's and the classic score's own lists;
2. each is re-scored ``fusion * embedding + (1 - fusion) * classic`` (classic = a score from
   `llm4ms.similarity`, sqrt cosine by default): the learned and the peak-level view are complementary;
3. minus the `MassPrior` penalty: the share of the query's signal that lies above what the candidate's
   molecular mass allows, plus (when fit) the learned molecular-ion evidence for the candidate's mass
   (`llm4ms.molecular_ion`).

The settings are fit on the validation split (``data_prep/fit_ranking.py``) and stored in the model's
``llm4ms_config.json`` under ``"ranking"``; a model without them ranks by the embedding alone.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum


@dataclass(frozen=True)
class MassPrior:
    """Molecular-ion plausibility: a candidate of mass M cannot explain query peaks above M + margin.

    penalty(query, M) = weight * (sum of sqrt relative intensity of the query's peaks >= `min_relative`
    with m/z > M + margin) / (the same sum over all those peaks). A soft penalty, not a filter: a lone
    small noise or background peak above the molecular ion costs little, a real fragment series above it
    costs a lot; `margin` leaves room for isotope peaks (M+1, M+2) and hydrogen transfer. Unknown
    candidate masses get no penalty.

    With ``ion_weight > 0`` the penalty also subtracts ``ion_weight x`` the log-odds of the molecular-ion model
    `ion_model` ("bundled" or a folder, `llm4ms.molecular_ion`) that M is the query's molecular mass: a
    learned reading of the whole high-mass end, so a candidate whose mass the spectrum supports gains.
    """

    weight: float = 0.0
    margin: float = 1.5
    min_relative: float = 0.01
    ion_weight: float = 0.0
    ion_model: str = "bundled"

    @property
    def active(self) -> bool:
        return self.weight > 0 or self.ion_weight > 0

    def query_profile(self, query: Spectrum) -> tuple[np.ndarray, np.ndarray]:
        """(m/z ascending, cumulative share of sqrt intensity from the top) of the query's counted peaks."""
        mz, inten = np.asarray(query.mz, dtype=np.float64), np.asarray(query.intensities, dtype=np.float64)
        keep = np.isfinite(mz) & np.isfinite(inten) & (inten > 0)
        mz, inten = mz[keep], inten[keep]
        if mz.size == 0:
            return mz, inten
        rel = inten / inten.max()
        keep = rel >= self.min_relative
        mz, w = mz[keep], np.sqrt(rel[keep])
        order = np.argsort(mz, kind="stable")
        mz, w = mz[order], w[order]
        above = np.cumsum(w[::-1])[::-1] / w.sum()  # above[i] = share of peaks i..end
        return mz, above

    def penalties(self, query: Spectrum, masses: np.ndarray,
                  profile: Optional[tuple[np.ndarray, np.ndarray]] = None,
                  log_odds: Optional[np.ndarray] = None) -> np.ndarray:
        """Penalty per candidate mass (0 where the mass is unknown or the prior is off). `profile`: the query's
        `query_profile`, `log_odds`: the molecular-ion log-odds of these masses, when already computed."""
        masses = np.asarray(masses, dtype=np.float64)
        out = np.zeros(masses.shape, dtype=np.float64)
        if self.ion_weight > 0:
            if log_odds is None:
                from llm4ms.molecular_ion import load_ion_model

                log_odds = load_ion_model(self.ion_model).log_odds(query, masses)
            out -= self.ion_weight * log_odds
        if self.weight <= 0:
            return out
        mz, above = profile if profile is not None else self.query_profile(query)
        if mz.size == 0:
            return out
        known = np.isfinite(masses)
        first = np.searchsorted(mz, masses[known] + self.margin, side="right")
        share = np.where(first < mz.size, above[np.minimum(first, mz.size - 1)], 0.0)
        out[known] += self.weight * share
        return out


@dataclass(frozen=True)
class Ranking:
    """Retrieval depth, fusion weight of the embedding, the classic score fused with it, and the prior."""

    fusion: float = 1.0  # 1 = embedding only
    classic: str = "cosine_sqrt"
    depth: int = 100
    prior: MassPrior = field(default_factory=MassPrior)
    classic_depth: int = 0  # also retrieve this many by the classic score (0 = embedding retrieval only)
    reranker: str = ""  # a learned second stage over the top of the list ("bundled" or a folder; "" = none)
    #: classic retrieval through the approximate index (`llm4ms.library.classic_retrieval`) instead of exhaustively
    classic_approximate: bool = False
    #: exhaustive classic retrieval selects this many by the whole fused score (`FusedSelection`) instead of the
    #: ``classic_depth`` best by the classic score alone (0: by the classic score; an approximate index always is)
    fused_depth: int = 200
    #: with approximate classic retrieval, every library spectrum at the query's this many most likely nominal
    #: molecular masses (the molecular-ion model's log-odds, `IonOdds.plausible_rows`) is a candidate too (0 = none)
    plausible_masses: int = 6

    def __post_init__(self) -> None:
        if not 0.0 <= self.fusion <= 1.0:
            raise ConfigError(f"ranking: fusion must lie in [0, 1], not {self.fusion}")
        if self.depth < 1:
            raise ConfigError(f"ranking: depth must be >= 1, not {self.depth}")
        if self.classic_depth < 0:
            raise ConfigError(f"ranking: classic_depth must be >= 0, not {self.classic_depth}")
        if self.fused_depth < 0:
            raise ConfigError(f"ranking: fused_depth must be >= 0, not {self.fused_depth}")
        if self.plausible_masses < 0:
            raise ConfigError(f"ranking: plausible_masses must be >= 0, not {self.plausible_masses}")
        from llm4ms.similarity.named import check_score

        check_score(self.classic)

    @property
    def classic_retrieval(self) -> bool:
        """True when candidates are also retrieved by the classic score (it must be a sparse-product score)."""
        from llm4ms.similarity.named import ClassicIndex

        return self.reranks and self.fusion < 1.0 and self.classic_depth > 0 and ClassicIndex.supports(self.classic)

    @property
    def reranks(self) -> bool:
        """True when candidates are re-scored after retrieval (fusion < 1, an active prior or a re-ranker)."""
        return self.fusion < 1.0 or self.prior.active or bool(self.reranker)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Any]]) -> "Ranking":
        data = dict(data or {})
        prior = MassPrior(**data.pop("prior", {}) or {})
        known = {"fusion", "classic", "depth", "classic_depth", "reranker", "classic_approximate", "fused_depth",
                 "plausible_masses"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"ranking: unknown setting(s) {', '.join(unknown)}")
        return cls(prior=prior, **data)

    def describe(self) -> str:
        plausible = (f" + every spectrum at the {self.plausible_masses} likeliest molecular masses"
                     if self.plausible_masses and self.prior.active and self.prior.ion_weight > 0 else "")
        by = (f"top {self.classic_depth} by {self.classic} (approximate){plausible}" if self.classic_approximate else
              f"top {self.fused_depth} of the whole library by the fused score" if self.fused_depth else
              f"top {self.classic_depth} by {self.classic}")
        exhaustive_fused = self.classic_retrieval and self.fused_depth and not self.classic_approximate
        retrieved = f"top {min(self.depth, self.fused_depth) if exhaustive_fused else self.depth}" + (
            f" + {by}" if self.classic_retrieval else "")
        parts = ["embedding" if self.fusion >= 1 else
                 f"{self.fusion:g} x embedding + {1 - self.fusion:g} x {self.classic} ({retrieved})"]
        if self.prior.weight > 0:
            parts.append(f"mass prior (weight {self.prior.weight:g}, margin {self.prior.margin:g} Da)")
        if self.prior.ion_weight > 0:
            parts.append(f"molecular-ion model ({self.prior.ion_model}, weight {self.prior.ion_weight:g})")
        if self.reranker:
            parts.append(f"learned re-ranker ({self.reranker})")
        return ", ".join(parts)


class IonOdds:
    """The molecular-ion log-odds of every query for every library spectrum's mass, computed once per search.

    Why: the fused selection, the re-scoring of the list and the re-ranker's features all read them; one booster
    call over (queries x the library's distinct nominal masses, 877 at 1 M spectra) replaces three calls a query.
    The values are the model's own (`MolecularIonModel.log_odds` per nominal mass): hits do not change.
    """

    def __init__(self, ranking: Ranking, queries: Sequence[Spectrum], masses: np.ndarray,
                 mass_table: Optional["MassTable"] = None) -> None:
        """`mass_table`: the library's `MassTable` when the caller keeps it (~60 ms at 1 M spectra)."""
        from llm4ms.molecular_ion import load_ion_model

        self.masses = mass_table if mass_table is not None else MassTable(masses)
        self._slot = self.masses.slots
        self.table = load_ion_model(ranking.prior.ion_model).log_odds_table(list(queries), self.masses.nominal)

    @classmethod
    def for_search(cls, ranking: Ranking, queries: Sequence[Spectrum], masses: Optional[np.ndarray],
                   mass_table: Optional["MassTable"] = None) -> Optional["IonOdds"]:
        """The table when `ranking` reads molecular-ion evidence of a library with masses, else None."""
        if masses is None or not ranking.prior.active or ranking.prior.ion_weight <= 0 or not len(queries):
            return None
        return cls(ranking, queries, masses, mass_table)

    def __call__(self, row: int, idx: np.ndarray) -> np.ndarray:
        """Log-odds (len(idx),) of query `row` for library indices `idx`."""
        return self.table[row][self._slot[np.asarray(idx, dtype=np.int64)]]

    def best(self, row: int) -> float:
        """The largest log-odds of query `row` over the library (0 for an empty library)."""
        return float(self.table[row].max()) if self.table.shape[1] else 0.0

    def plausible_rows(self, row: int, count: int) -> np.ndarray:
        """Library indices (ascending) of every spectrum at the `count` nominal masses of highest log-odds for query
        `row` (known masses only; ties by the lower mass)."""
        known = np.flatnonzero(np.isfinite(self.masses.nominal))
        if count <= 0 or not known.size:
            return np.zeros(0, dtype=np.int64)
        best = known[np.lexsort((known, -self.table[row][known]))[:count]]
        return np.sort(self.masses.rows(best))


class FusedSelection:
    """Exhaustive classic retrieval by the whole fused score (embedding, classic score and prior): the ``select``
    of `ClassicIndex.top`, in its one pass over the library.

    Why: at 1 M spectra the top 2,000 by sqrt cosine and the top 2,000 by embedding held the fused top 50 of the
    whole library for only 58 % of validation queries: the prior lifts candidates of a plausible mass from deep in
    both lists. How, per block of library rows and query: U = fusion x embedding + (1 - fusion) x classic for every
    row; the fused score F = U - penalty (`MassPrior.penalties`) of U's top rows gives a threshold; F <= U + the
    query's largest molecular-ion bonus, so only rows with U above the threshold minus that bonus can be among
    the top n by F and only they are penalised. Float32 here; the candidates are re-scored exactly after
    (`rerank`), so the order of hits is the ranking's own.
    """

    #: F is computed for about PROBE x n rows of highest U first (`high_rows`): the n-th best F among them is the
    #: threshold (a tighter one than from U's top n alone: at 1 M, 7k rows a query are then penalised, not ~250k)
    PROBE = 10

    def __init__(self, ranking: Ranking, queries: Sequence[Spectrum], query_embeddings: np.ndarray,
                 library_embeddings: Any, masses: Optional[np.ndarray], ion_odds: Optional[IonOdds] = None) -> None:
        """`ion_odds`: the search's `IonOdds` (built here when the ranking needs them and none is given)."""
        self.ranking, self.queries = ranking, list(queries)
        self.query_embeddings = np.asarray(query_embeddings, dtype=np.float32)
        self.library_embeddings = library_embeddings
        self.masses = None if masses is None or not ranking.prior.active else np.asarray(masses, dtype=np.float64)
        self._profiles = [ranking.prior.query_profile(q) if self.masses is not None and ranking.prior.weight > 0
                          else None for q in self.queries]
        self.ion_odds = ion_odds if ion_odds is not None else IonOdds.for_search(ranking, queries, self.masses)
        self.bonus = np.zeros(len(self.queries))
        if self.ion_odds is not None:
            self.bonus = ranking.prior.ion_weight * np.array([self.ion_odds.best(j) for j in range(len(queries))])

    #: library rows per step of `_upper`: its (rows, queries) pieces stay in cache while they are turned around
    UPPER_ROWS = 2048

    def _upper(self, classic: np.ndarray, lo: int, hi: int, a: int, b: int) -> np.ndarray:
        """U (queries a..b, library rows lo..hi) from the classic scores (rows, queries), in steps of `UPPER_ROWS`
        rows. Why in steps: turning the whole (rows, queries) block around into one query per run of memory cost
        twice the matrix product itself (3.8 ms a query per 500k rows); a cache-sized piece turns cheaply."""
        fusion = np.float32(self.ranking.fusion)
        q = np.ascontiguousarray(self.query_embeddings[a:b].T)
        upper = np.empty((b - a, hi - lo), dtype=np.float32)
        for start in range(0, hi - lo, self.UPPER_ROWS):
            stop = min(start + self.UPPER_ROWS, hi - lo)
            piece = np.asarray(self.library_embeddings[lo + start:lo + stop], dtype=np.float32) @ q
            piece *= fusion
            piece += classic[start:stop] * (np.float32(1.0) - fusion)
            upper[:, start:stop] = piece.T
        return upper

    def _fused(self, j: int, rows: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """F of library `rows` for query `j`, given their U."""
        if self.masses is None:
            return upper.astype(np.float64)
        odds = self.ion_odds(j, rows) if self.ion_odds is not None else None
        return upper - self.ranking.prior.penalties(self.queries[j], self.masses[rows], profile=self._profiles[j],
                                                    log_odds=odds)

    def __call__(self, classic: np.ndarray, lo: int, hi: int, a: int, b: int,
                 n: int) -> tuple[np.ndarray, np.ndarray]:
        upper = self._upper(classic, lo, hi, a, b)
        idx = np.empty((b - a, n), dtype=np.int64)
        values = np.empty((b - a, n), dtype=np.float32)
        for j in range(b - a):
            u = upper[j]
            first = high_rows(u, self.PROBE * n, n)
            probe = np.sort(self._fused(a + j, lo + first, u[first]))
            threshold = probe[-n] - self.bonus[a + j]  # n rows have F >= probe[-n]: the n-th best is no lower
            rows = np.flatnonzero(u >= threshold - 1e-6)
            fused = self._fused(a + j, lo + rows, u[rows])
            keep = fused >= np.partition(fused, fused.size - n)[fused.size - n]  # the top n and any ties
            rows, fused = rows[keep], fused[keep]
            best = np.lexsort((rows, -fused))[:n]
            idx[j], values[j] = rows[best], fused[best]
        return idx, values


def high_rows(values: np.ndarray, count: int, least: int, step: int = 64) -> np.ndarray:
    """Rows holding about the `count` highest `values` (at least `least` of them): all rows of a short array.

    Why not the exact top `count` (`top_per_column`): `FusedSelection` needs only some rows of high U whose n-th
    best F bounds the true one from below; the `count`-th best of every `step`-th row is a threshold that about
    `count` rows reach, found in one pass (2.9 -> ~0.5 ms a query per 500k rows)."""
    if values.size <= 4 * count:
        return np.arange(values.size)
    sample = values[::step]
    k = max(1, min(sample.size, count // step))
    rows = np.flatnonzero(values >= np.partition(sample, sample.size - k)[sample.size - k])
    if rows.size >= least:
        return rows
    from llm4ms.similarity.named import top_per_column  # rare: many equal values below the threshold

    return top_per_column(values[:, None], count)[0][0]


class MassTable:
    """A library's distinct nominal masses (``nominal``, NaN for unknown) and each spectrum's slot in them
    (``slots``): the molecular-ion log-odds depend on the nominal mass only, so `IonOdds` computes them per distinct
    mass and looks them up; `rows` lists the spectra of chosen masses (`IonOdds.plausible_rows`)."""

    def __init__(self, masses: np.ndarray) -> None:
        masses = np.asarray(masses, dtype=np.float64)
        nominal, self.slots = np.unique(np.where(np.isfinite(masses), np.rint(masses), -1.0), return_inverse=True)
        self.nominal = np.where(nominal >= 0, nominal, np.nan)
        self._by_slot: Optional[tuple[np.ndarray, np.ndarray]] = None

    def rows(self, slots: np.ndarray) -> np.ndarray:
        """Library indices of every spectrum in mass `slots` (grouped by slot; the grouping is made on first use)."""
        if self._by_slot is None:
            order = np.argsort(self.slots, kind="stable")
            self._by_slot = order, np.searchsorted(self.slots[order], np.arange(self.nominal.size + 1))
        order, bounds = self._by_slot
        slots = np.asarray(slots, dtype=np.int64)
        return np.concatenate([order[bounds[s]:bounds[s + 1]] for s in slots]) if slots.size else order[:0]


def classic_candidates(ranking: Ranking, retrieval: Any, queries: Sequence[Spectrum], query_embeddings: np.ndarray,
                       library_embeddings: Any, masses: Optional[np.ndarray],
                       ion_odds: Optional[IonOdds] = None) -> np.ndarray | list[np.ndarray]:
    """The candidates classic retrieval adds, per query (-1 = none): from an exhaustive `ClassicIndex` the
    ``fused_depth`` best by the fused score over the whole library (`FusedSelection`), else (an approximate index, or
    ``fused_depth`` 0) the ``classic_depth`` best by the classic score. An approximate index adds every spectrum at the
    query's ``plausible_masses`` likeliest nominal masses (`IonOdds.plausible_rows`; then one array per query). Why:
    the prior lifts candidates of a plausible mass from deep in both lists; on the 1 M validation library the
    approximate candidates alone held 93.5 % of the exhaustive ranking's top 10, with these 99.7 %
    (benchmarks/RESULTS.md §5). One place for `Library.search` and `llm4ms evaluate`, so both rank alike."""
    if uses_fused_selection(ranking, retrieval):
        selection = FusedSelection(ranking, queries, query_embeddings, library_embeddings, masses, ion_odds)
        return retrieval.top(queries, ranking.fused_depth, select=selection)
    found = retrieval.top(queries, ranking.classic_depth)
    if ranking.classic_approximate and ranking.plausible_masses and ion_odds is not None:
        return [np.union1d(found[j][found[j] >= 0], ion_odds.plausible_rows(j, ranking.plausible_masses))
                for j in range(len(queries))]
    return found


def uses_fused_selection(ranking: Ranking, retrieval: Any) -> bool:
    """True when `classic_candidates` selects by the fused score: then the fused list's top is the whole library's
    and the embedding's own list adds nothing to it."""
    from llm4ms.similarity.named import ClassicIndex

    return ranking.classic_retrieval and ranking.fused_depth > 0 and isinstance(retrieval, ClassicIndex)


#: classic scores of one query against candidate indices -> (n_candidates,) array
ClassicFn = Callable[[Spectrum, np.ndarray], np.ndarray]


def rerank(ranking: Ranking, query: Spectrum, candidates: np.ndarray, embedding_scores: np.ndarray,
           classic_fn: ClassicFn, masses: Optional[np.ndarray], k: int,
           log_odds: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Order one query's retrieved candidates by the fused, prior-penalised score; top `k`, best first.

    Ties are broken by the lower library index, so the search and the evaluation agree exactly. `log_odds`: the
    candidates' molecular-ion log-odds when already computed (`IonOdds`).
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    positions, score = fused_order(ranking, query, candidates, embedding_scores, classic_fn, masses, k, log_odds)
    return candidates[positions], score


def fused_order(ranking: Ranking, query: Spectrum, candidates: np.ndarray, embedding_scores: np.ndarray,
                classic_fn: ClassicFn, masses: Optional[np.ndarray], k: int,
                log_odds: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """`rerank` as (positions in `candidates` of its top `k`, their fused scores float32)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if candidates.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    score = np.asarray(embedding_scores, dtype=np.float64) * ranking.fusion
    if ranking.fusion < 1.0:
        score = score + (1.0 - ranking.fusion) * np.asarray(classic_fn(query, candidates), dtype=np.float64)
    if ranking.prior.active and masses is not None:
        score = score - ranking.prior.penalties(query, np.asarray(masses, dtype=np.float64)[candidates],
                                                log_odds=log_odds)
    order = np.lexsort((candidates, -np.round(score, 6)))[:k]
    return order, score[order].astype(np.float32)


#: embedding inner products of query row `row` with library indices -> (n_candidates,) array
EmbeddingFn = Callable[[int, np.ndarray], np.ndarray]
#: library indices -> their spectra, with ``smiles`` and ``prediction_confidence`` in the metadata where known
#: (what the learned re-ranker reads of a candidate)
CandidatesFn = Callable[[np.ndarray], list[Spectrum]]
#: (fingerprint settings, library indices) -> the candidates' structure bits and parsed mask, or None when the
#: library keeps none (`llm4ms.library.structure_cache`; the re-ranker then computes them from the SMILES)
StructuresFn = Callable[[Any, np.ndarray], Optional[tuple[np.ndarray, np.ndarray]]]


def rerank_all(ranking: Ranking, queries: Sequence[Spectrum], indices: np.ndarray, scores: np.ndarray,
               classic_fn: ClassicFn, masses: Optional[np.ndarray], k: int,
               extra: Optional[np.ndarray] = None,
               embedding_fn: Optional[EmbeddingFn] = None,
               candidates_fn: Optional[CandidatesFn] = None,
               structures_fn: Optional[StructuresFn] = None,
               ion_odds: Optional[IonOdds] = None) -> tuple[np.ndarray, np.ndarray]:
    """`rerank` for every query's retrieved row (padded with -1 / -inf), as (n, k) arrays padded the same way.

    `extra` (n, m), or one array per query: more candidates (`classic_candidates`, -1 = none); their embedding scores
    come from `embedding_fn`. With a learned re-ranker in `ranking`, `candidates_fn` gives it the candidates'
    spectra and structures (`llm4ms.reranker`), `structures_fn` their fingerprint bits where a library keeps them;
    its lists are scored `RERANK_BATCH` queries at a time (`rerank_lists`).
    `ion_odds`: the search's molecular-ion log-odds (`IonOdds`), else the model is asked per list.
    """
    top_i = np.full((len(queries), k), -1, dtype=np.int64)
    top_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    learned = None
    if ranking.reranker:
        from llm4ms.reranker import load_reranker

        if candidates_fn is None:
            raise ConfigError("the ranking's learned re-ranker needs the candidates' spectra (candidates_fn)")
        learned = load_reranker(ranking.reranker)
    lists: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (candidates, fused, embedding) per query
    for row, query in enumerate(queries):
        valid = indices[row] >= 0
        cand, emb = indices[row][valid], scores[row][valid]
        if extra is not None and embedding_fn is not None:
            more = np.setdiff1d(extra[row][extra[row] >= 0], cand, assume_unique=True)  # both distinct
            if more.size:
                cand = np.concatenate([cand, more])
                emb = np.concatenate([emb, np.asarray(embedding_fn(row, more), dtype=emb.dtype)])
        odds = ion_odds(row, cand) if ion_odds is not None else None
        depth = k if learned is None else max(k, learned.top)
        at, cs = fused_order(ranking, query, cand, emb, classic_fn, masses, depth, log_odds=odds)
        lists.append((cand[at], cs, emb[at]))
    if learned is not None:
        for start in range(0, len(queries), RERANK_BATCH):
            rows = range(start, min(start + RERANK_BATCH, len(queries)))
            done = rerank_lists(learned, ranking, [queries[r] for r in rows], [lists[r] for r in rows], classic_fn,
                                masses, candidates_fn, structures_fn,
                                [None if ion_odds is None else partial(ion_odds, r) for r in rows])
            for r, pair in zip(rows, done):
                lists[r] = (*pair, lists[r][2])
    for row, (ci, cs, _) in enumerate(lists):
        ci, cs = ci[:k], cs[:k]
        top_i[row, :ci.size], top_s[row, :cs.size] = ci, cs
    return top_i, top_s


#: queries whose lists the learned re-ranker scores together (their candidates' spectra are held meanwhile)
RERANK_BATCH = 256


def rerank_lists(learned: Any, ranking: Ranking, queries: Sequence[Spectrum],
                 lists: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], classic_fn: ClassicFn,
                 masses: Optional[np.ndarray], candidates_fn: CandidatesFn,
                 structures_fn: Optional[StructuresFn] = None,
                 log_odds_fns: Optional[Sequence[Optional[Callable[[np.ndarray], np.ndarray]]]] = None
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query, its fused list (candidates, fused scores, embedding score of each candidate) re-ordered by the
    learned re-ranker: the first ``learned.top`` by its score (ties by the lower index), their scores its
    probabilities, the rest of the list after them with score 0. A list without a predicted spectrum (no
    candidate with a prediction confidence) keeps its fused order and scores: the re-ranker was not trained for it.
    Every list's candidates are fetched, featured and scored in one call each (`Reranker.features_many`);
    `log_odds_fns`: per query, its candidates' molecular-ion log-odds where the search has them."""
    from llm4ms.reranker import CandidateList, prediction_confidence, softmax

    heads = [ci[:min(learned.top, ci.size)] for ci, _, _ in lists]
    out = [(ci, cs) for ci, cs, _ in lists]
    chosen = [j for j, head in enumerate(heads) if head.size >= 2]
    if not chosen:
        return out
    every = np.concatenate([heads[j] for j in chosen])
    spectra = candidates_fn(every)
    bits = structures_fn(learned.fingerprint_model.config, every) if structures_fn is not None else None
    bounds = np.cumsum([0] + [heads[j].size for j in chosen])
    jobs = []
    for j, lo, hi in zip(chosen, bounds[:-1], bounds[1:]):
        if any(np.isfinite(prediction_confidence(s)) for s in spectra[lo:hi]):
            jobs.append((j, lo, hi))
    if not jobs:
        return out
    evidence = learned.query_evidence([queries[j] for j, _, _ in jobs])
    items = []
    for (j, lo, hi), seen in zip(jobs, evidence):
        head, (_, cs, embedding) = heads[j], lists[j]
        odds_fn = log_odds_fns[j] if log_odds_fns is not None else None
        items.append(CandidateList(
            queries[j], cs[:head.size], np.asarray(embedding[:head.size], dtype=np.float64),
            classic_fn(queries[j], head),
            spectra[lo:hi], None if masses is None else np.asarray(masses, dtype=np.float64)[head], seen,
            None if bits is None else (bits[0][lo:hi], bits[1][lo:hi]),
            None if odds_fn is None else odds_fn(head)))
    scored = learned.rescore_many(learned.features_many(ranking, items))
    for (j, _, _), score in zip(jobs, scored):
        head, (ci, cs) = heads[j], out[j]
        score = np.round(score, 6)
        order = np.lexsort((head, -score))
        out_s = np.concatenate([softmax(score)[order], np.zeros(ci.size - head.size)]).astype(np.float32)
        out[j] = (np.concatenate([head[order], ci[head.size:]]), out_s)
    return out


def classic_from_spectra(name: str, library: Sequence[Spectrum]) -> ClassicFn:
    """A `ClassicFn` over an in-memory library (evaluation)."""
    from llm4ms.similarity.named import scores

    return lambda query, idx: scores(name, query, [library[int(i)] for i in idx])


def model_ranking(encoder: Any) -> Ranking:
    """The ranking fit for this model (its config's ``"ranking"``), else the embedding alone."""
    config = getattr(encoder, "config", None) or {}
    return Ranking.from_dict(config.get("ranking")) if config.get("ranking") else Ranking()


def store_ranking(encoder: Any, folder: Any, ranking: Ranking, label: str, figures: str) -> None:
    """Save `ranking` as the model's own (config ``"ranking"``) with its validation figures under ``scores``,
    re-saving the folder so its card states the ranking too. The identity does not change: the ranking
    orders hits, it does not change a vector."""
    encoder.config["ranking"] = ranking.to_dict()
    encoder.config.setdefault("scores", {})[label] = figures
    encoder.save_pretrained(folder)


def resolve_ranking(base: Ranking, fusion: Optional[float] = None, classic: Optional[str] = None,
                    depth: Optional[int] = None, prior: Optional[bool] = None,
                    rerank: Optional[str] = None, classic_depth: Optional[int] = None,
                    learned: Optional[bool] = None, classic_approximate: Optional[bool] = None,
                    fused_depth: Optional[int] = None, plausible_masses: Optional[int] = None) -> Ranking:
    """`base` (usually `model_ranking`) with the user's overrides.

    ``rerank=NAME`` is the older "re-score the candidates by NAME alone" (fusion 0, no learned re-ranker).
    ``prior=False`` turns the mass prior off (and the learned re-ranker, which reads its evidence), ``prior=True``
    turns it on with the base's fitted form (or the default form). ``learned=False`` drops the learned re-ranker.
    ``classic_approximate=True`` retrieves by the classic score through the approximate index (faster on large
    libraries, a little less recall: `llm4ms.library.classic_retrieval`), with ``plausible_masses`` (`Ranking`).
    ``fused_depth``: candidates selected from the whole library by the fused score (0 = by the classic score).
    """
    ranking = base
    if rerank is not None:
        ranking = replace(ranking, fusion=0.0, classic=rerank, reranker="")
    if learned is False:
        ranking = replace(ranking, reranker="")
    if fusion is not None:
        ranking = replace(ranking, fusion=float(fusion))
    if classic is not None:
        ranking = replace(ranking, classic=classic)
    if depth is not None:
        ranking = replace(ranking, depth=int(depth))
    if classic_depth is not None:
        ranking = replace(ranking, classic_depth=int(classic_depth))
    if classic_approximate is not None:
        ranking = replace(ranking, classic_approximate=bool(classic_approximate))
    if fused_depth is not None:
        ranking = replace(ranking, fused_depth=int(fused_depth))
    if plausible_masses is not None:
        ranking = replace(ranking, plausible_masses=int(plausible_masses))
    if prior is False:  # the re-ranker reads the prior's evidence too: off with it
        ranking = replace(ranking, prior=replace(ranking.prior, weight=0.0, ion_weight=0.0), reranker="")
    elif prior is True and not ranking.prior.active:
        ranking = replace(ranking, prior=replace(ranking.prior, weight=DEFAULT_PRIOR_WEIGHT))
    return ranking


#: prior weight used by ``prior=True`` when the model has no fitted prior
DEFAULT_PRIOR_WEIGHT = 0.2


def parse_prior(text: Optional[str], model_prior: Optional[MassPrior] = None) -> Optional[MassPrior]:
    """``--prior`` values: ``model`` (the model's fitted prior, if any), ``off``, or
    ``WEIGHT[,MARGIN[,MIN_REL[,ION_WEIGHT]]]`` (ION_WEIGHT: the bundled molecular-ion model's weight)."""
    if text is None or text == "model":
        return model_prior if model_prior is not None and model_prior.active else None
    if text == "off":
        return None
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError as err:
        raise ConfigError("--prior must be model, off or WEIGHT[,MARGIN[,MIN_REL[,ION_WEIGHT]]], "
                          f"not {text!r}") from err
    if not 1 <= len(numbers) <= 4 or any(not np.isfinite(x) or x < 0 for x in numbers):
        raise ConfigError(f"--prior must be model, off or up to 4 non-negative numbers, not {text!r}")
    return MassPrior(*numbers)
