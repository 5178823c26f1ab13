"""Embedding search alone vs embedding candidates re-ranked by a classic score, same library and queries.

    python benchmarks/rerank.py --library-spectra LIB.msp --queries Q.msp [--model M] [--depth 100]

Builds (or reuses) a library folder next to the spectra with the given model (default: the bundled one),
searches every query, and reports Recall@1/@10 by InChIKey first block for: the embedding ranking, and the
top-`depth` embedding candidates re-ranked by cosine_sqrt and by wcs. Writes benchmarks/results/rerank_<name>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results"


def recall(results, queries, ks=(1, 10)) -> dict:
    out = {}
    keyed = [(q.inchikey14, [str(h.inchikey or "")[:14] for h in hits]) for q, hits in zip(queries, results)
             if q.inchikey14]
    for k in ks:
        out[f"R@{k}"] = round(100 * sum(key in hits[:k] for key, hits in keyed) / len(keyed), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library-spectra", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--model")
    parser.add_argument("--out", help="library folder (default: beside the spectra)")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--name", default="insilico_test_10k")
    args = parser.parse_args()
    from llm4ms.data.shared import portable_path
    from llm4ms.defaults import load_encoder
    from llm4ms.io import read_spectra
    from llm4ms.library import Library

    encoder = load_encoder(args.model)
    folder = args.out or str(Path(args.library_spectra).with_suffix("")) + f"_lib_{encoder.identity[:8]}"
    library = Library.build(args.library_spectra, folder, encoder, show_progress=False)
    queries = list(read_spectra(args.queries))
    rows = {}
    for rerank in (None, "cosine_sqrt", "wcs"):
        t0 = time.perf_counter()
        results = library.search(queries, k=10, encoder=encoder, rerank=rerank, rerank_depth=args.depth)
        label = "embedding only" if rerank is None else f"embedding top-{args.depth} re-ranked by {rerank}"
        rows[label] = {**recall(results, queries), "queries_per_s": round(len(queries) / (time.perf_counter() - t0))}
    wide = library.search(queries, k=args.depth, encoder=encoder)
    ceiling = recall(wide, queries, ks=(args.depth,))
    print(f"{len(queries)} queries, {len(library)} library spectra, model {encoder.name_or_path}")
    print(f"embedding R@{args.depth} (ceiling for re-ranking): {ceiling[f'R@{args.depth}']}")
    print("| ranking | R@1 | R@10 | queries/s |\n|---|---:|---:|---:|")
    for label, r in rows.items():
        print(f"| {label} | {r['R@1']} | {r['R@10']} | {r['queries_per_s']} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"rerank_{args.name}.json"
    model = str(encoder.name_or_path)
    model = portable_path(model) if Path(model).exists() else model  # a folder: repo-relative; a Hub id as is
    out.write_text(json.dumps({"command": " ".join(sys.argv), "queries": len(queries), "library": len(library),
                               "model": model, "ceiling": ceiling, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
