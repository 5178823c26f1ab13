"""How well the re-ranker's structure evidence alone finds the right structure: each query's true structure ranked
among every structure of a library, by the fingerprint network (Bernoulli log-likelihood of the candidate's bits)
and by the structure matcher (cosine in its two-tower space), no spectrum of the library read.

    python benchmarks/structure_ranking.py --queries work_data/benchmark/insilico_validation/queries.msp \\
        --library work_data/benchmark/insilico_validation/library_10k.msp --name validation_10k
    python benchmarks/structure_ranking.py ... --reranker DIR      # another re-ranker folder (default: bundled)

Prints a markdown table (R@1 / R@10 / median rank of the true structure) and writes
benchmarks/results/structure_ranking_<name>.json and .md. Use validation queries: the test split judges the
whole ranking once, not its parts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench import run_main, write_results  # noqa: E402


def true_ranks(scores: np.ndarray, library_keys: np.ndarray, query_keys: list) -> np.ndarray:
    """(n_queries,) 1-based rank of the best-scored library entry of the query's compound (ties count against it);
    0 where the compound is not in the library. `scores`: (n_library, n_queries), -inf = unscored."""
    ranks = np.zeros(len(query_keys), dtype=np.int64)
    for j, key in enumerate(query_keys):
        truth = library_keys == key
        if truth.any():
            ranks[j] = int(np.sum(scores[~truth, j] >= scores[truth, j].max())) + 1
    return ranks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--library", required=True)
    parser.add_argument("--reranker", default="bundled")
    parser.add_argument("--name", default="validation")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from llm4ms.data.shared import portable_path
    from llm4ms.errors import ConfigError
    from llm4ms.io import read_spectra
    from llm4ms.reranker import load_reranker

    reranker = load_reranker(args.reranker)
    queries = [q for q in read_spectra(args.queries) if q.inchikey14]
    library = list(read_spectra(args.library))
    if not queries or not library:
        raise ConfigError("need queries with an InChIKey and a non-empty library")
    keys = np.array([s.inchikey14 or "" for s in library])
    query_keys = [q.inchikey14 for q in queries]
    fingerprint = reranker.fingerprint_model
    bits, parsed = fingerprint.fingerprints([s.smiles for s in library])
    p = np.clip(fingerprint.predict(queries).astype(np.float64), 1e-4, 1 - 1e-4)
    scores = {"fingerprint network": (bits @ np.log(p).T + (1 - bits) @ np.log(1 - p).T) / p.shape[1]}
    if reranker.structure_matcher is not None:
        matcher = reranker.structure_matcher
        scores["structure matcher"] = (matcher.encode_structures(bits) @ matcher.encode_spectra(queries).T)
    rows, lines = {}, ["| structure evidence | R@1 | R@10 | median rank | queries with the compound in the library |",
                       "|---|---:|---:|---:|---:|"]
    for label, block in scores.items():
        block = np.where(parsed[:, None], block, -np.inf)
        ranks = true_ranks(block, keys, query_keys)
        found = ranks[ranks > 0]
        rows[label] = {"R@1": round(100 * float(np.mean(found == 1)), 1),
                       "R@10": round(100 * float(np.mean(found <= 10)), 1),
                       "median_rank": float(np.median(found)), "queries": int(found.size),
                       "ranks": ranks.tolist()}
        r = rows[label]
        lines.append(f"| {label} | {r['R@1']} | {r['R@10']} | {r['median_rank']:g} | {r['queries']} |")
    table = f"{len(queries)} queries vs the {len(library)} structures of {Path(args.library).name}\n\n" + \
        "\n".join(lines) + "\n"
    print(table)
    command = " ".join(["python", "benchmarks/structure_ranking.py"] + sys.argv[1:])
    write_results(args.out_dir, f"structure_ranking_{args.name}",
                  {"queries": portable_path(args.queries), "library": portable_path(args.library),
                   "reranker": args.reranker, "results": rows, "command": command}, table, f"Command: `{command}`")
    return 0


if __name__ == "__main__":
    run_main(main, "structure_ranking.py")
