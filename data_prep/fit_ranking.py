"""Fit a model's ranking (fusion weight, mass prior, molecular-ion weight, depth) on the VALIDATION split; store it.

    python data_prep/fit_ranking.py MODEL_DIR --queries work_data/benchmark/insilico_validation/queries.msp \
        --library work_data/benchmark/insilico_validation/library_10k.msp [--write]

Exhaustive scores on validation (embedding cosine, the classic score, the prior's penalty share) are
computed once; a grid over fusion weight x prior form is read off them (Recall@1, ties by Recall@10). A
second grid, at the chosen prior form, adds the molecular-ion model's weight (`--ion-model`,
`llm4ms.molecular_ion`; ``--ion-model off`` skips it). The same grids fit the prior for the classic score
alone, so comparisons stay fair. The retrieval depth is the smallest N for which the fused top 10 over the
embedding's top N (else over the embedding's and the classic score's top N together) equals the exhaustive
fused top 10 for >= 99 % of queries. ``--write`` stores ``"ranking"`` in MODEL_DIR/llm4ms_config.json; the
grid goes to benchmarks/results/ranking_fit_<name>.json. The test split is never read here.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm4ms.ranking import MassPrior, Ranking, store_ranking  # noqa: E402

FUSIONS = [round(x, 2) for x in np.arange(0.0, 1.0001, 0.05)]
WEIGHTS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5]
MARGINS = [0.5, 1.5, 2.5]
MIN_RELATIVES = [0.005, 0.01, 0.03]
DEPTHS = [20, 50, 100, 200, 300, 500, 1000, 2000]
ION_WEIGHTS = [0.0, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04]


def recall(scores: np.ndarray, hits: np.ndarray, ks=(1, 10)) -> dict[str, float]:
    """Recall@k (percent) of dense (nq, nl) scores; `hits` marks library entries of the query's compound."""
    out = {}
    for k in ks:
        top = np.argmax(scores, axis=1)[:, None] if k == 1 else np.argpartition(-scores, k - 1, axis=1)[:, :k]
        out[f"R@{k}"] = round(100.0 * float(np.take_along_axis(hits, top, axis=1).any(axis=1).mean()), 2)
    return out


def penalty_share(queries, masses: np.ndarray, margin: float, min_relative: float) -> np.ndarray:
    prior = MassPrior(weight=1.0, margin=margin, min_relative=min_relative)
    return np.stack([prior.penalties(q, masses) for q in queries])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--classic", default="cosine_sqrt")
    parser.add_argument("--name", default=None)
    parser.add_argument("--ion-model", default="bundled",
                        help="molecular-ion model whose weight is fit: bundled, a folder, or off")
    parser.add_argument("--write", action="store_true", help="store the chosen ranking in the model folder")
    args = parser.parse_args(argv)

    from llm4ms.data.split import compound_split
    from llm4ms.io import read_spectra
    from llm4ms.model import SpectrumEncoder
    from llm4ms.similarity.named import score_matrix
    from llm4ms.utils import write_json

    queries = [q for q in read_spectra(args.queries) if q.inchikey14]
    library = list(read_spectra(args.library))
    splits = {compound_split(q.inchikey14) for q in queries}
    if "test" in splits:
        raise SystemExit("fit_ranking: refusing to fit on test-split queries")
    t0 = time.perf_counter()
    encoder = SpectrumEncoder.from_pretrained(args.model)
    emb = encoder.encode(queries, batch_size=256) @ encoder.encode(library, batch_size=256).T
    classic = score_matrix(args.classic, queries, library)
    keys = np.array([s.inchikey14 or "" for s in library])
    hits = np.stack([keys == q.inchikey14 for q in queries])
    masses = np.array([np.nan if s.molecular_mass is None else s.molecular_mass for s in library])
    print(f"scores for {len(queries)} queries x {len(library)} spectra in {time.perf_counter() - t0:.0f} s")

    shares = {(m, r): penalty_share(queries, masses, m, r) for m, r in itertools.product(MARGINS, MIN_RELATIVES)}
    grid = []
    for fusion in FUSIONS:
        fused = fusion * emb + (1.0 - fusion) * classic
        grid.append({"fusion": fusion, "weight": 0.0, "margin": None, "min_relative": None, **recall(fused, hits)})
        for (margin, min_rel), share in shares.items():
            for weight in WEIGHTS[1:]:
                grid.append({"fusion": fusion, "weight": weight, "margin": margin, "min_relative": min_rel,
                             **recall(fused - weight * share, hits)})

    def best(rows):
        return max(rows, key=lambda r: (r["R@1"], r["R@10"], -r["weight"], -r.get("ion_weight", 0.0)))

    hand = best(grid)
    form = (hand["margin"] or 1.5, hand["min_relative"] or 0.01)
    for row in grid:
        row["ion_weight"] = 0.0
    if args.ion_model != "off":
        from llm4ms.molecular_ion import load_ion_model

        ion = load_ion_model(args.ion_model)
        log_odds = np.stack([ion.log_odds(q, masses) for q in queries])
        for fusion in FUSIONS:
            fused = fusion * emb + (1.0 - fusion) * classic
            for weight in WEIGHTS:
                for ion_weight in ION_WEIGHTS[1:]:
                    penalty = (weight * shares[form] if weight else 0.0) - ion_weight * log_odds
                    grid.append({"fusion": fusion, "weight": weight, "margin": form[0] if weight else None,
                                 "min_relative": form[1] if weight else None, "ion_weight": ion_weight,
                                 **recall(fused - penalty, hits)})
    chosen = best(grid)
    classic_only = best([r for r in grid if r["fusion"] == 0.0])
    classic_hand_prior = best([r for r in grid if r["fusion"] == 0.0 and r["ion_weight"] == 0.0])
    classic_plain = next(r for r in grid if r["fusion"] == 0.0 and r["weight"] == 0.0 and r["ion_weight"] == 0.0)
    embedding_only = next(r for r in grid if r["fusion"] == 1.0 and r["weight"] == 0.0 and r["ion_weight"] == 0.0)
    fusion_no_prior = best([r for r in grid if r["weight"] == 0.0 and r["ion_weight"] == 0.0])
    fusion_hand_prior = best([r for r in grid if r["ion_weight"] == 0.0])
    prior = MassPrior(weight=chosen["weight"], margin=chosen["margin"] or 1.5,
                      min_relative=chosen["min_relative"] or 0.01, ion_weight=chosen["ion_weight"],
                      ion_model=args.ion_model if chosen["ion_weight"] else "bundled")

    fused = chosen["fusion"] * emb + (1 - chosen["fusion"]) * classic
    if prior.weight > 0:
        fused = fused - prior.weight * shares[(prior.margin, prior.min_relative)]
    if prior.ion_weight > 0:
        fused = fused + prior.ion_weight * log_odds
    exhaustive = np.argsort(-fused, axis=1, kind="stable")[:, :10]
    by_embedding = np.argsort(-emb, axis=1, kind="stable")
    by_classic = np.argsort(-classic, axis=1, kind="stable")
    depth_rows = []
    depth = classic_depth = None
    for n in DEPTHS:
        row = {"depth": n}
        for label, top in (("embedding", by_embedding[:, :n]),
                           ("embedding_and_classic", np.concatenate([by_embedding[:, :n], by_classic[:, :n]], 1))):
            masked = np.full(fused.shape, -np.inf)
            np.put_along_axis(masked, top, 0.0, axis=1)
            restricted = np.argsort(-(fused + masked), axis=1, kind="stable")[:, :10]
            row[f"top10_equal_share_{label}"] = round(float(np.mean(
                [set(a) == set(b) for a, b in zip(restricted, exhaustive)])), 4)
        depth_rows.append(row)
        if depth is None and row["top10_equal_share_embedding"] >= 0.99:
            depth, classic_depth = n, 0
        if depth is None and row["top10_equal_share_embedding_and_classic"] >= 0.99:
            depth, classic_depth = n, n
    if depth is None:
        depth = classic_depth = DEPTHS[-1]
    ranking = Ranking(fusion=chosen["fusion"], classic=args.classic, depth=depth, prior=prior,
                      classic_depth=classic_depth if chosen["fusion"] < 1 else 0)
    result = {
        "model": str(args.model), "queries": str(args.queries), "library": str(args.library),
        "n_queries": len(queries), "n_library": len(library), "split": sorted(splits),
        "chosen": ranking.to_dict(), "validation": {
            "embedding_only": embedding_only, "fused_no_prior": fusion_no_prior,
            "fused_with_hand_prior": fusion_hand_prior, "fused_with_prior": chosen,
            f"{args.classic}": classic_plain, f"{args.classic}_with_best_hand_prior": classic_hand_prior,
            f"{args.classic}_with_best_prior": classic_only},
        "depth_check": depth_rows, "grid": grid,
    }
    name = args.name or args.model.name
    out = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / f"ranking_fit_{name}.json"
    write_json(out, result)
    for label, row in result["validation"].items():
        print(f"  {label:<28} R@1 {row['R@1']:5.1f}  R@10 {row['R@10']:5.1f}  (fusion {row['fusion']}, "
              f"prior weight {row['weight']}, margin {row['margin']}, min_rel {row['min_relative']}, "
              f"ion weight {row['ion_weight']})")
    print("  depth check (share of queries whose top 10 equals the exhaustive one; embedding / + classic):",
          ", ".join(f"{r['depth']}: {r['top10_equal_share_embedding']:.3f} / "
                    f"{r['top10_equal_share_embedding_and_classic']:.3f}" for r in depth_rows))
    print(f"chosen: {ranking.describe()}; wrote {out}")
    if args.write:
        store_ranking(encoder, args.model, ranking, "validation ranking fit",
                      f"{ranking.describe()}: R@1 {chosen['R@1']}, R@10 {chosen['R@10']} vs {args.classic} "
                      f"{classic_plain['R@1']} / {classic_plain['R@10']} ({args.classic} + its best prior "
                      f"{classic_only['R@1']} / {classic_only['R@10']}); `python data_prep/fit_ranking.py ...`")
        print(f"stored the ranking in {args.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
