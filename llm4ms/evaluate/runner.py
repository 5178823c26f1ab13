"""Run several search methods on the same queries and library, and report Recall@k side by side.

One run = one set of queries, one library, one list of methods: every method sees identical inputs, so
the table compares methods and nothing else. Each method is searched without a filter and, when a
mass tolerance is given, again restricted to library spectra of the query's molecular mass (the FastEI
/ NIST practice). Timings are wall-clock per method (fit = index/train on the library; search = all
queries), measured in this process.
"""
from __future__ import annotations

import logging
import platform
import time
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from llm4ms.evaluate.recall import DEFAULT_KS, hit_keys_for, mass_candidates, recall_at_k
from llm4ms.evaluate.scorers import Scorer, get_scorer
from llm4ms.spectrum import Spectrum

logger = logging.getLogger(__name__)

Method = Union[str, Scorer]


def evaluate(queries: Sequence[Spectrum], library: Sequence[Spectrum], methods: Sequence[Method],
             ks: Sequence[int] = DEFAULT_KS, mass_tolerance: Optional[float] = None,
             method_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
             name: str = "evaluation") -> dict:
    """Evaluate `methods` (registry names or `Scorer` objects) and return a JSON-ready result dict."""
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

    result: dict[str, Any] = {
        "name": name,
        "counts": {"queries": len(queries), "library": len(library),
                   "queries_with_inchikey": sum(1 for k in query_keys if k),
                   "queries_whose_compound_is_in_library": n_in_library},
        "settings": {"ks": ks, "identity": "InChIKey first block (also full InChIKey)",
                     "mass_filter": candidate_stats or None},
        "versions": versions(),
        "methods": {},
    }
    for method in methods:
        scorer = method if isinstance(method, Scorer) else get_scorer(method, **method_options.get(method, {}))
        label = method if isinstance(method, str) else scorer.name
        logger.info("evaluating %s", label)
        entry: dict[str, Any] = {"settings": scorer.settings(), "seconds": {}}
        t0 = time.perf_counter()
        scorer.fit(library)
        entry["seconds"]["fit"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        idx, _ = scorer.search(queries, k=depth)
        entry["seconds"]["search"] = time.perf_counter() - t0
        entry["queries_per_second"] = len(queries) / max(entry["seconds"]["search"], 1e-9)
        entry["recall"] = recall_at_k(query_keys, hit_keys_for(idx, library_keys), ks)
        if candidates is not None:
            t0 = time.perf_counter()
            idx_f, _ = scorer.search(queries, k=depth, candidates=candidates)
            entry["seconds"]["search_mass_filtered"] = time.perf_counter() - t0
            entry["recall_mass_filtered"] = recall_at_k(query_keys, hit_keys_for(idx_f, library_keys), ks)
        result["methods"][label] = entry
    return result


def versions() -> dict[str, str]:
    """Versions of the packages that can change a score."""
    from llm4ms.utils import package_versions

    return {"python": platform.python_version(),
            **package_versions(("llm4ms", "numpy", "scipy", "matchms", "spec2vec", "gensim", "ms-entropy",
                                "torch", "transformers", "faiss-cpu"))}


def markdown_table(result: Mapping[str, Any]) -> str:
    """Recall@k (%, InChIKey first block) per method; mass-filtered values in a second block."""
    ks = result["settings"]["ks"]
    counts = result["counts"]
    lines = [f"**{result.get('name', 'evaluation')}**: {counts['queries']} queries, "
             f"{counts['library']} library spectra "
             f"({counts['queries_whose_compound_is_in_library']} queries have their compound in the library)",
             ""]
    filtered = any("recall_mass_filtered" in m for m in result["methods"].values())
    header = ["method"] + [f"R@{k}" for k in ks]
    if filtered:
        tol = result["settings"]["mass_filter"]["tolerance_da"]
        header += [f"R@{k} ±{tol:g} Da" for k in ks]
    header += ["R@1 full key", "fit s", "search s", "queries/s"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for label, entry in result["methods"].items():
        row = [label] + [f"{100 * entry['recall']['inchikey14'][str(k)]:.1f}" for k in ks]
        if filtered:
            rf = entry.get("recall_mass_filtered")
            row += [f"{100 * rf['inchikey14'][str(k)]:.1f}" if rf else "-" for k in ks]
        row += [f"{100 * entry['recall']['inchikey']['1']:.1f}" if "1" in entry["recall"]["inchikey"] else "-",
                f"{entry['seconds']['fit']:.1f}", f"{entry['seconds']['search']:.1f}",
                f"{entry['queries_per_second']:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
