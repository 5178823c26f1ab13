"""What the approximate classic retrieval of a large library costs in hits, and what the retrieval depths buy.

    python benchmarks/classic_retrieval.py --library LIB_DIR --queries Q.msp [--n-queries 300]
        [--depths 2000:2000:6,2000:2000:0,500:500:6] [--name NAME]

The reference is the model's own ranking with *exhaustive* classic retrieval (`ClassicIndex`, a sparse product
over the whole library; with the ranking's ``fused_depth`` it selects the library's fused top, `FusedSelection`).
Each row runs the same `Library.search` with the approximate classic index the library keeps beside it
(`llm4ms.library.classic_retrieval`) at the given ``embedding depth:classic depth:plausible masses`` (the spectra of
the query's likeliest nominal masses added as candidates, `Ranking.plausible_masses`; 0 = none) and reports:
the share of queries whose top 10 is identical to the reference, the share with the same top hit, the share of
the reference top 10 it finds (per hit, as an index's recall@10 against exact search is counted), recall@1/@10
of the true compound (InChIKey first block; queries without one are not counted), and queries/s end to end.
Also: the approximate index's own recall of the exhaustive sqrt-cosine top 10 within its top N. One run, so the
speeds compare as ratios. Prints a table and writes benchmarks/results/classic_retrieval_<name>.{json,md}.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench import (add_ranked_library_args, load_ranked_library, parse_rows, recall_at, rss_mb, run_header,  # noqa: E402
                    run_main, write_results)

RESULTS = Path(__file__).resolve().parent / "results"


def timed_search(library, queries, ranking, k: int):
    library.search(queries[:4], k=k, ranking=ranking)  # warm
    t0 = time.perf_counter()
    hits = library.search(queries, k=k, ranking=ranking)
    return hits, len(queries) / (time.perf_counter() - t0)


def compare(hits, reference, query_keys) -> dict:
    ids = [[h.library_index for h in row] for row in hits]
    ref = [[h.library_index for h in row] for row in reference]
    out = {"identical_top10": float(np.mean([a == b for a, b in zip(ids, ref)])),
           "same_top1": float(np.mean([a[:1] == b[:1] for a, b in zip(ids, ref)])),
           # per hit, as an index's recall@10 against exact search is counted
           "recall10_vs_reference": float(np.mean([len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(ids, ref)]))}
    for cut in (1, 10):
        out[f"R@{cut}"] = recall_at(hits, query_keys, cut)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_ranked_library_args(parser)
    parser.add_argument("--depths", default="2000:2000:6,2000:2000:0,500:500:6,200:200:6",
                        help="comma list of EMBEDDING_DEPTH:CLASSIC_DEPTH:PLAUSIBLE_MASSES rows")
    parser.add_argument("--classic-nprobe", type=int, help="lists the approximate index probes (default: its own)")
    parser.add_argument("--embedding-nprobe", type=int, help="lists the library's IVF index probes (default: its own)")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    from llm4ms.library.classic_retrieval import peak_matrix

    depths = parse_rows(args.depths, 3, "--depths", "EMBEDDING:CLASSIC:MASSES triples (the first two positive)")
    library, queries, keys, ranking = load_ranked_library(args)
    result = run_header(args, library, queries, ranking=ranking.describe(), rows=[])
    before, t0 = rss_mb(), time.perf_counter()
    exact = peak_matrix(library._files, ranking.classic)
    result["exact_matrix_build_s"], result["exact_matrix_rss_mb"] = time.perf_counter() - t0, rss_mb() - before
    t0 = time.perf_counter()
    approx = library.classic_index(ranking.classic, approximate=True)
    result["approximate_index_ready_s"] = time.perf_counter() - t0
    if args.embedding_nprobe:
        library.index.nprobe = args.embedding_nprobe
    result["embedding_nprobe"] = int(getattr(library.index, "nprobe", 0))
    if args.classic_nprobe:
        approx.nprobe = approx.index.nprobe = args.classic_nprobe
    cache = library.folder / f"classic_{ranking.classic}"
    result["approximate_index_mb"] = sum(f.stat().st_size for f in cache.iterdir()) / 1e6
    result["approximate_nprobe"] = approx.nprobe

    t0 = time.perf_counter()
    true_top = exact.top(queries, 10)
    result["exhaustive_classic_top_queries_per_s"] = len(queries) / (time.perf_counter() - t0)
    for n in sorted({c for _, c, _ in depths}):
        t0 = time.perf_counter()
        found = approx.top(queries, n)
        qps = len(queries) / (time.perf_counter() - t0)
        recall = float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(true_top, found)]))
        result.setdefault("approximate_classic_top", []).append({"n": n, "recall_of_exhaustive_top10": recall,
                                                                 "queries_per_s": qps})

    library._classic_indexes[ranking.classic, False] = exact
    ranking = replace(ranking, classic_approximate=False)
    reference, ref_qps = timed_search(library, queries, ranking, args.k)
    result["reference"] = {"depth": ranking.depth, "classic_depth": ranking.classic_depth, "queries_per_s": ref_qps,
                           **compare(reference, reference, keys)}
    for depth, classic_depth, masses in depths:
        hits, qps = timed_search(library, queries, replace(ranking, depth=depth, classic_depth=classic_depth,
                                                           classic_approximate=True, plausible_masses=masses), args.k)
        row = {"depth": depth, "classic_depth": classic_depth, "plausible_masses": masses, "queries_per_s": qps,
               **compare(hits, reference, keys)}
        result["rows"].append(row)
        print(row, file=sys.stderr)

    lines = [f"{len(library):,} library spectra, {len(queries)} queries, {args.threads} threads; ranking: "
             f"{result['ranking']}", "",
             "| first stage (embedding depth + classic depth + spectra at the likeliest masses) | identical top 10 "
             "| same top 1 | recall@10 vs reference "
             "| R@1 | R@10 | queries/s |", "|---|---:|---:|---:|---:|---:|---:|"]
    ref = result["reference"]
    label = (f"exhaustive default, the library's fused top {ranking.fused_depth}" if ranking.fused_depth else
             f"exhaustive classic {ref['depth']} + {ref['classic_depth']}")
    lines.append(f"| {label} (reference) | 1.000 | 1.000 | 1.000 | "
                 f"{ref['R@1']:.1f} | {ref['R@10']:.1f} | {ref['queries_per_s']:.1f} |")
    for row in result["rows"]:
        lines.append(f"| approximate classic {row['depth']} + {row['classic_depth']} + "
                     f"{row.get('plausible_masses', 0)} masses | {row['identical_top10']:.3f} | "
                     f"{row['same_top1']:.3f} | {row['recall10_vs_reference']:.3f} | {row['R@1']:.1f} | "
                     f"{row['R@10']:.1f} | {row['queries_per_s']:.1f} |")
    lines += ["", "| approximate classic top N | recall of the exhaustive top 10 | queries/s |", "|---:|---:|---:|"]
    lines += [f"| {r['n']} | {r['recall_of_exhaustive_top10']:.4f} | {r['queries_per_s']:.0f} |"
              for r in result["approximate_classic_top"]]
    table = "\n".join(lines)
    print("\n" + table)
    footer = (f"Exhaustive classic top 10: {result['exhaustive_classic_top_queries_per_s']:.1f} queries/s; exact "
              f"matrix built in {result['exact_matrix_build_s']:.0f} s; approximate index "
              f"{result['approximate_index_mb']:.0f} MB on disk (nprobe {approx.nprobe}); embedding index nprobe "
              f"{result['embedding_nprobe']}.\n\nCommand: `{result['command']}`")
    write_results(RESULTS, f"classic_retrieval_{args.name or Path(args.library).name}", result, table, footer)
    return 0


if __name__ == "__main__":
    run_main(main, "classic_retrieval.py")
