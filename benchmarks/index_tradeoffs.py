"""Index kinds side by side on one embedding matrix: build time, size, queries/s, recall@10 vs exact.

    python benchmarks/index_tradeoffs.py --library LIB_DIR [--queries Q.msp] [--threads 2]
    python benchmarks/index_tradeoffs.py --synthetic 1000000 --dim 256      # clustered random vectors

Queries are the embeddings of a query file (with the library's model) or, without one, library vectors
perturbed with noise and re-normalised. Recall@10 is the overlap with exact (flat fp32) top-10.
Writes benchmarks/results/index_tradeoffs[_NAME].json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm4ms.library.index import IndexSpec, build_index, search_index  # noqa: E402

from _bench import rss_mb  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def synthetic(n: int, dim: int, clusters: int = 2000, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (spectra embeddings are clustered by compound class, not uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        assign = rng.integers(0, clusters, m)
        out[start:start + m] = centres[assign] + 0.6 * rng.standard_normal((m, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def load_vectors(args) -> tuple[np.ndarray, np.ndarray, str]:
    if args.synthetic:
        x = synthetic(args.synthetic, args.dim)
        rng = np.random.default_rng(1)
        q = x[rng.choice(len(x), args.n_queries, replace=False)]
        q = q + 0.05 * rng.standard_normal(q.shape).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        return x, q.astype(np.float32), f"synthetic_{args.synthetic}"
    from llm4ms.library import Library

    library = Library.load(args.library)
    x = np.asarray(library.embeddings, dtype=np.float32)
    if args.queries:
        from llm4ms.io import read_spectra

        queries = list(read_spectra(args.queries))[: args.n_queries]
        q = library.encoder().encode(queries, show_progress=False)
    else:
        rng = np.random.default_rng(1)
        q = x[rng.choice(len(x), min(args.n_queries, len(x)), replace=False)].copy()
        q += 0.02 * rng.standard_normal(q.shape).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, np.asarray(q, dtype=np.float32), Path(args.library).name


def measure(x: np.ndarray, q: np.ndarray, spec: IndexSpec, exact: np.ndarray | None, k: int,
            variants: list[dict] | None = None) -> list[dict]:
    """Build `spec` once, then search with each search-time variant (nprobe / efSearch)."""
    import faiss

    from llm4ms.library.index import configure_search

    before = rss_mb()
    t0 = time.perf_counter()
    index, resolved = build_index(x, spec, use_gpu=False)
    build_s = time.perf_counter() - t0
    ram_mb = rss_mb() - before
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "i.faiss")
        faiss.write_index(index, path)
        disk_mb = os.path.getsize(path) / 1e6
    rows = []
    for variant in variants or [{}]:
        run = IndexSpec(**{**resolved.__dict__, **variant})
        configure_search(index, run)
        search_index(index, q[:10], k)  # warm-up
        t0 = time.perf_counter()
        _, ids = search_index(index, q, k)
        secs = time.perf_counter() - t0
        recall = None
        if exact is not None:
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact)]))
        rows.append({"kind": run.kind, "factory": run.factory_string(),
                     "nprobe": run.nprobe if run.kind.startswith("ivf") else None,
                     "ef_search": run.ef_search if run.kind == "hnsw" else None,
                     "build_s": round(build_s, 2), "disk_mb": round(disk_mb, 1), "ram_mb_delta": round(ram_mb, 1),
                     "queries_per_s": round(len(q) / secs, 1), "recall_at_10_vs_exact": recall, "_ids": ids})
    del index
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library")
    parser.add_argument("--queries")
    parser.add_argument("--synthetic", type=int)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--n-queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nprobe", default="8,16,32,64")
    parser.add_argument("--ef-search", default="64,128,256")
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    if not (args.library or args.synthetic):
        parser.error("give --library or --synthetic")
    import faiss

    faiss.omp_set_num_threads(args.threads)
    x, q, label = load_vectors(args)
    print(f"{len(x)} vectors x {x.shape[1]} dims, {len(q)} queries, {args.threads} threads", file=sys.stderr)
    rows = []
    exact_row = measure(x, q, IndexSpec(kind="flat"), None, args.k)[0]
    exact = exact_row["_ids"]
    exact_row["recall_at_10_vs_exact"] = 1.0
    rows.append(exact_row)
    nprobes = [{"nprobe": int(p)} for p in args.nprobe.split(",")]
    plan = [(IndexSpec(kind="flat16"), None), (IndexSpec(kind="sq8"), None), (IndexSpec(kind="ivf"), nprobes),
            (IndexSpec(kind="ivfsq8"), nprobes[-2:]),
            (IndexSpec(kind="hnsw", ef_construction=args.ef_construction), [{"ef_search": int(e)} for e in args.ef_search.split(",")])]
    for spec, variants in plan:
        for row in measure(x, q, spec, exact, args.k, variants):
            rows.append(row)
            print(f"  {row['factory']:<16} nprobe={row['nprobe']} ef={row['ef_search']}: "
                  f"{row['queries_per_s']} q/s, recall {row['recall_at_10_vs_exact']:.4f}", file=sys.stderr)
    for row in rows:
        row.pop("_ids")
    flat_qps = rows[0]["queries_per_s"]
    print("\n| index | nprobe/ef | build s | disk MB | RAM MB | queries/s | x flat | recall@10 vs exact |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        param = r["nprobe"] or r["ef_search"] or ""
        print(f"| {r['factory']} | {param} | {r['build_s']} | {r['disk_mb']} | {r['ram_mb_delta']} | "
              f"{r['queries_per_s']} | {r['queries_per_s'] / flat_qps:.1f} | {r['recall_at_10_vs_exact']:.4f} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.name or label
    out = RESULTS / f"index_tradeoffs_{name}.json"
    out.write_text(json.dumps({"command": " ".join(sys.argv), "vectors": len(x), "dim": int(x.shape[1]),
                               "queries": len(q), "threads": args.threads, "rows": rows}, indent=1))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
