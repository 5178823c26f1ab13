"""`llm4ms index`: (re)build a library's FAISS index with another kind or parameters."""
from __future__ import annotations

import argparse
import sys
import time

from llm4ms.library.index import INDEX_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="rebuild the FAISS index of a library folder",
                       description="Build another index kind for an embedded library (exact or approximate).")
    p.add_argument("library", help="library folder made by `llm4ms embed`")
    p.add_argument("--type", default="auto", choices=INDEX_KINDS,
                   help="index kind: auto is exact (flat) up to 200,000 spectra, IVF above")
    p.add_argument("--nlist", type=int, help="IVF lists (default about 4 sqrt(n))")
    p.add_argument("--nprobe", type=int, default=None,
                   help="IVF lists probed per query (default: 1/16 of the lists, at least 32)")
    p.add_argument("--hnsw-m", type=int, default=32, help="HNSW neighbours per node")
    p.add_argument("--ef-search", type=int, default=256, help="HNSW search breadth")
    p.add_argument("--no-prepare", action="store_true",
                   help="only the FAISS index: do not keep the candidates' structure fingerprints beside a "
                        "library above 1,000 spectra and the classic score's matrix above 300,000 (the re-ranker "
                        "then computes the fingerprints per candidate and each search process builds the matrix "
                        "again, ~20 s at 1 M: slower, same hits)")
    p.add_argument("--approximate-classic", action="store_true",
                   help="also build the approximate classic-score index `llm4ms search --approximate-classic` "
                        "uses (else built on its first search)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.library import IndexSpec
    from llm4ms.library import Library

    library = Library.load(args.library)
    spec = IndexSpec(kind=args.type, nlist=args.nlist, nprobe=args.nprobe, hnsw_m=args.hnsw_m,
                     ef_search=args.ef_search)
    start = time.perf_counter()
    resolved = library.build_index(spec)
    print(f"index {resolved.kind} ({resolved.factory_string()}) over {len(library)} spectra built in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    if not args.no_prepare:
        start = time.perf_counter()
        built = library.prepare_search(approximate_classic=args.approximate_classic)
        if built:
            print(f"{' and '.join(built)} ready in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
