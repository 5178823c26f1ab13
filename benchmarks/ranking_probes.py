"""Probes of the EI ranking on the VALIDATION split: how much the molecular mass is worth, where the molecular-ion
model helps or hurts (per contributor), and what a learned re-ranker could add.

    python benchmarks/ranking_probes.py [--size 10k] [--model llm4ms/resources/model]

Exhaustive score matrices (embedding, sqrt cosine, entropy, cosine, WCS; the hand penalty and the molecular-ion
log-odds) of the validation in-silico queries against the library are computed once, then:

1. mass oracle: R@1 / R@10 when only candidates within 0.5 Da of the true molecular mass are kept;
2. per contributor (first author + instrument type, groups of >= 15 queries): sqrt cosine, + hand prior,
   + hand prior + molecular-ion model, and the model's default ranking (exhaustive);
3. a learned re-ranker over the default ranking's top 50 (LightGBM LambdaRank; features: each score and its
   difference to the query's best, rank, prediction confidence), 5-fold cross-validated by query: the first probe
   of what became `llm4ms.reranker` (trained by data_prep/train_reranker.py, which adds the structure view).

Prints markdown and writes benchmarks/results/ranking_probes_validation_<size>.json. Never reads the test split.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench import run_main, write_results  # noqa: E402

TOP = 50
RERANKER_SETTINGS = ({"n_estimators": 100, "num_leaves": 7, "learning_rate": 0.05, "min_child_samples": 50},
                     {"n_estimators": 200, "num_leaves": 15, "learning_rate": 0.05, "min_child_samples": 20})


def recall(scores: np.ndarray, hits: np.ndarray) -> dict[str, float]:
    true = np.where(hits, scores, -np.inf).max(axis=1)
    rank = (scores > true[:, None]).sum(axis=1)
    return {"R@1": round(100 * float(np.mean(rank < 1)), 1), "R@10": round(100 * float(np.mean(rank < 10)), 1)}


def contributor(query) -> str:
    authors = str(query.metadata.get("authors") or "unknown").split(",")[0].strip()
    return f"{authors}, {query.metadata.get('instrument_type') or '?'}"


def reranker_cv(features: np.ndarray, labels: np.ndarray, settings: dict, folds: int = 5) -> dict[str, float]:
    import lightgbm

    n, top, width = features.shape
    fold = np.random.default_rng(0).permutation(n) % folds
    scores = np.zeros((n, top))
    for f in range(folds):
        train, held = fold != f, fold == f
        model = lightgbm.LGBMRanker(verbose=-1, n_jobs=2, random_state=0, **settings)
        model.fit(features[train].reshape(-1, width), labels[train].ravel(), group=[top] * int(train.sum()))
        scores[held] = model.predict(features[held].reshape(-1, width)).reshape(-1, top)
    from llm4ms.metrics import list_recall

    return list_recall(scores, labels)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10k")
    parser.add_argument("--model", default="llm4ms/resources/model")
    parser.add_argument("--data", type=Path, default=Path("work_data/benchmark"))
    args = parser.parse_args(argv)

    from dataclasses import replace

    from llm4ms.errors import ConfigError
    from llm4ms.io import read_spectra
    from llm4ms.model import SpectrumEncoder
    from llm4ms.molecular_ion import load_ion_model
    from llm4ms.ranking import MassPrior, model_ranking
    from llm4ms.similarity.named import score_matrix

    folder = args.data / "insilico_validation"
    if not (folder / f"library_{args.size}.msp").exists():
        raise ConfigError(f"{folder}/library_{args.size}.msp missing: python data_prep/build_benchmark.py all "
                          f"--split validation --sizes {args.size}")
    queries = [q for q in read_spectra(folder / "queries.msp") if q.inchikey14]
    library = list(read_spectra(folder / f"library_{args.size}.msp"))
    encoder = SpectrumEncoder.from_pretrained(args.model)
    ranking = model_ranking(encoder)
    emb = encoder.encode(queries, batch_size=256) @ encoder.encode(library, batch_size=256).T
    mats = {name: score_matrix(name, queries, library) for name in ("cosine_sqrt", "entropy", "cosine", "wcs")}
    keys = np.array([s.inchikey14 or "" for s in library])
    hits = np.stack([keys == q.inchikey14 for q in queries])
    masses = np.array([np.nan if s.molecular_mass is None else s.molecular_mass for s in library])
    confidence = np.array([float(s.metadata.get("prediction_confidence") or np.nan) for s in library])
    hand_form = replace(ranking.prior, ion_weight=0.0, weight=1.0)
    hand = np.stack([hand_form.penalties(q, masses) for q in queries])
    ion = load_ion_model(ranking.prior.ion_model)
    log_odds = np.stack([ion.log_odds(q, masses) for q in queries])
    sqrt = mats["cosine_sqrt"]
    hand_only = MassPrior(0.5, 2.5, 0.005)  # the previous default's hand prior (RESULTS §0d)
    hand_penalty = np.stack([hand_only.penalties(q, masses) for q in queries])
    default = (ranking.fusion * emb + (1 - ranking.fusion) * sqrt - ranking.prior.weight * hand
               + ranking.prior.ion_weight * log_odds)
    result: dict = {"queries": len(queries), "library": len(library), "ranking": ranking.describe()}

    true_mass = np.array([np.nan if q.molecular_mass is None else q.molecular_mass for q in queries])
    off_mass = np.abs(masses[None, :] - true_mass[:, None]) > 0.5
    result["mass_oracle"] = {"sqrt cosine": recall(sqrt, hits), "sqrt cosine, true mass +-0.5 Da":
                             recall(sqrt - 10 * off_mass, hits), "default": recall(default, hits),
                             "default, true mass +-0.5 Da": recall(default - 10 * off_mass, hits)}

    columns = {"sqrt cosine": sqrt, "+ hand prior": sqrt - hand_penalty,
               "+ the default prior (hand + ion model)": sqrt - ranking.prior.weight * hand
               + ranking.prior.ion_weight * log_odds,
               "default ranking": default}
    ranks = {name: (m > np.where(hits, m, -np.inf).max(1)[:, None]).sum(1) for name, m in columns.items()}
    groups = collections.defaultdict(list)
    for i, q in enumerate(queries):
        groups[contributor(q)].append(i)
    big = {g: idx for g, idx in groups.items() if len(idx) >= 15}
    big["others (< 15 each)"] = [i for g, idx in groups.items() if len(idx) < 15 for i in idx]
    result["per_contributor_R@1"] = {g: {"n": len(idx), **{c: round(100 * float(np.mean(r[idx] < 1)), 1)
                                                           for c, r in ranks.items()}}
                                     for g, idx in sorted(big.items(), key=lambda t: -len(t[1]))}

    top = np.argsort(-default, axis=1, kind="stable")[:, :TOP]
    feats = []
    for matrix in (default, emb, sqrt, mats["entropy"], mats["cosine"], mats["wcs"], log_odds, hand):
        picked = np.take_along_axis(matrix, top, axis=1)
        feats += [picked, picked - picked.max(axis=1, keepdims=True)]
    feats += [np.broadcast_to(np.arange(TOP, dtype=float), top.shape), np.nan_to_num(confidence[top], nan=-1.0)]
    features, labels = np.stack(feats, axis=2), np.take_along_axis(hits, top, axis=1).astype(int)
    no_entropy = np.delete(features, [6, 7], axis=2)  # entropy needs the optional ms-entropy: a core-only variant
    result["reranker_cv"] = {"default ranking (top 50)": recall(default, hits),
                             **{f"LambdaRank {s['n_estimators']} trees x {s['num_leaves']} leaves":
                                reranker_cv(features, labels, s) for s in RERANKER_SETTINGS},
                             **{f"LambdaRank {s['n_estimators']} trees x {s['num_leaves']} leaves, no entropy":
                                reranker_cv(no_entropy, labels, s) for s in RERANKER_SETTINGS}}

    lines = [f"validation {args.size}: {len(queries)} queries, {len(library)} library spectra; {ranking.describe()}",
             "", "| probe | R@1 | R@10 |", "|---|---:|---:|"]
    for section in ("mass_oracle", "reranker_cv"):
        lines += [f"| {section}: {name} | {r['R@1']} | {r['R@10']} |" for name, r in result[section].items()]
    lines += ["", "| contributor, instrument | n | " + " | ".join(columns) + " |",
              "|---|---:|" + "---:|" * len(columns)]
    lines += [f"| {g} | {row['n']} | " + " | ".join(str(row[c]) for c in columns) + " |"
              for g, row in result["per_contributor_R@1"].items()]
    print("\n".join(lines))
    command = "python benchmarks/ranking_probes.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result["command"] = command.strip()
    write_results(Path(__file__).resolve().parent / "results", f"ranking_probes_validation_{args.size}", result,
                  "\n".join(lines), f"Command: `{command.strip()}`")
    return 0


if __name__ == "__main__":
    run_main(main, "ranking_probes")
