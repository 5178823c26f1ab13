"""`llm4ms search`: rank library spectra for each query spectrum."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search query spectra against a library",
                       description="Embed the query spectra and return the top-k library hits per query.")
    p.add_argument("--query", required=True, help="query spectra file (MSP, MGF, CSV/TXT, JCAMP-DX; .gz ok)")
    p.add_argument("--library", help="library folder (default: the bundled library)")
    p.add_argument("--model", help="model folder or Hub id (default: the model the library was built with)")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=10, help="hits per query")
    p.add_argument("--out", help="write hits to .csv, .tsv or .json (default: a table on stdout)")
    p.add_argument("--mass-tolerance", type=float,
                   help="only hits whose molecular mass is within this many Da of the query's mass")
    p.add_argument("--mass", type=float, help="query molecular mass for the filter (else from query metadata)")
    p.add_argument("--min-score", type=float, help="drop hits scoring below this cosine")
    p.add_argument("--rerank", choices=("cosine_sqrt", "wcs"),
                   help="re-score the top --rerank-depth embedding candidates with this classic similarity "
                        "(scores are then that similarity)")
    p.add_argument("--rerank-depth", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--skip-invalid", action="store_true", help="skip unreadable query records (counted)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import open_library
    from llm4ms.errors import ConfigError
    from llm4ms.io import ReadReport, read_spectra
    from llm4ms.report import format_hit_table, write_hits

    if args.k < 1:
        raise ConfigError("-k must be at least 1")
    if args.mass is not None and args.mass_tolerance is None:
        raise ConfigError("--mass needs --mass-tolerance")
    report = ReadReport(path=args.query)
    queries = list(read_spectra(args.query, skip_invalid=args.skip_invalid, report=report))
    if not queries:
        raise ConfigError(f"{args.query}: no spectra to search")
    library, encoder = open_library(args.library, args.model)
    masses = [args.mass] * len(queries) if args.mass is not None else None
    results = library.search(queries, k=args.k, encoder=encoder, mass_tolerance=args.mass_tolerance,
                             query_masses=masses, min_score=args.min_score, batch_size=args.batch_size,
                             rerank=args.rerank, rerank_depth=args.rerank_depth)
    if report.skipped:
        print(f"{report.skipped} invalid query records skipped", file=sys.stderr)
    if args.out:
        rows = write_hits(results, args.out)
        print(f"{rows} hits for {len(queries)} queries written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(format_hit_table(results))
    return 0
