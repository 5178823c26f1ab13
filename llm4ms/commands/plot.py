"""`llm4ms plot`: mirror plot of one query spectrum against one of its library hits."""
from __future__ import annotations

import argparse
import sys
from itertools import islice
from typing import Any, Optional

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="mirror plot of a query against one of its hits",
                       description="Search one query spectrum, take the hit at --hit RANK and save a mirror "
                                   "(head-to-tail) plot: query up, library spectrum down, matched peaks coloured.")
    p.add_argument("--query", required=True, help="query spectra file (MSP, MGF, CSV/TXT, JCAMP-DX; .gz ok)")
    p.add_argument("--index", type=int, default=1, help="which spectrum of the query file (1-based, default 1)")
    p.add_argument("--library", help="library folder (default: the bundled library)")
    p.add_argument("--hit", type=int, default=1, help="rank of the hit to plot (1 = best)")
    p.add_argument("--model", help="model folder, Hub id, or a bundled model (ei, msms) (default: the model the library was built with)")
    p.add_argument("-k", "--top-k", dest="k", type=int, help="hits to search (default: max(10, --hit))")
    p.add_argument("--mass-tolerance", type=float, help="molecular-mass filter half-width (Da)")
    p.add_argument("--mass", type=float, help="query molecular mass for the filter (else the query's recorded mass, "
                                              "else computed from its FORMULA or SMILES)")
    p.add_argument("--tolerance", type=float, default=0.5, help="m/z tolerance for matched peaks (default 0.5)")
    p.add_argument("--labels", type=int, default=10, help="label the m/z of this many top peaks per side")
    p.add_argument("--out", required=True, help="output image: .png or .svg")
    p.set_defaults(func=run)


def read_query(path: str, index: int) -> Spectrum:
    """The `index`-th (1-based) spectrum of a file, reading no further than needed."""
    from llm4ms.io import read_spectra

    if index < 1:
        raise ConfigError("--index is 1-based and must be at least 1")
    found = list(islice(read_spectra(path), index - 1, index))
    if not found:
        raise ConfigError(f"{path}: has fewer than {index} spectra (--index {index})")
    return found[0]


def hit_at(library: Any, query: Spectrum, rank: int, k: Optional[int] = None, encoder: Any = None,
           mass_tolerance: Optional[float] = None, mass: Optional[float] = None):
    """Search `query` and return its hit at `rank` (1-based)."""
    if rank < 1:
        raise ConfigError("--hit is a rank and must be at least 1")
    k = k if k is not None else max(10, rank)
    if k < rank:
        raise ConfigError(f"-k {k} is smaller than --hit {rank}")
    from llm4ms.query_checks import CLI_NAMES, check_search_settings

    check_search_settings(k, mass=mass, mass_tolerance=mass_tolerance, names=CLI_NAMES)
    hits = library.search([query], k=k, encoder=encoder, mass_tolerance=mass_tolerance,
                          query_masses=[mass] if mass is not None else None)[0]
    if len(hits) < rank:
        raise ConfigError(f"the query has only {len(hits)} hits; cannot plot hit {rank}")
    return hits[rank - 1]


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import open_library
    from llm4ms.plot import PLOT_FORMATS, save_mirror

    if not args.out.lower().endswith(PLOT_FORMATS):
        raise ConfigError(f"{args.out}: --out must end in .png or .svg")
    query = read_query(args.query, args.index)
    if args.mass_tolerance is not None:
        import logging

        from llm4ms.commands.search import mass_note

        logging.getLogger(__name__).info("%s", mass_note([query], args.mass, args.mass_tolerance))
    library, encoder = open_library(args.library, args.model)
    hit = hit_at(library, query, args.hit, k=args.k, encoder=encoder, mass_tolerance=args.mass_tolerance,
                 mass=args.mass)
    reference = library.spectrum(hit.library_index)
    save_mirror(query, reference, args.out, tolerance=args.tolerance, top_labels=args.labels, score=hit.score,
                labels=[query.name or query.id or f"query {args.index}",
                        f"#{hit.rank} {hit.name or hit.id or hit.library_index}"])
    print(f"hit {hit.rank}: {hit.name or hit.id} (score {hit.score:.4f}); mirror plot written to {args.out}",
          file=sys.stderr)
    return 0
