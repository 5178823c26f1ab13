"""Recall@k of every method on a benchmark built by data_prep/build_benchmark.py.

    python benchmarks/recall.py --benchmark measured                      # MassBank test split
    python benchmarks/recall.py --benchmark measured --split all          # whole nominal set
    python benchmarks/recall.py --benchmark insilico --size 10k --methods llm4ms,wcs --model MODEL

Prints a markdown table and writes benchmarks/results/recall_<name>.json and .md, where <name> is
<benchmark>_<split>[_<size>]. Missing benchmark files are built first (all but prediction).
Identity = InChIKey first block; each method also runs with a +-0.5 Da molecular-mass filter. Every recall comes
with its 95 % interval, and every method is compared query by query with --reference (paired margin, its interval
and McNemar's p; `llm4ms.evaluate.uncertainty`); the JSON keeps each method's per-query ranks.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm4ms.data.shared import portable_path  # noqa: E402
from llm4ms.evaluate.loading import load_spectra  # noqa: E402
from llm4ms.evaluate.runner import evaluate, markdown_table  # noqa: E402
from _bench import run_main, write_results  # noqa: E402

CLASSIC = "cosine,cosine_sqrt,wcs,composite,spec2vec,entropy"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", choices=("measured", "insilico"), default="measured")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test", "all"))
    parser.add_argument("--size", default="10k", help="in-silico library size (10k, 100k, 1m)")
    parser.add_argument("--methods", default=CLASSIC)
    parser.add_argument("--model", help="encoder for method llm4ms (default: the bundled model)")
    parser.add_argument("--predictor", help="EIPredictor folder for building the in-silico library")
    parser.add_argument("--predictor-references", default=None,
                        help="reference spectra the predictor mixes in: 'train' (the TRAIN split) or a spectrum file")
    parser.add_argument("--data", default=str(ROOT / "work_data" / "benchmark"))
    parser.add_argument("--mass-tolerance", type=float, default=0.5)
    parser.add_argument("--spec2vec-iterations", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OMP threads (shared machine)")
    parser.add_argument("--name", help="result name (default <benchmark>_<split>[_<size>])")
    parser.add_argument("--prior", default="model", help="mass prior for every method: model, off, or W[,MARGIN[,MIN_REL]]")
    parser.add_argument("--reference", default=None,
                        help="method the others are paired with (default llm4ms when run, else the first)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass

    import importlib.util

    spec = importlib.util.spec_from_file_location("build_benchmark", ROOT / "data_prep" / "build_benchmark.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    data = Path(args.data)
    if args.benchmark == "measured":
        folder = builder.build_measured(data, args.split)
        queries_path, library_path = folder / "queries.msp", folder / "library.msp"
        name = args.name or f"measured_{args.split}"
    else:
        folder = data / f"insilico_{args.split}"
        queries_path, library_path = folder / "queries.msp", folder / f"library_{args.size}.msp"
        if not library_path.exists():
            builder.build_decoys(data, args.split, [args.size])
            builder.build_predicted(data, args.split, [args.size], predictor_path=args.predictor,
                                    references=args.predictor_references)
        if not library_path.exists():
            print(f"{library_path} missing: predicted library not built (predictor unavailable?)", file=sys.stderr)
            return 2
        name = args.name or f"insilico_{args.split}_{args.size}"

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    t0 = time.perf_counter()
    queries = load_spectra(queries_path)
    library = load_spectra(library_path)
    load_seconds = time.perf_counter() - t0
    if args.model is None and {"llm4ms", "llm4ms_embedding"} & set(methods):
        from llm4ms.defaults import default_model_path

        args.model = str(default_model_path())
    options = {"spec2vec": {"iterations": args.spec2vec_iterations}, "llm4ms": {"model": args.model},
               "llm4ms_embedding": {"model": args.model}}
    from llm4ms.ranking import model_ranking, parse_prior

    model_prior = None
    if args.model and args.prior == "model":
        from llm4ms.model import SpectrumEncoder

        model_prior = model_ranking(SpectrumEncoder.from_pretrained(args.model)).prior
    result = evaluate(queries, library, methods, mass_tolerance=args.mass_tolerance,
                      method_options=options, name=name, prior=parse_prior(args.prior, model_prior),
                      reference=args.reference)
    result["settings"].update({"queries_path": portable_path(queries_path), "library_path": portable_path(library_path),
                               "load_seconds": load_seconds, "threads": args.threads,
                               "command": " ".join(["python", "benchmarks/recall.py"] + sys.argv[1:])})
    table = markdown_table(result)
    print(table)
    write_results(ROOT / "benchmarks" / "results", f"recall_{name}", result, table,
                  f"Command: `{result['settings']['command']}`")
    return 0


if __name__ == "__main__":
    run_main(main, "recall.py")
