"""Recall@k: a query is a hit when the right compound is among its top k (the one implementation).

Identity is the InChIKey first block (connectivity: stereo-isomers count as the same compound, which
EI spectra cannot tell apart anyway); the full InChIKey is reported too. LLM4MS's own code compares
SMILES strings, which is stricter and depends on how SMILES were written: we do not use it.

Used by the benchmark runner (`llm4ms.evaluate`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

DEFAULT_KS = (1, 5, 10, 100)


def _normalise_key(key: Optional[str], first_block: bool) -> Optional[str]:
    if key is None:
        return None
    text = str(key).strip().upper()
    if not text:
        return None
    return text[:14] if first_block else text


def _hit_matrix(query_keys: Sequence[Optional[str]], hit_keys: np.ndarray) -> np.ndarray:
    """`hit_keys` as an (n_queries, k) object array, or a ValueError saying what shape it has."""
    hits = np.asarray(hit_keys, dtype=object)
    if hits.ndim != 2 or hits.shape[0] != len(query_keys):
        raise ValueError(f"hit_keys must be (n_queries, k); got {hits.shape} for {len(query_keys)} queries")
    return hits


def first_hit_ranks(query_keys: Sequence[Optional[str]], hit_keys: np.ndarray,
                    first_block: bool = True) -> np.ndarray:
    """Per query, the 0-based rank of the first hit with the query's compound; -1 when it is not among the hits
    or the query has no InChIKey (`query_keys` / `hit_keys` as in `recall_at_k`). The per-query record that
    recall and its intervals (`llm4ms.evaluate.uncertainty`) are computed from."""
    hits = _hit_matrix(query_keys, hit_keys)
    rank = np.full(len(query_keys), -1, dtype=np.int64)
    for i, q in enumerate(query_keys):
        qk = _normalise_key(q, first_block)
        if qk is None:
            continue
        for j in range(hits.shape[1]):
            if _normalise_key(hits[i, j], first_block) == qk:
                rank[i] = j
                break
    return rank


def recall_at_k(query_keys: Sequence[Optional[str]], hit_keys: np.ndarray,
                ks: Sequence[int] = DEFAULT_KS) -> dict:
    """Recall@k by InChIKey first block and by full InChIKey.

    `query_keys`: one InChIKey per query (None = unknown; such queries are not counted).
    `hit_keys`: (nq, width) InChIKeys of the ranked hits, None/"" for padding.
    Returns ``{"n_queries", "n_skipped", "inchikey14": {k: recall}, "inchikey": {k: recall}}`` with
    recall as a fraction in [0, 1] and k as a string (JSON keys).
    """
    hits = _hit_matrix(query_keys, hit_keys)
    width = hits.shape[1]
    too_deep = [k for k in ks if k > width or k < 1]
    if too_deep:
        raise ValueError(f"k={too_deep} not in 1..{width} (the number of hits per query)")
    result: dict = {}
    valid = np.array([_normalise_key(q, True) is not None for q in query_keys], dtype=bool)
    result["n_queries"] = int(valid.sum())
    result["n_skipped"] = int((~valid).sum())
    for label, first_block in (("inchikey14", True), ("inchikey", False)):
        rank = first_hit_ranks(query_keys, hits, first_block)
        found = rank[valid]
        n = max(int(valid.sum()), 1)
        result[label] = {str(k): float(np.sum((found >= 0) & (found < k))) / n for k in ks}
    return result


def hit_keys_for(indices: np.ndarray, library_keys: Sequence[Optional[str]]) -> np.ndarray:
    """Map (nq, k) library indices (-1 = padding) to an object array of library InChIKeys."""
    keys = np.asarray(list(library_keys) + [None], dtype=object)  # index -1 -> the trailing None
    return keys[np.asarray(indices, dtype=np.int64)]


def list_recall(scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 10)) -> dict[str, float]:
    """``{"R@k": percent}`` of candidate lists re-ordered by `scores` (n, m), best first (ties keep the list's
    order), whose 0/1 `labels` (n, m) have a hit in the first k: the figure of a re-ranker judged on fixed lists."""
    order = np.argsort(-np.asarray(scores), axis=1, kind="stable")
    ranked = np.take_along_axis(np.asarray(labels), order, axis=1)
    return {f"R@{k}": round(100 * float(ranked[:, :k].any(1).mean()), 1) for k in ks}
