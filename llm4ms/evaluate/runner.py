"""Run several search methods on the same queries and library, and report Recall@k side by side.

One run = one set of queries, one library, one list of methods: every method sees identical inputs, so
the table compares methods and nothing else. Each method is searched without a filter and, when a
mass tolerance is given, again restricted to library spectra of the query's molecular mass (the FastEI
/ NIST practice), and, when a precursor tolerance is given (MS/MS), restricted to library spectra whose
precursor m/z lies within it of the query's (`precursor_candidates`: identity search; a query without a
precursor m/z is searched unrestricted). Timings are wall-clock per method (fit = index/train on the
library; search = all queries), measured in this process.
"""
from __future__ import annotations

import logging
import platform
import time
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from llm4ms.evaluate.scorers import Scorer, get_scorer, search_by_chunks
from llm4ms.ranking import MassPrior, resolve_ranking
from llm4ms.mass import Tolerance, mass_candidates, sort_by_mass, tolerance_window
from llm4ms.evaluate.uncertainty import hits_at, paired_difference, recall_interval
from llm4ms.metrics import DEFAULT_KS, first_hit_ranks, hit_keys_for, recall_at_k
from llm4ms.spectrum import Spectrum

logger = logging.getLogger(__name__)

Method = Union[str, Scorer]


def evaluate(queries: Sequence[Spectrum], library: Sequence[Spectrum], methods: Sequence[Method],
             ks: Sequence[int] = DEFAULT_KS, mass_tolerance: Optional[float] = None,
             method_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
             name: str = "evaluation", prior: Optional[MassPrior] = None,
             isomer_subset: bool = True, precursor_tolerance: Optional[Tolerance] = None,
             reference: Optional[str] = None) -> dict:
    """Evaluate `methods` (registry names or `Scorer` objects) and return a JSON-ready result dict.

    With an active `prior` (`llm4ms.ranking.MassPrior`), every method is also reported with the prior
    applied to its scores (``recall_with_prior``), so the comparison stays fair; ``llm4ms`` is reported
    with its ranking's own prior switched off (``recall``) and on (``recall_with_prior``).
    The isomer subset: queries whose library holds a spectrum of another compound with the same formula.
    With a `precursor_tolerance` (`llm4ms.mass.Tolerance`, or text such as "10ppm"), every method is searched
    again within each query's precursor window (``recall_precursor_window``, and
    ``recall_precursor_window_isomer_subset``).
    Each method's ranking as searched (its prior on where one applies) is kept per query (``per_query``: the
    first-hit rank, -1 = not in the top max(ks)) with 95 % intervals of its recall (``interval95``), and every
    method is compared query by query with the `reference` method (default ``llm4ms`` when run, else the
    first): ``paired`` (`llm4ms.evaluate.uncertainty.paired_difference`, at k = 1 and 10).
    """
    ks = sorted({int(k) for k in ks})
    depth = max(ks)
    method_options = method_options or {}
    query_keys = [q.inchikey for q in queries]
    library_keys = [s.inchikey for s in library]
    lib_blocks = {k[:14].upper() for k in library_keys if k}
    n_in_library = sum(1 for k in query_keys if k and k[:14].upper() in lib_blocks)

    candidates = None
    candidate_stats: dict[str, Any] = {}
    if mass_tolerance is not None:
        candidates = mass_candidates(queries, library, mass_tolerance)
        sizes = np.array([c.size for c in candidates if c is not None])
        candidate_stats = {
            "tolerance_da": mass_tolerance,
            "median_candidates": float(np.median(sizes)) if sizes.size else None,
            "queries_without_mass": sum(1 for c in candidates if c is None),
        }

    window = None
    window_stats: Optional[dict[str, Any]] = None
    if precursor_tolerance is not None and not isinstance(precursor_tolerance, Tolerance):
        from llm4ms.query_checks import check_tolerance

        precursor_tolerance = Tolerance(*check_tolerance(precursor_tolerance))
    if precursor_tolerance is not None:
        window = precursor_candidates(queries, library, precursor_tolerance)
        sizes = np.array([c.size for c in window if c is not None])
        window_stats = {
            "tolerance": str(precursor_tolerance), "value": precursor_tolerance.value,
            "unit": precursor_tolerance.unit,
            "median_candidates": float(np.median(sizes)) if sizes.size else None,
            "mean_candidates": float(np.mean(sizes)) if sizes.size else None,
            "queries_without_precursor": sum(1 for c in window if c is None),
            "queries_with_empty_window": int(np.sum(sizes == 0)) if sizes.size else 0,
        }

    library_masses = np.array([np.nan if s.molecular_mass is None else s.molecular_mass for s in library])
    isomers = isomer_queries(queries, library)
    isomer_keys = list(np.array(query_keys, dtype=object)[isomers]) if isomer_subset and isomers.any() else []
    result: dict[str, Any] = {
        "name": name,
        "counts": {"queries": len(queries), "library": len(library),
                   "queries_with_inchikey": sum(1 for k in query_keys if k),
                   "queries_whose_compound_is_in_library": n_in_library,
                   "isomer_subset": int(isomers.sum())},
        "settings": {"ks": ks, "identity": "InChIKey first block (also full InChIKey)",
                     "mass_filter": candidate_stats or None,
                     **({"precursor_window": window_stats} if window_stats is not None else {}),
                     "prior": prior.__dict__ if prior is not None and prior.active else None},
        "versions": versions(),
        "query_inchikey14": [k[:14].upper() if k else None for k in query_keys],
        "methods": {},
    }
    valid = np.array([bool(k) for k in query_keys], dtype=bool)
    for method in methods:
        scorer = method if isinstance(method, Scorer) else get_scorer(method, **method_options.get(method, {}))
        label = method if isinstance(method, str) else scorer.name
        logger.info("evaluating %s", label)
        entry: dict[str, Any] = {"settings": scorer.settings(), "seconds": {}}
        t0 = time.perf_counter()
        scorer.fit(library)
        entry["seconds"]["fit"] = time.perf_counter() - t0
        # a scorer with its own ranking (llm4ms): "recall" without its prior, "recall_with_prior" as searched
        own = getattr(scorer, "ranking", None)
        own_prior = own.prior if own is not None and own.prior.active else None
        plain = {"ranking": resolve_ranking(own, prior=False)} if own_prior is not None else {}
        t0 = time.perf_counter()
        idx, _ = scorer.search(queries, k=depth, **plain)
        entry["seconds"]["search"] = time.perf_counter() - t0
        entry["queries_per_second"] = len(queries) / max(entry["seconds"]["search"], 1e-9)
        entry["recall"] = recall_at_k(query_keys, hit_keys_for(idx, library_keys), ks)
        if isomer_keys:
            entry["recall_isomer_subset"] = recall_at_k(isomer_keys, hit_keys_for(idx[isomers], library_keys), ks)
        method_prior = own_prior if own_prior is not None else prior
        if method_prior is not None and method_prior.active:
            idx_p = (scorer.search(queries, k=depth)[0] if own_prior is not None else
                     search_with_prior(scorer, queries, depth, method_prior, library_masses))
            entry["prior"] = method_prior.__dict__
            entry["recall_with_prior"] = recall_at_k(query_keys, hit_keys_for(idx_p, library_keys), ks)
            if isomer_keys:
                entry["recall_with_prior_isomer_subset"] = recall_at_k(
                    isomer_keys, hit_keys_for(idx_p[isomers], library_keys), ks)
        searched = idx_p if method_prior is not None and method_prior.active else idx
        ranks = first_hit_ranks(query_keys, hit_keys_for(searched, library_keys))
        entry["per_query"] = {"variant": "recall_with_prior" if searched is not idx else "recall",
                              "first_hit_rank": ranks.tolist()}
        entry["interval95"] = {str(k): recall_interval(hits_at(ranks[valid], k)) for k in ks}
        if candidates is not None:
            t0 = time.perf_counter()
            idx_f, _ = scorer.search(queries, k=depth, candidates=candidates, **plain)
            entry["seconds"]["search_mass_filtered"] = time.perf_counter() - t0
            entry["recall_mass_filtered"] = recall_at_k(query_keys, hit_keys_for(idx_f, library_keys), ks)
        if window is not None:
            t0 = time.perf_counter()
            idx_w, _ = scorer.search(queries, k=depth, candidates=window, **plain)
            entry["seconds"]["search_precursor_window"] = time.perf_counter() - t0
            entry["recall_precursor_window"] = recall_at_k(query_keys, hit_keys_for(idx_w, library_keys), ks)
            if isomer_keys:
                entry["recall_precursor_window_isomer_subset"] = recall_at_k(
                    isomer_keys, hit_keys_for(idx_w[isomers], library_keys), ks)
        result["methods"][label] = entry
    result["paired"] = paired_comparison(result, reference, [k for k in ks if k in (1, 10)], valid)
    return result


def paired_comparison(result: Mapping[str, Any], reference: Optional[str], ks: Sequence[int],
                      valid: np.ndarray) -> Optional[dict[str, Any]]:
    """The reference method minus every other method, query by query, as searched (None with one method)."""
    labels = list(result["methods"])
    if len(labels) < 2 or not ks:
        return None
    if reference is None:
        reference = "llm4ms" if "llm4ms" in labels else labels[0]
    if reference not in labels:
        raise ValueError(f"reference method {reference!r} was not evaluated (methods: {', '.join(labels)})")
    ranks = {m: np.asarray(result["methods"][m]["per_query"]["first_hit_rank"])[valid] for m in labels}
    return {"reference": reference, "ks": list(ks),
            "against": {m: {str(k): paired_difference(hits_at(ranks[reference], k), hits_at(ranks[m], k))
                            for k in ks} for m in labels if m != reference}}


def precursor_candidates(queries: Sequence[Spectrum], library: Sequence[Spectrum],
                         tolerance: Tolerance) -> list[Optional[np.ndarray]]:
    """Per query, the library indices (ascending) whose precursor m/z is within `tolerance` of the query's.

    The window's half-width is taken at the query's precursor m/z (`Tolerance.half_width`). A query without a
    precursor m/z gets None (no restriction); a library spectrum without one is never a candidate.
    """
    values = np.array([np.nan if s.precursor_mz is None else s.precursor_mz for s in library], dtype=np.float64)
    sorted_values, order = sort_by_mass(values)
    out: list[Optional[np.ndarray]] = []
    for query in queries:
        mz = query.precursor_mz
        known = mz is not None and np.isfinite(mz)
        out.append(tolerance_window(sorted_values, order, float(mz), tolerance) if known else None)
    return out


def isomer_queries(queries: Sequence[Spectrum], library: Sequence[Spectrum]) -> np.ndarray:
    """Mask of queries whose library holds another compound (InChIKey first block) with the same formula."""
    by_formula: dict[str, set[str]] = {}
    for s in library:
        formula, key = s.formula, s.inchikey14
        if formula and key:
            by_formula.setdefault(formula.replace(" ", ""), set()).add(key)
    return np.array([bool(q.formula and q.inchikey14 and
                          by_formula.get(q.formula.replace(" ", ""), set()) - {q.inchikey14}) for q in queries])


def search_with_prior(scorer: Scorer, queries: Sequence[Spectrum], k: int, prior: MassPrior,
                      library_masses: np.ndarray, wide: int = 1000) -> np.ndarray:
    """Top-k indices of a classic scorer with the prior applied: exactly for dense scorers, else over its top `wide`."""
    if type(scorer).search is Scorer.search:  # dense scores: subtract the penalty from every column
        def penalised(chunk: Sequence[Spectrum]) -> np.ndarray:
            block = np.asarray(scorer.score_chunk(chunk), dtype=np.float64)
            return block - np.stack([prior.penalties(q, library_masses) for q in chunk])

        return search_by_chunks(penalised, queries, k, scorer.n_library, None, scorer.chunk_size)[0]
    idx, sc = scorer.search(queries, k=max(k, wide))
    out = np.full((len(queries), k), -1, dtype=np.int64)
    for row, query in enumerate(queries):
        valid = idx[row] >= 0
        cand = idx[row][valid]
        score = np.round(sc[row][valid].astype(np.float64) - prior.penalties(query, library_masses[cand]), 6)
        order = np.lexsort((cand, -score))[:k]
        out[row, :order.size] = cand[order]
    return out


def versions() -> dict[str, str]:
    """Versions of the packages that can change a score."""
    from llm4ms.utils import package_versions

    return {"python": platform.python_version(),
            **package_versions(("llm4ms", "numpy", "scipy", "matchms", "spec2vec", "gensim", "ms-entropy",
                                "torch", "transformers", "faiss-cpu"))}


def markdown_table(result: Mapping[str, Any]) -> str:
    """Recall@k (%, InChIKey first block) per method; with the mass prior, mass filter, precursor window and
    isomer subset."""
    ks = result["settings"]["ks"]
    counts = result["counts"]
    lines = [f"**{result.get('name', 'evaluation')}**: {counts['queries']} queries, "
             f"{counts['library']} library spectra "
             f"({counts['queries_whose_compound_is_in_library']} queries have their compound in the library; "
             f"isomer subset {counts.get('isomer_subset', 0)})",
             ""]
    methods = result["methods"].values()
    filtered = any("recall_mass_filtered" in m for m in methods)
    with_prior = any("recall_with_prior" in m for m in methods)
    isomers = any("recall_isomer_subset" in m for m in methods)
    windowed = any("recall_precursor_window" in m for m in methods)
    shown = [k for k in ks if k in (1, 10)] or ks[:2]
    header = ["method"] + [f"R@{k}" for k in ks]
    if with_prior:
        header += [f"R@{k} prior" for k in shown]
    if isomers:
        header += [f"R@{k} isomers" for k in shown] + (["R@1 isomers prior"] if with_prior else [])
    if filtered:
        tol = result["settings"]["mass_filter"]["tolerance_da"]
        header += [f"R@{k} ±{tol:g} Da" for k in shown]
    if windowed:
        window = result["settings"]["precursor_window"]["tolerance"]
        header += [f"R@{k} ±{window}" for k in shown]
        if isomers:
            header += [f"R@1 isomers ±{window}"]
    header += ["R@1 full key", "fit s", "search s", "queries/s"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")

    def cells(entry: Mapping[str, Any], key: str, which: Sequence[int]) -> list[str]:
        block = entry.get(key)
        return [f"{100 * block['inchikey14'][str(k)]:.1f}" if block else "-" for k in which]

    for label, entry in result["methods"].items():
        row = [label] + cells(entry, "recall", ks)
        if with_prior:
            row += cells(entry, "recall_with_prior", shown)
        if isomers:
            row += cells(entry, "recall_isomer_subset", shown)
            if with_prior:
                row += cells(entry, "recall_with_prior_isomer_subset", [1])
        if filtered:
            row += cells(entry, "recall_mass_filtered", shown)
        if windowed:
            row += cells(entry, "recall_precursor_window", shown)
            if isomers:
                row += cells(entry, "recall_precursor_window_isomer_subset", [1])
        row += [f"{100 * entry['recall']['inchikey']['1']:.1f}" if "1" in entry["recall"]["inchikey"] else "-",
                f"{entry['seconds']['fit']:.1f}", f"{entry['seconds']['search']:.1f}",
                f"{entry['queries_per_second']:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n" + paired_table(result)


def paired_table(result: Mapping[str, Any]) -> str:
    """Markdown: each method's R@k with its 95 % interval and the reference's paired margin over it."""
    paired = result.get("paired")
    if not paired:
        return ""
    ref, ks = paired["reference"], paired["ks"]

    def pct(x: float) -> str:
        return f"{100 * x:+.1f}"

    header = ["method"] + [f"R@{k} [95 % CI]" for k in ks] + [f"{ref} minus it, R@{k} [95 % CI]" for k in ks]
    header += [f"only {ref} / only it (R@{ks[0]})", "McNemar p"]
    lines = ["", f"Paired with **{ref}**, query by query, each method as searched (its prior on where one is "
                 "set); intervals: Wilson for one recall, BCa bootstrap over queries for a difference.", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for label, entry in result["methods"].items():
        block = entry[entry["per_query"]["variant"]]["inchikey14"]
        row = [label] + [f"{100 * block[str(k)]:.1f} [{100 * entry['interval95'][str(k)][0]:.1f}, "
                         f"{100 * entry['interval95'][str(k)][1]:.1f}]" for k in ks]
        if label == ref:
            row += ["-"] * len(ks) + ["-", "-"]
        else:
            diff = paired["against"][label]
            row += [f"{pct(diff[str(k)]['difference'])} [{pct(diff[str(k)]['interval'][0])}, "
                    f"{pct(diff[str(k)]['interval'][1])}]" for k in ks]
            first = diff[str(ks[0])]
            row += [f"{first['a_only']} / {first['b_only']}", f"{first['p_mcnemar']:.2g}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
