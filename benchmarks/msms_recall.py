"""MS/MS library search on MassBank, split by compound: Recall@1/5/10 with and without a precursor window.

    python benchmarks/msms_recall.py --checkout /path/MassBank-data --sets work_data/msms/all --split validation \\
        --methods cosine_hr,modified_cosine,entropy_hr,spec2vec_hr [--model MODEL_DIR] [--max-queries N] \\
        [--precursor-tolerance 10ppm]

One command from a MassBank-data checkout to the table: when SETS has no summary.json, the sets are built first
(`data_prep/build_msms_sets.py CHECKOUT SETS --clean`: MS2 records with a structure, cleaned with `clean_msms`,
split by compound). Then, per ion mode (`llm4ms.evaluate.msms`): queries = one spectrum per compound of SPLIT
(compounds with at least two spectra of that mode, seeded draw), library = every other spectrum of that mode
from all three splits. Each method searches the whole library (open search) and, again, only the library
spectra whose precursor m/z lies within the tolerance of the query's (identity search). Identity = InChIKey
first block. The isomer subset: queries whose library holds another compound with the same formula.

Prints a markdown table (a block per ion mode and one for all queries) and writes
benchmarks/results/msms_recall_<split>[_<N>q].json and .md. Methods: any registered scorer
(`llm4ms.evaluate.available_scorers()`); ``llm4ms`` / ``llm4ms_embedding`` take --model, ``ms2deepscore``
--ms2deepscore-model. Never run it on the test split while choosing methods or settings.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm4ms.data.shared import portable_path  # noqa: E402
from llm4ms.errors import ConfigError  # noqa: E402
from _bench import run_main, write_results  # noqa: E402

CLASSIC = "cosine_hr,modified_cosine,entropy_hr,spec2vec_hr"
KS = (1, 5, 10)


def build_sets(checkout: Path, sets: Path) -> dict:
    """Build SETS from CHECKOUT with data_prep/build_msms_sets.py (cleaned, all licences) unless already there."""
    import json

    if (sets / "summary.json").is_file():
        return json.loads((sets / "summary.json").read_text(encoding="utf-8"))
    if checkout is None:
        raise ConfigError(f"{sets}: no summary.json; pass --checkout MassBank-data to build the sets")
    spec = importlib.util.spec_from_file_location("build_msms_sets", ROOT / "data_prep" / "build_msms_sets.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    logging.getLogger(__name__).info("building %s from %s", sets, checkout)
    return builder.build(Path(checkout), Path(sets), permissive_only=False, clean=True)


def combine(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Recall over the queries of every ion mode: each mode's recall weighted by its number of queries."""
    keys = ("recall", "recall_precursor_window", "recall_isomer_subset", "recall_precursor_window_isomer_subset")
    out: dict[str, dict[str, Any]] = {}
    methods = {m for r in results.values() for m in r["methods"]}
    for method in sorted(methods, key=lambda m: min(list(r["methods"]).index(m) for r in results.values()
                                                   if m in r["methods"])):
        entry: dict[str, Any] = {}
        for key in keys:
            blocks = [r["methods"][method][key] for r in results.values() if key in r["methods"].get(method, {})]
            total = sum(b["n_queries"] for b in blocks)
            if not blocks or total == 0:
                continue
            entry[key] = {"n_queries": total, "n_skipped": sum(b["n_skipped"] for b in blocks)}
            for label in ("inchikey14", "inchikey"):
                entry[key][label] = {k: sum(b[label][k] * b["n_queries"] for b in blocks) / total
                                     for k in blocks[0][label]}
        entry["seconds"] = {"total": sum(sum(r["methods"][method]["seconds"].values()) for r in results.values()
                                         if method in r["methods"])}
        out[method] = entry
    return out


def table(result: Mapping[str, Any]) -> str:
    """One markdown table: a block per ion mode and one for all queries; rows = methods."""
    window = result["settings"]["precursor_tolerance"]
    header = (["method"] + [f"R@{k}" for k in KS] + [f"R@{k} ±{window}" for k in KS]
              + ["isomers R@1", f"isomers R@1 ±{window}", "seconds"])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]

    def pct(entry: Mapping[str, Any], key: str, k: int) -> str:
        block = entry.get(key)
        return f"{100 * block['inchikey14'][str(k)]:.1f}" if block else "-"

    def rows(methods: Mapping[str, Any], seconds) -> None:
        for label, entry in methods.items():
            lines.append("| " + " | ".join(
                [label] + [pct(entry, "recall", k) for k in KS]
                + [pct(entry, "recall_precursor_window", k) for k in KS]
                + [pct(entry, "recall_isomer_subset", 1), pct(entry, "recall_precursor_window_isomer_subset", 1),
                   f"{seconds(entry):.0f}"]) + " |")

    blank = [""] * (len(header) - 1)
    for mode, block in result["by_ion_mode"].items():
        counts = block["counts"]
        lines.append("| " + " | ".join([f"**{mode}**: {counts['queries']} queries, {counts['library']:,} library "
                                        f"spectra, isomer subset {counts['isomer_subset']}"] + blank) + " |")
        rows(block["methods"], lambda e: sum(e["seconds"].values()))
    n_all = sum(b["counts"]["queries"] for b in result["by_ion_mode"].values())
    n_iso = sum(b["counts"]["isomer_subset"] for b in result["by_ion_mode"].values())
    lines.append("| " + " | ".join([f"**all queries**: {n_all} queries, isomer subset {n_iso}"] + blank) + " |")
    rows(result["all_queries"], lambda e: e["seconds"]["total"])
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, help="MassBank-data checkout (needed only to build --sets)")
    parser.add_argument("--sets", type=Path, default=ROOT / "work_data" / "msms" / "all",
                        help="folder with train/validation/test.mgf + summary.json (built when missing)")
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("--methods", default=CLASSIC)
    parser.add_argument("--model", help="encoder for methods llm4ms / llm4ms_embedding: a folder or a bundled "
                                        "name (default: msms)")
    parser.add_argument("--ms2deepscore-model", help="MS2DeepScore model file for method ms2deepscore")
    parser.add_argument("--max-queries", type=int, default=None, help="query compounds per ion mode (seeded draw)")
    parser.add_argument("--precursor-tolerance", default="10ppm", help="precursor window, e.g. 10ppm or 0.01Da")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spec2vec-iterations", type=int, default=10)
    parser.add_argument("--agreement-queries", type=int, default=50,
                        help="queries (positive mode) on which the Flash open-search cosines are checked against "
                             "the matchms pair scores (0: skip)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OMP threads (shared machine)")
    parser.add_argument("--name", help="result name (default <split>[_<N>q])")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results",
                        help="folder for the .json and .md result (default benchmarks/results)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("matchms").setLevel(logging.ERROR)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass

    from llm4ms.evaluate.msms import load_msms_benchmark
    from llm4ms.evaluate.runner import evaluate, versions
    from llm4ms.evaluate.scorers import available_scorers
    from llm4ms.mass import Tolerance
    from llm4ms.query_checks import check_tolerance

    tolerance = Tolerance(*check_tolerance(args.precursor_tolerance, "--precursor-tolerance"))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in available_scorers()]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(available_scorers())}")
    if args.model is None and {"llm4ms", "llm4ms_embedding"} & set(methods):
        args.model = "msms"  # the bundled MS/MS model (a ConfigError line if this build does not ship it)
    t_start = time.perf_counter()
    summary = build_sets(args.checkout, args.sets)
    build_seconds = time.perf_counter() - t_start
    t0 = time.perf_counter()
    benchmarks = load_msms_benchmark(args.sets, split=args.split, seed=args.seed, max_queries=args.max_queries)
    load_seconds = time.perf_counter() - t0
    options = {"spec2vec": {"iterations": args.spec2vec_iterations},
               "spec2vec_hr": {"iterations": args.spec2vec_iterations},
               "llm4ms": {"model": args.model}, "llm4ms_embedding": {"model": args.model},
               "ms2deepscore": {"model_path": args.ms2deepscore_model}}
    name = args.name or (args.split + (f"_{args.max_queries}q" if args.max_queries else ""))
    by_mode: dict[str, Any] = {}
    for mode, bench in benchmarks.items():
        if not bench.queries:
            logging.getLogger(__name__).warning("%s: no queries", mode)
            continue
        result = evaluate(bench.queries, bench.library, methods, ks=KS, method_options=options,
                          name=f"MassBank MS/MS {args.split}, {mode}", prior=None, precursor_tolerance=tolerance)
        result["counts"].update({"benchmark": bench.counts})
        result.pop("versions", None)
        by_mode[mode] = result
    agreement = {}
    positive = benchmarks.get("positive")
    if args.agreement_queries > 0 and positive is not None and positive.queries:
        import numpy as np

        from llm4ms.evaluate.accurate_scorers import flash_agreement
        from llm4ms.evaluate.scorers import get_scorer

        rng = np.random.default_rng(args.seed)
        pick = sorted(rng.choice(len(positive.queries), min(args.agreement_queries, len(positive.queries)),
                                 replace=False))
        sample = [positive.queries[i] for i in pick]
        for method in ("cosine_hr", "modified_cosine"):
            if method in methods:
                scorer = get_scorer(method).fit(positive.library)
                agreement[method] = {"ion_mode": "positive", **flash_agreement(scorer, sample, seed=args.seed)}
    command = " ".join(["python", "benchmarks/msms_recall.py"] + sys.argv[1:])
    out = {"name": f"msms_recall_{name}",
           "settings": {"split": args.split, "seed": args.seed, "ks": list(KS), "methods": methods,
                        "precursor_tolerance": str(tolerance), "max_queries_per_ion_mode": args.max_queries,
                        "identity": "InChIKey first block (also full InChIKey)",
                        "sets": portable_path(args.sets), "sets_summary": summary, "threads": args.threads,
                        "build_seconds": build_seconds, "load_seconds": load_seconds,
                        "total_seconds": time.perf_counter() - t_start, "command": command},
           "flash_agreement": agreement,
           "versions": versions(),
           "by_ion_mode": by_mode,
           "all_queries": combine(by_mode)}
    text = table(out)
    print(text)
    if agreement:
        print("Flash open-search agreement with the matchms pair scores: " + "; ".join(
            f"{m}: max |diff| {a['max_abs_diff']:.4f}, pairs > 0.001 {100 * a['pairs_over_0.001']:.2f} %, "
            f"top-1 same {100 * a['top1_same']:.0f} %" for m, a in agreement.items()))
    write_results(args.out_dir, f"msms_recall_{name}", out, text,
                  f"Command: `{command}` ({out['settings']['total_seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    run_main(main, "msms_recall.py")
