"""`Hit`: one ranked library match for one query, and the hit rows a search returns (`HIT_COLUMNS` is the
column order of every hit table: CSV, TSV, JSON, the web API).

MS/MS library spectra also give the hit's precursor m/z and adduct (the store's ``precursor_type``); for EI
spectra both are empty (None).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from llm4ms.library.store import MASS_COLUMN
from llm4ms.spectrum import Spectrum


@dataclass
class Hit:
    """One ranked library match for one query."""

    query_index: int
    query_id: Optional[str]
    query_name: Optional[str]
    rank: int
    score: float
    library_index: int
    id: Optional[str]
    name: Optional[str]
    inchikey: Optional[str]
    smiles: Optional[str]
    formula: Optional[str]
    mass: Optional[float]
    precursor_mz: Optional[float] = None
    adduct: Optional[str] = None

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


HIT_COLUMNS = tuple(Hit.__dataclass_fields__)


def hits_for_query(query_index: int, query: Spectrum, indices: np.ndarray, scores: np.ndarray,
                   rows: Sequence[dict[str, Any]]) -> list[Hit]:
    """The hits of one query: library `indices` in rank order, their `scores` and metadata `rows`."""
    return [Hit(query_index=query_index, query_id=query.id, query_name=query.name, rank=r + 1,
                score=float(scores[r]), library_index=int(indices[r]), id=row["id"], name=row["name"],
                inchikey=row["inchikey"], smiles=row["smiles"], formula=row["formula"], mass=row[MASS_COLUMN],
                precursor_mz=_finite(row.get("precursor_mz")), adduct=row.get("precursor_type"))
            for r, row in enumerate(rows)]


def _finite(value: Any) -> Optional[float]:
    """A stored float as a number, None when absent or NaN."""
    return float(value) if value is not None and np.isfinite(value) else None


def make_hits(queries: Sequence[Spectrum], indices: np.ndarray, scores: np.ndarray, min_score: Optional[float],
         metadata_rows: Callable[[np.ndarray], Sequence[dict[str, Any]]]) -> list[list[Hit]]:
    """Hits per query from (queries, k) `indices` / `scores` (-1 pads), dropping those below `min_score`."""
    results: list[list[Hit]] = []
    for qi, query in enumerate(queries):
        keep = indices[qi] >= 0
        if min_score is not None:
            keep &= scores[qi] >= min_score
        idx, sc = indices[qi][keep], scores[qi][keep]
        results.append(hits_for_query(qi, query, idx, sc, metadata_rows(idx)))
    return results
