"""Search speed at library scale, one run, same library and queries: llm4ms vs Flash entropy vs exact WCS.

    python benchmarks/search_speed.py --library LIB_DIR --queries Q.msp [--threads 2] [--wcs-subset 100000]

Measures, on the spectra stored in LIB_DIR (built by `llm4ms embed`):
- llm4ms end to end: embed the queries with the library's model + search its FAISS index;
- llm4ms default search: `Library.search` with the model's ranking (retrieval by embedding and classic score,
  fused re-scoring, molecular-ion prior, learned re-ranker), as `llm4ms search` runs it; the classic index build
  apart; and the same with ``--approximate-classic``;
- llm4ms index search alone (queries already embedded), for the library's index and exact flat search,
  with recall@10 of the library's index against exact search;
- Flash entropy search (ms-entropy open search: EI has no precursor), one query at a time as the package
  does, top-k by argpartition; index build time and memory;
- exact NIST weighted cosine (m/z^3 * I^0.6) on a subset of the library, queries/s scaled to the full size.
Prints a table and writes benchmarks/results/search_speed_<name>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench import rss_mb, run_header  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def library_spectra(library, indices):
    from llm4ms.spectrum import Spectrum

    for i in indices:
        mz, inten = library.peaks(int(i))
        yield Spectrum(mz.astype(np.float64), inten.astype(np.float64), {})


def time_llm4ms(library, queries, k: int) -> dict:
    import faiss

    from llm4ms.library.index import IndexSpec, build_index, search_index

    encoder = library.encoder()
    encoder.encode(queries[:16], show_progress=False)  # warm-up
    t0 = time.perf_counter()
    q = encoder.encode(queries, show_progress=False)
    embed_s = time.perf_counter() - t0
    index = library.index
    search_index(index, q[:8], k)
    t0 = time.perf_counter()
    _, ids = search_index(index, q, k)
    search_s = time.perf_counter() - t0
    spec = library.manifest.index["spec"]
    out = {"index": spec["kind"], "embed_queries_per_s": len(q) / embed_s,
           "index_search_queries_per_s": len(q) / search_s,
           "end_to_end_queries_per_s": len(q) / (embed_s + search_s),
           "index_file_mb": (library.folder / "index.faiss").stat().st_size / 1e6}
    if spec["kind"] != "flat":
        flat, _ = build_index(np.asarray(library.embeddings, dtype=np.float32), IndexSpec(kind="flat"))
        t0 = time.perf_counter()
        _, exact = search_index(flat, q, k)
        out["flat_search_queries_per_s"] = len(q) / (time.perf_counter() - t0)
        out["recall_at_10_vs_exact"] = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact)]))
        del flat
    else:
        out["flat_search_queries_per_s"] = out["index_search_queries_per_s"]
        out["recall_at_10_vs_exact"] = 1.0
    out["faiss_threads"] = faiss.omp_get_max_threads()
    return out


def time_ranked(library, queries, k: int, approximate: bool = False) -> dict:
    """`Library.search` with the model's own ranking, as `llm4ms search` runs it (with `approximate`: as
    ``--approximate-classic`` runs it): the first call also builds the library's peak matrix for classic retrieval
    (or maps the one `llm4ms index` kept beside the library, or reads the approximate index kept there; timed
    apart, with its memory), the second is the steady state."""
    from dataclasses import replace

    from llm4ms.ranking import model_ranking

    ranking = replace(model_ranking(library.encoder()), classic_approximate=approximate)
    out = {"ranking": ranking.describe()}
    if ranking.classic_retrieval:
        before = rss_mb()
        t0 = time.perf_counter()
        library.classic_index(ranking.classic, approximate)
        out["classic_index_build_s"] = time.perf_counter() - t0
        out["classic_index_rss_growth_mb"] = rss_mb() - before
    library.search(queries[:8], k=k, ranking=ranking)
    t0 = time.perf_counter()
    library.search(queries, k=k, ranking=ranking)
    out["queries_per_s"] = len(queries) / (time.perf_counter() - t0)
    return out


def time_entropy(library, queries, k: int, limit: int | None) -> dict:
    from llm4ms.evaluate.entropy_scorer import EntropyScorer
    from llm4ms.similarity.entropy import entropy_peaks

    n = len(library) if limit is None else min(limit, len(library))
    before = rss_mb()
    t0 = time.perf_counter()
    scorer = EntropyScorer().fit(list(library_spectra(library, range(n))))
    build_s = time.perf_counter() - t0
    index_mb = rss_mb() - before
    search = scorer._search
    cleaned = []
    for query in queries:
        peaks = entropy_peaks(query)
        top = float(peaks[:, 0].max())
        cleaned.append(search.clean_spectrum_for_search(
            precursor_mz=top + 1.0, peaks=peaks, precursor_ions_removal_da=None,
            noise_threshold=scorer.noise_threshold, min_ms2_difference_in_da=2.0 * scorer.tolerance))
    t0 = time.perf_counter()
    for peaks in cleaned:
        sims = search.open_search(peaks=peaks, ms2_tolerance_in_da=scorer.tolerance)
        np.argpartition(-sims, k)[:k]
    secs = time.perf_counter() - t0
    return {"library_spectra": n, "build_s": build_s, "rss_growth_mb": index_mb,
            "queries_per_s": len(queries) / secs, "threads": 1}


def time_wcs(library, queries, k: int, subset: int) -> dict:
    from llm4ms.evaluate.classic import WeightedCosineScorer

    n = min(subset, len(library))
    scorer = WeightedCosineScorer().fit(list(library_spectra(library, range(n))))
    scorer.search(queries[:4], k)
    t0 = time.perf_counter()
    scorer.search(queries, k)
    secs = time.perf_counter() - t0
    qps = len(queries) / secs
    return {"subset_spectra": n, "queries_per_s_on_subset": qps,
            "queries_per_s_scaled_to_library": qps * n / len(library)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--n-queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--wcs-subset", type=int, default=100_000)
    parser.add_argument("--entropy-limit", type=int, help="index only the first N library spectra for entropy")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: ranked,approximate,entropy,wcs")
    parser.add_argument("--name")
    args = parser.parse_args()
    import faiss
    import torch

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    from llm4ms.io import read_spectra
    from llm4ms.library import Library

    library = Library.load(args.library)
    queries = list(read_spectra(args.queries))[: args.n_queries]
    skip = set(filter(None, args.skip.split(",")))
    print(f"library {len(library)} spectra, {len(queries)} queries, {args.threads} threads", file=sys.stderr)
    result = run_header(args, library, queries, k=args.k)
    result["llm4ms"] = time_llm4ms(library, queries, args.k)
    print(f"llm4ms: {result['llm4ms']}", file=sys.stderr)
    if "ranked" not in skip:
        result["llm4ms_ranked"] = time_ranked(library, queries, args.k)
        print(f"llm4ms ranked: {result['llm4ms_ranked']}", file=sys.stderr)
    if "approximate" not in skip:
        result["llm4ms_ranked_approximate"] = time_ranked(library, queries, args.k, approximate=True)
        print(f"llm4ms ranked, approximate classic: {result['llm4ms_ranked_approximate']}", file=sys.stderr)
    if "entropy" not in skip:
        result["entropy"] = time_entropy(library, queries, args.k, args.entropy_limit)
        print(f"entropy: {result['entropy']}", file=sys.stderr)
    if "wcs" not in skip:
        result["wcs"] = time_wcs(library, queries, args.k, args.wcs_subset)
        print(f"wcs: {result['wcs']}", file=sys.stderr)
    ll = result["llm4ms"]
    ent = result.get("entropy", {}).get("queries_per_s")
    rows = [("llm4ms end to end (embed + index)", ll["end_to_end_queries_per_s"]),
            *([("llm4ms default search (embed + ranking: " + result["llm4ms_ranked"]["ranking"] + ")",
                result["llm4ms_ranked"]["queries_per_s"])] if "llm4ms_ranked" in result else []),
            *([("llm4ms search --approximate-classic", result["llm4ms_ranked_approximate"]["queries_per_s"])]
              if "llm4ms_ranked_approximate" in result else []),
            (f"llm4ms index search alone ({ll['index']})", ll["index_search_queries_per_s"]),
            ("llm4ms exact flat search alone", ll["flat_search_queries_per_s"])]
    if ent:
        rows.append(("Flash entropy (open search, 1 thread)", ent))
    if "wcs" in result:
        rows.append(("exact weighted cosine (scaled from subset)", result["wcs"]["queries_per_s_scaled_to_library"]))
    print(f"\n{len(library):,} library spectra, {len(queries)} queries, {args.threads} threads; "
          f"recall@10 of the {ll['index']} index vs exact: {ll['recall_at_10_vs_exact']:.4f}; "
          f"index file {ll['index_file_mb']:.0f} MB\n")
    print("| method | queries/s | x Flash entropy |")
    print("|---|---:|---:|")
    for label, qps in rows:
        ratio = f"{qps / ent:.1f}" if ent else "-"
        print(f"| {label} | {qps:,.0f} | {ratio} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.name or Path(args.library).name
    out = RESULTS / f"search_speed_{name}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
