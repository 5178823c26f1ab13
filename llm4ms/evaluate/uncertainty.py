"""How sure a recall figure is: a 95 % interval for one method's Recall@k, and for the difference of two methods
searched on the same queries.

Both start from per-query hits (did the right compound reach the top k?). Two methods on the same queries are
compared query by query: only the queries where exactly one of them is right carry the difference, so a paired
interval resolves much smaller differences than two separate intervals do (on ~700 queries one R@1 has a
+-3.5-point interval, a paired difference typically +-2.5). Nothing here is hand-rolled statistics: the Wilson
interval and the exact McNemar test are `scipy.stats.binomtest`, the paired interval is `scipy.stats.bootstrap`
(BCa) over the per-query differences; this module only arranges the hits for them.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from llm4ms.errors import ConfigError

CONFIDENCE = 0.95
RESAMPLES = 9999


def hits_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Boolean hits at k from first-hit ranks (`llm4ms.metrics.first_hit_ranks`; -1 = not found)."""
    ranks = np.asarray(ranks)
    return (ranks >= 0) & (ranks < k)


def recall_interval(hits: np.ndarray, confidence: float = CONFIDENCE) -> list[float]:
    """Wilson score interval of the share of hits, as fractions [low, high] (a query set of none gives [0, 1])."""
    hits = np.asarray(hits, dtype=bool)
    if hits.size == 0:
        return [0.0, 1.0]
    ci = stats.binomtest(int(hits.sum()), int(hits.size)).proportion_ci(confidence, method="wilson")
    return [float(ci.low), float(ci.high)]


def paired_difference(hits_a: np.ndarray, hits_b: np.ndarray, confidence: float = CONFIDENCE,
                      n_resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """Recall of A minus recall of B on the same queries (fractions), with a paired bootstrap interval.

    Returns ``difference``, ``interval`` [low, high] (BCa over the per-query differences, seeded so a re-run gives
    the same figures), ``a_only`` / ``b_only`` (queries only A / only B gets right) and ``p_mcnemar`` (exact
    two-sided McNemar test on those two counts: how often a difference this large arises when the methods are
    equally good).
    """
    a, b = np.asarray(hits_a, dtype=bool), np.asarray(hits_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired hits must be two 1-D arrays of one length; got {a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    diff = a.astype(np.float64) - b.astype(np.float64)
    difference = float(diff.mean()) if diff.size else 0.0
    if a_only + b_only == 0:  # identical hits: every resample gives 0 (the bootstrap would call it degenerate)
        interval = [difference, difference]
    else:
        result = stats.bootstrap((diff,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                                 method="BCa", **_seed_argument(seed))
        interval = [float(result.confidence_interval.low), float(result.confidence_interval.high)]
    p = stats.binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"difference": difference, "interval": interval, "a_only": a_only, "b_only": b_only,
            "p_mcnemar": float(p), "n_queries": int(a.size)}


def _seed_argument(seed: int) -> dict[str, Any]:
    """scipy >= 1.15 takes `rng`, older releases `random_state` (pyproject allows scipy >= 1.11)."""
    name = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def compare_runs(run_a: Mapping[str, Any], method_a: str, run_b: Mapping[str, Any], method_b: str,
                 ks: Sequence[int] = (1, 10)) -> dict[str, Any]:
    """Pair one method of one evaluation result (`llm4ms.evaluate.evaluate`, or its JSON) with a method of another,
    query by query: e.g. a new model against the last one on the same benchmark. The two runs must hold the same
    queries in the same order (``query_inchikey14``); each method is taken as searched (``per_query``)."""
    keys_a, keys_b = run_a.get("query_inchikey14"), run_b.get("query_inchikey14")
    if keys_a is None or keys_b is None:
        raise ConfigError("a result without per-query ranks (written before they were kept): run it again")
    if list(keys_a) != list(keys_b):
        raise ConfigError(f"the two results hold different queries ({len(keys_a)} vs {len(keys_b)}, or another "
                          "order): only runs on the same queries can be paired")
    ranks = []
    for run, method in ((run_a, method_a), (run_b, method_b)):
        if method not in run["methods"]:
            raise ConfigError(f"method {method!r} not in {run.get('name', 'the result')} "
                              f"(methods: {', '.join(run['methods'])})")
        ranks.append(np.asarray(run["methods"][method]["per_query"]["first_hit_rank"]))
    valid = np.array([bool(k) for k in keys_a], dtype=bool)
    return {str(k): paired_difference(hits_at(ranks[0][valid], k), hits_at(ranks[1][valid], k)) for k in ks}
