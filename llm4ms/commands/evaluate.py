"""`llm4ms evaluate`: Recall@k of several search methods on the same queries and library."""
from __future__ import annotations

import argparse

from llm4ms.errors import ConfigError

DEFAULT_METHODS = "cosine,wcs,composite,spec2vec,entropy"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="compare search methods by Recall@k (InChIKey first block)",
        description="Search every query against the library with each method and report Recall@k. "
                    "Queries and library spectra need InChIKeys.")
    parser.add_argument("--queries", required=True, help="query spectra (MSP, MGF, ...)")
    parser.add_argument("--library", required=True,
                        help="library spectra file, or a library folder built by `llm4ms embed`")
    parser.add_argument("--methods", default=DEFAULT_METHODS,
                        help="comma-separated: llm4ms, cosine, cosine_sqrt, wcs, composite, spec2vec, entropy "
                             f"(default {DEFAULT_METHODS})")
    parser.add_argument("--model", help="encoder folder or Hub id (needed for method llm4ms)")
    parser.add_argument("--k", default="1,5,10,100", help="comma-separated k values (default 1,5,10,100)")
    parser.add_argument("--mass-tolerance", type=float, default=None,
                        help="also report results restricted to library spectra within this many Da of the "
                             "query's molecular mass (e.g. 0.5)")
    parser.add_argument("--spec2vec-iterations", type=int, default=10,
                        help="Word2Vec epochs when spec2vec trains on the library (default 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="encoder batch size (llm4ms)")
    parser.add_argument("--out", help="write the full result as JSON here")
    parser.set_defaults(func=run)


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as err:
        raise ConfigError(f"--k must be comma-separated integers, got {text!r}") from err
    if not ks or ks[0] < 1:
        raise ConfigError(f"--k values must be >= 1, got {text!r}")
    return ks


def run(args: argparse.Namespace) -> int:
    from llm4ms.evaluate.loading import load_spectra
    from llm4ms.evaluate.runner import evaluate, markdown_table
    from llm4ms.evaluate.scorers import available_scorers
    from llm4ms.utils import write_json

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in available_scorers()]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(available_scorers())}")
    if "llm4ms" in methods and not args.model:
        raise ConfigError("method llm4ms needs --model PATH")
    if args.mass_tolerance is not None and args.mass_tolerance < 0:
        raise ConfigError("--mass-tolerance must be >= 0")
    ks = _parse_ks(args.k)
    queries = load_spectra(args.queries)
    library = load_spectra(args.library)
    if not queries:
        raise ConfigError(f"{args.queries}: no spectra")
    if not library:
        raise ConfigError(f"{args.library}: no spectra")
    if not any(q.inchikey for q in queries):
        raise ConfigError(f"{args.queries}: no query has an InChIKey, so recall cannot be computed")
    options = {"spec2vec": {"iterations": args.spec2vec_iterations},
               "llm4ms": {"model": args.model, "batch_size": args.batch_size}}
    result = evaluate(queries, library, methods, ks=ks, mass_tolerance=args.mass_tolerance,
                      method_options=options, name=f"{args.queries} vs {args.library}")
    result["settings"]["queries_path"] = str(args.queries)
    result["settings"]["library_path"] = str(args.library)
    print(markdown_table(result), end="")
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    return 0
