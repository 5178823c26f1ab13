"""Does the default search's candidate list hold the fused top of the *whole* library, and what do the depths cost?

    python benchmarks/fused_depth.py --library LIB_DIR --queries Q.msp [--n-queries 300]
        [--settings 2000:2000:0,200:200:200] [--name NAME]

The re-ranker reads the fused list's top 50, so that list should be the one the fused score (embedding, classic
score and mass prior, `llm4ms.ranking`) gives over every library spectrum. The reference here computes that score
for every spectrum of the library (all embedding inner products, all classic scores from the exhaustive sparse
product, the prior's penalty of every mass) and takes its exact top 50. Each ``EMBEDDING:CLASSIC:FUSED`` setting runs
`Library.search` with the model's ranking at those depths (``fused_depth`` 0 = the classic side selects by the
classic score alone, > 0 = by the fused score, `FusedSelection`) and reports: with the re-ranker off, the share of
queries whose fused top 50 / top 10 equals the reference, and the top-50 item recall; with the model's full ranking,
R@1 / R@10 of the true compound (InChIKey first block) and queries/s. Prints a table and writes
benchmarks/results/fused_depth_<name>.{json,md}.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench import (add_ranked_library_args, load_ranked_library, parse_rows, recall_at, run_header, run_main,  # noqa: E402
                    write_results)

RESULTS = Path(__file__).resolve().parent / "results"
TOP = 50


def exhaustive_fused_top(library, ranking, queries, q_emb: np.ndarray, chunk: int = 32) -> list[np.ndarray]:
    """The exact top `TOP` by the fused score over every library spectrum, ties by the lower index."""
    from llm4ms.similarity.classic import weighted_matrix

    index = library.classic_index(ranking.classic, False)
    mz_power, intensity_power, square = index.weighting
    embeddings = np.asarray(library.embeddings, dtype=np.float32)
    masses = np.asarray(library.masses, dtype=np.float64)
    out = []
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk]
        q = weighted_matrix(block, mz_power, intensity_power, index.max_mz).toarray().T.astype(np.float32)
        classic = np.asarray(index.matrix @ q, dtype=np.float64)
        if square:
            classic *= classic
        for j, query in enumerate(block):
            score = ranking.fusion * (embeddings @ q_emb[start + j]).astype(np.float64)
            score += (1.0 - ranking.fusion) * classic[:, j]
            if ranking.prior.active:
                score -= ranking.prior.penalties(query, masses)
            rounded = np.round(score, 6)
            cand = (np.argpartition(-rounded, 8 * TOP)[:8 * TOP] if rounded.size > 8 * TOP
                    else np.arange(rounded.size))
            out.append(cand[np.lexsort((cand, -rounded[cand]))][:TOP])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_ranked_library_args(parser)
    parser.add_argument("--settings", default="2000:2000:0,200:200:200",
                        help="comma list of EMBEDDING_DEPTH:CLASSIC_DEPTH:FUSED_DEPTH rows")
    args = parser.parse_args()

    settings = parse_rows(args.settings, 3, "--settings", "EMBEDDING:CLASSIC:FUSED depth triples")
    library, queries, keys, ranking = load_ranked_library(args)
    q_emb = np.asarray(library.encoder().encode(queries, batch_size=64), dtype=np.float32)
    t0 = time.perf_counter()
    reference = exhaustive_fused_top(library, ranking, queries, q_emb)
    result = run_header(args, library, queries, ranking=ranking.describe(), reference_s=time.perf_counter() - t0,
                        rows=[])
    for depth, classic_depth, fused_depth in settings:
        setting = replace(ranking, depth=depth, classic_depth=classic_depth, fused_depth=fused_depth)
        fused_only = replace(setting, reranker="")
        library.search(queries[:4], k=TOP, ranking=fused_only)  # warm
        lists = [np.array([h.library_index for h in row]) for row in library.search(queries, k=TOP,
                                                                                     ranking=fused_only)]
        t0 = time.perf_counter()
        hits = library.search(queries, k=10, ranking=setting)
        qps = len(queries) / (time.perf_counter() - t0)
        row = {"depth": depth, "classic_depth": classic_depth, "fused_depth": fused_depth,
               "ranking": setting.describe(),
               "identical_fused_top50": float(np.mean([np.array_equal(a, b) for a, b in zip(lists, reference)])),
               "identical_fused_top10": float(np.mean([np.array_equal(a[:10], b[:10])
                                                       for a, b in zip(lists, reference)])),
               "fused_top50_recall": float(np.mean([len(set(a) & set(b)) / TOP for a, b in zip(lists, reference)])),
               "R@1": recall_at(hits, keys, 1), "R@10": recall_at(hits, keys, 10), "queries_per_s": qps}
        result["rows"].append(row)
        print(row, file=sys.stderr)

    lines = [f"{len(library):,} library spectra, {len(queries)} queries, {args.threads} threads; ranking: "
             f"{result['ranking']}", "",
             "| embedding + classic depth, fused depth | fused top 50 = whole library's | top 10 = | top-50 recall "
             "| R@1 | R@10 | queries/s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['depth']} + {r['classic_depth']}, fused {r['fused_depth']} | "
                     f"{r['identical_fused_top50']:.3f} | {r['identical_fused_top10']:.3f} | "
                     f"{r['fused_top50_recall']:.4f} | {r['R@1']:.1f} | {r['R@10']:.1f} | {r['queries_per_s']:.1f} |")
    table = "\n".join(lines)
    print("\n" + table)
    footer = (f"Reference: the fused score of every library spectrum, exact top {TOP} ({result['reference_s']:.0f} s). "
              "R@1 / R@10 and queries/s with the model's full ranking (learned re-ranker included; the first "
              "setting's time includes no index build: the classic matrix is built by the reference)."
              f"\n\nCommand: `{result['command']}`")
    write_results(RESULTS, f"fused_depth_{args.name or Path(args.library).name}", result, table, footer)
    return 0


if __name__ == "__main__":
    run_main(main, "fused_depth.py")
