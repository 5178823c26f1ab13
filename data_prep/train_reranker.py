"""Train the learned re-ranker (`llm4ms.reranker`) behind a model's fused ranking.

1. The fingerprint model (`llm4ms.fingerprint_model`) on measured TRAIN-split spectra (MassBank EI nominal set),
   pretrained first on `--fp-pretrain-spectra` (predicted spectra of other TRAIN-split structures,
   `data_prep/pick_pretraining_molecules.py` + ``llm4ms predict``) when given, unless `--fingerprint-model DIR`
   gives one; then the structure matcher (`llm4ms.structure_matcher`) on the same spectra, unless
   `--structure-matcher DIR` gives one.
2. Lists: the VALIDATION in-silico queries searched with the model's ranking (without a re-ranker) against each
   `--libraries` file; the top `--top` of each list become rows with the features inference computes.
3. K-fold cross-validation by query (folds share no query) reports R@1 / R@10 of the fused ranking and of the
   re-ranked lists (the held-out estimate: the final model is fit on every list, so the validation split cannot
   judge it afterwards); then the model is fit on all lists and written to `--out`.

    python data_prep/train_reranker.py --out llm4ms/resources/reranker \\
        --queries work_data/benchmark/insilico_validation/queries.msp \\
        --libraries work_data/benchmark/insilico_validation/library_10k.msp

The test split is never read.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MASSBANK_EI = ("massbank_ei", "massbank_ei_nominal.msp")


def candidate_lists(encoder, ranking, queries, library, top: int, fingerprint_model, structure_matcher=None):
    """(features (n, top, F), labels (n, top)) of the ranking's lists, computed as `llm4ms.ranking.rerank_lists`
    computes them at search time (same fused scores, embedding and classic scores, candidates)."""
    from llm4ms.evaluate.embedding_scorer import EncoderScorer
    from llm4ms.ranking import classic_from_spectra
    from llm4ms.reranker import FEATURE_NAMES, Reranker

    scorer = EncoderScorer(encoder=encoder, ranking=ranking).fit(library)
    idx, fused = scorer.search(queries, k=top)
    q = scorer._encode(queries)
    classic_fn = classic_from_spectra(ranking.classic, library)
    helper = Reranker(None, fingerprint_model, top, structure_matcher=structure_matcher)
    evidence = helper.query_evidence(queries)
    keys = np.array([s.inchikey14 or "" for s in library])
    masses = np.array([np.nan if s.molecular_mass is None else s.molecular_mass for s in library])
    features = np.full((len(queries), top, len(FEATURE_NAMES)), np.nan)
    labels = np.zeros((len(queries), top), dtype=int)
    for row, query in enumerate(queries):
        head = idx[row][idx[row] >= 0][:top]
        cands = [library[int(i)] for i in head]
        features[row, :head.size] = helper.features(
            query, ranking, fused[row, :head.size], scorer._library[head] @ q[row], classic_fn(query, head),
            cands, masses[head], evidence[row])
        labels[row, :head.size] = keys[head] == query.inchikey14
    return features, labels


def train_split(spectra) -> list:
    """The spectra of TRAIN-split compounds that have a SMILES (the fingerprint network never sees others)."""
    from llm4ms.data.split import compound_split

    return [s for s in spectra if s.inchikey14 and s.smiles and compound_split(s.inchikey14) == "train"]


def structure_training_data(args) -> tuple[list, list, dict]:
    """(measured TRAIN spectra, predicted TRAIN spectra for pretraining, info) for the two structure models."""
    from llm4ms.data.shared import portable_path, shared_path
    from llm4ms.io import read_spectra

    source = args.spectra or shared_path(*MASSBANK_EI)
    spectra = train_split(read_spectra(source))
    pretrain = train_split(read_spectra(args.fp_pretrain_spectra)) if args.fp_pretrain_spectra else []
    info = {"data": f"{portable_path(source)}: {len(spectra)} TRAIN-split spectra",
            "split": "compound_split (InChIKey first block) == train",
            "licence_note": "trained on MassBank EI records (mostly CC BY-NC-SA): treat as CC BY-NC-SA derived"}
    if pretrain:
        info["pretraining"] = (f"{portable_path(args.fp_pretrain_spectra)}: {len(pretrain)} predicted spectra of "
                               "TRAIN-split structures")
    return spectra, pretrain, info


def fingerprint_for(args, t0: float):
    """The fingerprint network: loaded from --fingerprint-model, else trained (pretrained first when asked)."""
    from llm4ms.fingerprint_model import (DEFAULT_EPOCHS, DEFAULT_PRETRAIN_EPOCHS, FingerprintModel,
                                          train_fingerprint_model)

    if args.fingerprint_model:
        return FingerprintModel.load(args.fingerprint_model)
    spectra, pretrain, info = structure_training_data(args)
    model = train_fingerprint_model(
        spectra, epochs=DEFAULT_EPOCHS if args.fp_epochs is None else args.fp_epochs, seed=args.seed, info=info,
        pretrain=pretrain,
        pretrain_epochs=DEFAULT_PRETRAIN_EPOCHS if args.fp_pretrain_epochs is None else args.fp_pretrain_epochs)
    print(f"fingerprint model: {len(spectra)} TRAIN spectra, {len(pretrain)} predicted for pretraining, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return model


def matcher_for(args, fingerprint_model, t0: float):
    """The structure matcher: loaded from --structure-matcher, else trained on the fingerprint network's data."""
    from llm4ms.structure_matcher import (DEFAULT_EPOCHS, DEFAULT_PRETRAIN_EPOCHS, MatcherConfig, StructureMatcher,
                                          train_structure_matcher)

    if args.structure_matcher:
        return StructureMatcher.load(args.structure_matcher)
    spectra, pretrain, info = structure_training_data(args)
    epochs = DEFAULT_PRETRAIN_EPOCHS if args.sm_pretrain_epochs is None else args.sm_pretrain_epochs
    if not epochs:
        pretrain = []
        info.pop("pretraining", None)
    matcher = train_structure_matcher(
        spectra, MatcherConfig(fingerprint=fingerprint_model.config),
        epochs=DEFAULT_EPOCHS if args.sm_epochs is None else args.sm_epochs, seed=args.seed, info=info,
        pretrain=pretrain, pretrain_epochs=epochs)
    print(f"structure matcher: {len(spectra)} TRAIN spectra, {len(pretrain)} predicted for pretraining, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return matcher


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="re-ranker folder to write")
    parser.add_argument("--model", default="llm4ms/resources/model", help="the encoder whose ranking it follows")
    parser.add_argument("--queries", type=Path, required=True, help="VALIDATION queries (measured, with InChIKey)")
    parser.add_argument("--libraries", type=Path, nargs="+", required=True, help="VALIDATION in-silico libraries")
    parser.add_argument("--fingerprint-model", type=Path, default=None, help="reuse a trained fingerprint model")
    parser.add_argument("--spectra", type=Path, default=None, help="measured spectra for the fingerprint model "
                                                                   "(default: shared MassBank EI); TRAIN split only")
    parser.add_argument("--fp-epochs", type=int, default=None,
                        help="fingerprint network epochs (default: llm4ms.fingerprint_model.DEFAULT_EPOCHS)")
    parser.add_argument("--fp-pretrain-spectra", type=Path, default=None,
                        help="predicted spectra (llm4ms predict) of other structures to pretrain the fingerprint "
                             "network on first (data_prep/pick_pretraining_molecules.py); TRAIN split only")
    parser.add_argument("--fp-pretrain-epochs", type=int, default=None,
                        help="epochs over them (default: llm4ms.fingerprint_model.DEFAULT_PRETRAIN_EPOCHS)")
    parser.add_argument("--structure-matcher", type=Path, default=None, help="reuse a trained structure matcher")
    parser.add_argument("--sm-epochs", type=int, default=None,
                        help="structure matcher epochs (default: llm4ms.structure_matcher.DEFAULT_EPOCHS)")
    parser.add_argument("--sm-pretrain-epochs", type=int, default=None,
                        help="its epochs over --fp-pretrain-spectra first (default: "
                             "llm4ms.structure_matcher.DEFAULT_PRETRAIN_EPOCHS)")
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--leaves", type=int, default=7)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--min-child-samples", type=int, default=50)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lists-cache", type=Path, default=None,
                        help="npz of the lists' features and labels: written once, reused when it exists "
                             "(to compare booster settings on the same lists)")
    parser.add_argument("--ablate", default="",
                        help="comma list of feature-name prefixes to blank (NaN) before fitting: the ablation rows "
                             "of benchmarks/RESULTS.md (e.g. fp_,prediction_confidence)")
    parser.add_argument("--write", action="store_true",
                        help="store the re-ranker in --model's ranking (\"bundled\" when --out is the package's)")
    args = parser.parse_args(argv)

    from llm4ms.data.shared import portable_path
    from llm4ms.data.split import compound_split
    from llm4ms.io import read_spectra
    from llm4ms.metrics import list_recall
    from llm4ms.model import SpectrumEncoder
    from llm4ms.ranking import model_ranking
    from llm4ms.reranker import FEATURE_NAMES, train_reranker

    t0 = time.perf_counter()
    fingerprint_model = fingerprint_for(args, t0)
    structure_matcher = matcher_for(args, fingerprint_model, t0)
    encoder = SpectrumEncoder.from_pretrained(args.model)
    ranking = replace(model_ranking(encoder), reranker="")
    queries = [q for q in read_spectra(args.queries) if q.inchikey14]
    if any(compound_split(q.inchikey14) == "test" for q in queries):
        from llm4ms.errors import ConfigError

        raise ConfigError(f"{args.queries}: holds test-split compounds; the re-ranker is fit on validation only")
    if args.lists_cache and args.lists_cache.exists():
        cached = np.load(args.lists_cache)
        features, labels = cached["features"], cached["labels"]
    else:
        blocks = [candidate_lists(encoder, ranking, queries, list(read_spectra(lib)), args.top, fingerprint_model,
                                  structure_matcher) for lib in args.libraries]
        features = np.concatenate([f for f, _ in blocks])
        labels = np.concatenate([lab for _, lab in blocks])
        if args.lists_cache:
            np.savez(args.lists_cache, features=features, labels=labels)
    if len(labels) != len(queries) * len(args.libraries) or features.shape[1:] != (args.top, len(FEATURE_NAMES)):
        from llm4ms.errors import ConfigError

        raise ConfigError(f"{args.lists_cache}: lists of another query set, library list, top or feature set")
    query_id = np.tile(np.arange(len(queries)), len(args.libraries))
    ablated = [i for i, name in enumerate(FEATURE_NAMES)
               if any(name.startswith(prefix) for prefix in filter(None, args.ablate.split(",")))]
    if ablated:
        if args.write:
            from llm4ms.errors import ConfigError

            raise ConfigError("--ablate is for measuring; it cannot --write a model's ranking")
        features = features.copy()
        features[..., ablated] = np.nan
        print(f"ablated: {', '.join(FEATURE_NAMES[i] for i in ablated)}", flush=True)
    print(f"lists: {len(labels)} ({len(queries)} queries x {len(args.libraries)} libraries), "
          f"{time.perf_counter() - t0:.0f} s", flush=True)

    settings = dict(trees=args.trees, leaves=args.leaves, learning_rate=args.learning_rate,
                    min_child_samples=args.min_child_samples, seed=args.seed)
    fold = np.random.default_rng(args.seed).permutation(len(queries))[query_id] % args.folds
    held_scores = np.zeros(labels.shape)
    for f in range(args.folds):
        model = train_reranker(features[fold != f], labels[fold != f], fingerprint_model, args.top, **settings,
                               structure_matcher=structure_matcher)
        held = fold == f
        held_scores[held] = model.rescore(features[held].reshape(-1, features.shape[2])).reshape(-1, args.top)
    fused_order = -np.arange(args.top, dtype=float)[None, :].repeat(len(labels), 0)
    cv = {}
    for b, lib in enumerate(args.libraries):
        rows = slice(b * len(queries), (b + 1) * len(queries))
        cv[portable_path(lib)] = {"fused ranking": list_recall(fused_order[rows], labels[rows]),
                                  "re-ranked (held-out folds)": list_recall(held_scores[rows], labels[rows])}
        print(f"{lib.name}: fused {cv[portable_path(lib)]['fused ranking']}, re-ranked "
              f"{cv[portable_path(lib)]['re-ranked (held-out folds)']} ({args.folds}-fold CV by query)", flush=True)

    info = {"queries": f"{portable_path(args.queries)}: {len(queries)} VALIDATION queries",
            "libraries": [portable_path(lib) for lib in args.libraries], "behind_ranking": ranking.describe(),
            "model": str(args.model), "cross_validation": cv,
            "command": "python data_prep/train_reranker.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    reranker = train_reranker(features, labels, fingerprint_model, args.top, info=info, **settings,
                              structure_matcher=structure_matcher)
    reranker.save(args.out)
    print(f"{args.out}: {json.dumps(cv)} ({time.perf_counter() - t0:.0f} s)")
    if args.write:
        from llm4ms.ranking import store_ranking
        from llm4ms.reranker import BUNDLED_RERANKER

        bundled = args.out.resolve() == BUNDLED_RERANKER.resolve()
        figures = "; ".join(f"{lib}: fused R@1 {r['fused ranking']['R@1']} -> re-ranked R@1 "
                            f"{r['re-ranked (held-out folds)']['R@1']}, R@10 {r['fused ranking']['R@10']} -> "
                            f"{r['re-ranked (held-out folds)']['R@10']}" for lib, r in cv.items())
        shipped = replace(ranking, reranker="bundled" if bundled else str(args.out))
        store_ranking(encoder, args.model, shipped, "validation re-ranker (5-fold CV by query)", figures)
        print(f"{args.model}: ranking now {shipped.describe()}")
    return 0


if __name__ == "__main__":
    from llm4ms.errors import Llm4msError

    try:
        sys.exit(main())
    except Llm4msError as err:
        sys.exit(f"train_reranker: error: {err}")
