"""`llm4ms search`: rank library spectra for each query spectrum."""
from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from typing import Optional, Sequence

log = logging.getLogger(__name__)

#: How `Spectrum.molecular_mass_source` values read in the command's note.
MASS_SOURCES = {"exact_mass": "its recorded exact mass", "mol_weight": "its recorded molecular weight",
                "formula": "its FORMULA", "smiles": "its SMILES (RDKit)"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search query spectra against a library",
                       description="Embed the query spectra and return the top-k library hits per query.")
    p.add_argument("--query", required=True, help="query spectra file (MSP, MGF, CSV/TXT, JCAMP-DX; .gz ok)")
    p.add_argument("--library", help="library folder (default: the bundled library)")
    p.add_argument("--model", help="model folder, Hub id, or a bundled model (ei, msms) (default: the model the library was built with)")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=10, help="hits per query")
    p.add_argument("--out", help="write hits to .csv, .tsv or .json (default: a table on stdout)")
    p.add_argument("--mass-tolerance", type=float,
                   help="only hits whose molecular mass is within this many Da of the query's mass")
    p.add_argument("--mass", type=float, help="query molecular mass for the filter (else the query's recorded exact "
                                              "mass or molecular weight, else computed from its FORMULA or SMILES)")
    p.add_argument("--min-score", type=float, help="drop hits whose (fused) score is below this")
    msms = p.add_argument_group("MS/MS", "filters for tandem spectra; without --precursor-tolerance the search is an "
                                         "analogue search (any precursor may match)")
    msms.add_argument("--precursor-tolerance", metavar="TOL",
                      help="only hits whose precursor m/z is within TOL of the query's, e.g. 10ppm or 0.01Da "
                           "(queries without a precursor m/z are not filtered)")
    msms.add_argument("--ion-mode", metavar="MODE", help="only hits measured in this ion mode: positive or negative")
    ranking = p.add_argument_group(
        "ranking", "default: the ranking fit for the model on validation data (see `llm4ms info`): the index "
                   "proposes candidates by embedding (and by the classic similarity), a fused score with that "
                   "similarity orders them, minus a molecular-ion plausibility penalty, plus the learned "
                   "molecular-ion evidence for the candidate's mass")
    ranking.add_argument("--fusion", type=float, default=None,
                         help="weight of the embedding cosine in the fused score (1 = embedding only, 0 = classic "
                              "only; default: the model's fitted value)")
    ranking.add_argument("--rerank", choices=("cosine", "cosine_sqrt", "wcs", "composite", "entropy"),
                         help="order candidates by this classic similarity alone (same as --fusion 0 with it)")
    ranking.add_argument("--rerank-depth", type=int, default=None,
                         help="embedding candidates re-scored per query (default: the model's fitted depth)")
    ranking.add_argument("--no-reranker", dest="learned", action="store_const", const=False, default=None,
                         help="skip the model's learned re-ranker (hits keep the fused score instead of its "
                              "probability)")
    ranking.add_argument("--classic-depth", type=int, default=None,
                         help="candidates also retrieved by the classic score, an exhaustive sparse product over the "
                              "library (default: the model's fitted depth; 0 = embedding retrieval only, faster on "
                              "million-spectrum libraries)")
    ranking.add_argument("--fused-depth", type=int, default=None,
                         help="with exhaustive classic retrieval, candidates selected from the whole library by the "
                              "fused score itself (default: the model's, 200; 0 = the --classic-depth best by the "
                              "classic score alone, as before)")
    ranking.add_argument("--approximate-classic", dest="classic_approximate", action="store_const", const=True,
                         default=None,
                         help="retrieve the classic-score candidates through an approximate index kept beside the "
                              "library (built once, ~4 min at 1 M spectra), plus every spectrum at the query's "
                              "--plausible-masses likeliest molecular masses: 1 M validation library 1.3x faster, "
                              "99.7 %% of the exhaustive default's top 10")
    ranking.add_argument("--plausible-masses", type=int, default=None,
                         help="with --approximate-classic: every spectrum at this many of the query's likeliest "
                              "nominal molecular masses (molecular-ion model) is a candidate (default 6; 0 = none: "
                              "1.6x faster, 93.5 %% of the default's top 10)")
    prior = ranking.add_mutually_exclusive_group()
    prior.add_argument("--mass-prior", dest="prior", action="store_const", const=True, default=None,
                       help="penalise candidates lighter than the query's significant high-mass peaks "
                            "(default: as fit for the model)")
    prior.add_argument("--no-mass-prior", dest="prior", action="store_const", const=False,
                       help="turn the molecular-ion plausibility penalty and the molecular-ion model off")
    p.add_argument("--batch-size", type=int, default=64, help="query spectra per forward pass")
    p.add_argument("--skip-invalid", action="store_true", help="skip unreadable query records (counted)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import open_library
    from llm4ms.errors import ConfigError
    from llm4ms.io import ReadReport, read_spectra
    from llm4ms.query_checks import CLI_NAMES, check_search_settings
    from llm4ms.report import format_hit_table, write_hits

    check_search_settings(args.k, mass=args.mass, mass_tolerance=args.mass_tolerance, min_score=args.min_score,
                          rerank_depth=args.rerank_depth, names=CLI_NAMES,
                          precursor_tolerance=args.precursor_tolerance, ion_mode=args.ion_mode)
    report = ReadReport(path=args.query)
    queries = list(read_spectra(args.query, skip_invalid=args.skip_invalid, report=report,
                               require_searchable=True))
    if not queries:
        raise ConfigError(f"{args.query}: no spectra to search")
    if args.mass_tolerance is not None:
        log.info("%s", mass_note(queries, args.mass, args.mass_tolerance))
    if args.precursor_tolerance is not None:
        log.info("%s", precursor_note(queries, args.precursor_tolerance))
    library, encoder = open_library(args.library, args.model)
    masses = [args.mass] * len(queries) if args.mass is not None else None
    from llm4ms.ranking import model_ranking, resolve_ranking

    if args.fusion is not None and not 0.0 <= args.fusion <= 1.0:
        raise ConfigError("--fusion must lie in [0, 1]")
    ranking = resolve_ranking(model_ranking(library.encoder(encoder)), fusion=args.fusion, rerank=args.rerank,
                              depth=args.rerank_depth, prior=args.prior, classic_depth=args.classic_depth,
                              learned=args.learned, classic_approximate=args.classic_approximate,
                              fused_depth=args.fused_depth, plausible_masses=args.plausible_masses)
    log.info("ranking: %s", ranking.describe())
    if args.plausible_masses is not None and not (ranking.classic_approximate and ranking.classic_retrieval):
        log.warning("--plausible-masses applies to approximate classic retrieval (--approximate-classic) only")
    results = library.search(queries, k=args.k, encoder=encoder, mass_tolerance=args.mass_tolerance,
                             query_masses=masses, min_score=args.min_score, batch_size=args.batch_size,
                             ranking=ranking, precursor_tolerance=args.precursor_tolerance,
                             ion_mode=args.ion_mode)
    if report.skipped:
        print(f"{report.skipped} invalid query records skipped", file=sys.stderr)
    if args.out:
        rows = write_hits(results, args.out)
        print(f"{rows} hits for {len(queries)} queries written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(format_hit_table(results))
    return 0


def precursor_note(queries: Sequence, tolerance: str) -> str:
    """One line saying how many queries the precursor filter applies to."""
    without = sum(q.precursor_mz is None for q in queries)
    note = f"precursor filter +/-{tolerance.strip()}"
    if not without:
        return f"{note} around each query's precursor m/z"
    return f"{note}: {without} of {len(queries)} queries have no precursor m/z and are searched without it"


def mass_note(queries: Sequence, mass: Optional[float], tolerance: float) -> str:
    """One line saying where the mass filter's query masses come from."""
    window = f"mass filter +/-{tolerance:g} Da"
    if mass is not None:
        return f"{window}: query mass {mass:g} from --mass"
    found = [q.molecular_mass_with_source() for q in queries]
    if len(found) == 1:
        value, source = found[0]
        if value is None:
            return f"{window}: the query has no molecular mass (no exact mass, weight, FORMULA or SMILES)"
        return f"{window}: query mass {value:.4f} from {MASS_SOURCES.get(source, source)}"
    counts = Counter(source for _, source in found)
    parts = [f"{n} from {MASS_SOURCES.get(source, source).replace('its ', '')}"
             for source, n in counts.most_common() if source is not None]
    if counts.get(None):
        parts.append(f"{counts[None]} without one")
    return f"{window}: query masses " + ", ".join(parts)
