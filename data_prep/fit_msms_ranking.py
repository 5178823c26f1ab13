"""Fit an MS/MS model's ranking (fusion weight with an accurate-mass score, retrieval depth) on VALIDATION.

    python data_prep/fit_msms_ranking.py runs/msms_peak/supervised/final --sets work_data/msms/all [--write]

The validation task of `benchmarks/msms_recall.py` (`llm4ms.evaluate.msms`: per ion mode, one query spectrum
per validation compound, library = every other spectrum of that mode in all splits). For each query the
embedding proposes its top ``depth`` candidates, in the whole library (open search) and inside the precursor
window (identity search); the accurate-mass classic scores of those candidates are computed once, and the
fusion grid is read off them with `llm4ms.ranking.rerank` (the function `llm4ms search` uses). The choice:
best Recall@1 inside the window, ties by open-search Recall@1. No mass prior (the precursor window does its
job for MS/MS). ``--write`` stores ``"ranking"`` in MODEL/llm4ms_config.json; the grid goes to
benchmarks/results/ranking_fit_<name>.json. The test split is never read here.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FUSIONS = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
CLASSICS = ("entropy_hr", "cosine_hr")


def candidate_lists(embeddings: np.ndarray, query_embeddings: np.ndarray, windows: list, depth: int):
    """Per query: (open candidates, their cosines), (window candidates, their cosines), best first by cosine."""
    out = []
    for row, window in enumerate(windows):
        sims = embeddings @ query_embeddings[row]
        top = np.argpartition(-sims, depth - 1)[:depth] if depth < sims.size else np.arange(sims.size)
        top = top[np.lexsort((top, -sims[top]))]
        if window is None:
            win = top
        else:
            win = np.asarray(window, dtype=np.int64)
            win = win[np.lexsort((win, -sims[win]))][:depth]
        out.append(((top, sims[top]), (win, sims[win])))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--sets", type=Path, default=Path("work_data/msms/all"))
    parser.add_argument("--precursor-tolerance", default="10ppm")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--max-queries", type=int, default=None, help="query compounds per ion mode")
    parser.add_argument("--name", default=None)
    parser.add_argument("--out-json", type=Path, default=None,
                        help="where the grid goes (default benchmarks/results/ranking_fit_<name>.json)")
    parser.add_argument("--write", action="store_true", help="store the chosen ranking in the model folder")
    args = parser.parse_args(argv)

    from llm4ms.evaluate.msms import load_msms_benchmark
    from llm4ms.mass import Tolerance, sort_by_mass, tolerance_window
    from llm4ms.model import SpectrumEncoder
    from llm4ms.query_checks import check_tolerance
    from llm4ms.ranking import Ranking, rerank, store_ranking
    from llm4ms.similarity.named import scores as classic_scores
    from llm4ms.utils import write_json

    tolerance = Tolerance(*check_tolerance(args.precursor_tolerance))
    encoder = SpectrumEncoder.from_pretrained(args.model)
    benchmarks = load_msms_benchmark(args.sets, split="validation", max_queries=args.max_queries)
    grid: dict[str, dict[str, list[int]]] = {}  # "classic fusion" -> {"open": hits@1, "window": hits@1}
    counts = {}
    t0 = time.perf_counter()
    for mode, bench in benchmarks.items():
        library, queries = bench.library, bench.queries
        keys = np.array([s.inchikey14 for s in library])
        lib_emb = np.asarray(encoder.encode(library, batch_size=128), dtype=np.float32)
        q_emb = np.asarray(encoder.encode(queries, batch_size=128), dtype=np.float32)
        precursors = np.array([np.nan if s.precursor_mz is None else s.precursor_mz for s in library])
        sorted_mz, order = sort_by_mass(precursors)
        windows = [None if q.precursor_mz is None else tolerance_window(sorted_mz, order, q.precursor_mz, tolerance)
                   for q in queries]
        lists = candidate_lists(lib_emb, q_emb, windows, args.depth)
        counts[mode] = {"queries": len(queries), "library": len(library)}
        for classic in CLASSICS:
            for row, (query, ((open_i, open_s), (win_i, win_s))) in enumerate(zip(queries, lists)):
                union = np.union1d(open_i, win_i)
                values = dict(zip(union.tolist(), classic_scores(classic, query, [library[i] for i in union])))

                def cached(_query, idx, values=values):
                    return np.array([values[int(i)] for i in idx], dtype=np.float64)

                for fusion in FUSIONS:
                    ranking = Ranking(fusion=fusion, classic=classic, depth=args.depth)
                    cell = grid.setdefault(f"{classic} {fusion:g}", {"open": [], "window": []})
                    for kind, (cand, emb) in (("open", (open_i, open_s)), ("window", (win_i, win_s))):
                        top, _ = rerank(ranking, query, cand, emb, cached, None, 1)
                        cell[kind].append(int(top.size > 0 and keys[top[0]] == query.inchikey14))
        print(f"{mode}: {len(queries)} queries, {len(library)} library spectra ({time.perf_counter() - t0:.0f} s)")
    table = {name: {kind: round(100.0 * float(np.mean(v)), 2) for kind, v in cell.items()}
             for name, cell in grid.items()}
    best = max(table, key=lambda name: (table[name]["window"], table[name]["open"]))
    classic, fusion = best.split()
    chosen = Ranking(fusion=float(fusion), classic=classic, depth=args.depth)
    print("classic fusion: R@1 window / open")
    for name, cell in table.items():
        print(f"  {name:<16} {cell['window']:6.2f} / {cell['open']:6.2f}{'  <- chosen' if name == best else ''}")
    name = args.name or args.model.parent.parent.name
    command = " ".join(["python", "data_prep/fit_msms_ranking.py", *(argv if argv is not None else sys.argv[1:])])
    write_json(args.out_json or ROOT / "benchmarks" / "results" / f"ranking_fit_{name}.json",
               {"model": str(args.model), "split": "validation", "counts": counts, "depth": args.depth,
                "precursor_tolerance": str(tolerance), "recall@1": table, "chosen": chosen.to_dict(),
                "command": command})
    if args.write:
        store_ranking(encoder, args.model, chosen, "validation ranking fit (MassBank MS/MS)",
                      f"{chosen.describe()}: R@1 {table[best]['window']} in a {tolerance} precursor window, "
                      f"{table[best]['open']} open search; embedding alone {table[f'{classic} 1']['window']} / "
                      f"{table[f'{classic} 1']['open']}, {classic} alone {table[f'{classic} 0']['window']} / "
                      f"{table[f'{classic} 0']['open']}; `{command}`")
        print(f"wrote the ranking into {args.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
