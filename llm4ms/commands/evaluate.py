"""`llm4ms evaluate`: Recall@k of several search methods on the same queries and library."""
from __future__ import annotations

import argparse
import sys

from llm4ms.errors import ConfigError

DEFAULT_METHODS = "cosine,wcs,composite,spec2vec,entropy"
#: Methods that need the `[baselines]` extra, and the modules each imports.
OPTIONAL_MODULES = {"spec2vec": ("spec2vec", "matchms", "gensim"), "entropy": ("ms_entropy",),
                    "spec2vec_hr": ("spec2vec", "matchms", "gensim"), "entropy_hr": ("ms_entropy",),
                    "cosine_hr": ("matchms",), "modified_cosine": ("matchms",)}
BASELINES_HINT = "pip install 'llm4ms[baselines]'"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="compare search methods by Recall@k (InChIKey first block)",
        description="Search every query against the library with each method and report Recall@k. "
                    "Queries and library spectra need InChIKeys.")
    parser.add_argument("--queries", required=True, help="query spectra (MSP, MGF, ...)")
    parser.add_argument("--library", required=True,
                        help="library spectra file, or a library folder built by `llm4ms embed`")
    parser.add_argument("--methods", default=None,
                        help="comma-separated: llm4ms (the default search ranking), llm4ms_embedding (embedding alone), cosine, cosine_sqrt, wcs, composite, spec2vec, entropy "
                             f"(default {DEFAULT_METHODS}; spec2vec and entropy need {BASELINES_HINT}, and are "
                             "left out of the default with a note when it is missing); for MS/MS at accurate m/z: "
                             "cosine_hr, modified_cosine, entropy_hr, spec2vec_hr, ms2deepscore (needs "
                             "--ms2deepscore-model)")
    parser.add_argument("--model", help="encoder folder, Hub id or bundled name (ei, msms) for method llm4ms (default: ei)")
    parser.add_argument("--k", default="1,5,10,100", help="comma-separated k values (default 1,5,10,100)")
    parser.add_argument("--mass-tolerance", type=float, default=None,
                        help="also report results restricted to library spectra within this many Da of the "
                             "query's molecular mass (e.g. 0.5)")
    parser.add_argument("--precursor-tolerance", default=None,
                        help="MS/MS: also report results restricted to library spectra whose precursor m/z lies "
                             "within this of the query's, e.g. 10ppm or 0.01Da (queries without one: unrestricted)")
    parser.add_argument("--ms2deepscore-model", default=None,
                        help="MS2DeepScore model file for method ms2deepscore (needs the ms2deepscore package)")
    parser.add_argument("--spec2vec-iterations", type=int, default=10,
                        help="Word2Vec epochs when spec2vec trains on the library (default 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="encoder batch size (llm4ms)")
    parser.add_argument("--prior", default="model",
                        help="mass-plausibility prior applied to every method in extra columns: 'model' (the "
                             "prior fitted for --model, if any, with its molecular-ion model weight), 'off', or "
                             "WEIGHT[,MARGIN[,MIN_REL[,ION_WEIGHT]]]")
    parser.add_argument("--reference", default=None,
                        help="method every other one is compared with query by query (paired margin with a 95 %% "
                             "interval and McNemar's test; default llm4ms when it runs, else the first method)")
    parser.add_argument("--out", help="write the full result as JSON here (per-query ranks included)")
    parser.set_defaults(func=run)


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as err:
        raise ConfigError(f"--k must be comma-separated integers, got {text!r}") from err
    if not ks or ks[0] < 1:
        raise ConfigError(f"--k values must be >= 1, got {text!r}")
    return ks


def missing_modules(method: str) -> list[str]:
    """The modules `method` needs that are not installed."""
    from importlib.util import find_spec

    missing = []
    for module in OPTIONAL_MODULES.get(method, ()):
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def _missing_text(missing: dict[str, list[str]]) -> str:
    modules = sorted({m for mods in missing.values() for m in mods})
    return f"the optional package{'s' if len(modules) > 1 else ''} {', '.join(modules)} (not installed)"


def _prior(args: argparse.Namespace):
    """The prior every method is also reported with (see `llm4ms.ranking.parse_prior`)."""
    from llm4ms.ranking import model_ranking, parse_prior

    model_prior = None
    if args.model and args.prior == "model":
        from llm4ms.defaults import load_encoder

        model_prior = model_ranking(load_encoder(args.model)).prior
    return parse_prior(args.prior, model_prior)


def run(args: argparse.Namespace) -> int:
    from llm4ms.evaluate.loading import load_spectra
    from llm4ms.evaluate.runner import evaluate, markdown_table
    from llm4ms.evaluate.scorers import available_scorers
    from llm4ms.utils import write_json

    methods = [m.strip() for m in (args.methods or DEFAULT_METHODS).split(",") if m.strip()]
    unknown = [m for m in methods if m not in available_scorers()]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(available_scorers())}")
    missing = {m: mods for m in methods if (mods := missing_modules(m))}
    if missing and args.methods is None:
        methods = [m for m in methods if m not in missing]
        print(f"llm4ms evaluate: {', '.join(missing)} left out: {_missing_text(missing)}; {BASELINES_HINT}",
              file=sys.stderr)
    elif missing:
        raise ConfigError(f"method(s) {', '.join(missing)} need {_missing_text(missing)}: {BASELINES_HINT}")
    if {"llm4ms", "llm4ms_embedding"} & set(methods) and not args.model:
        from llm4ms.defaults import default_model_path

        if default_model_path() is None:
            raise ConfigError("methods llm4ms and llm4ms_embedding need --model PATH (this build ships no model)")
        args.model = str(default_model_path())
    if args.mass_tolerance is not None and args.mass_tolerance < 0:
        raise ConfigError("--mass-tolerance must be >= 0")
    precursor_tolerance = None
    if args.precursor_tolerance is not None:
        from llm4ms.mass import Tolerance
        from llm4ms.query_checks import check_tolerance

        precursor_tolerance = Tolerance(*check_tolerance(args.precursor_tolerance, "--precursor-tolerance"))
    ks = _parse_ks(args.k)
    if args.reference is not None and args.reference not in methods:
        raise ConfigError(f"--reference {args.reference} is not among the methods ({', '.join(methods)})")
    queries = load_spectra(args.queries)
    library = load_spectra(args.library)
    if not queries:
        raise ConfigError(f"{args.queries}: no spectra")
    if not library:
        raise ConfigError(f"{args.library}: no spectra")
    if not any(q.inchikey for q in queries):
        raise ConfigError(f"{args.queries}: no query has an InChIKey, so recall cannot be computed")
    options = {"spec2vec": {"iterations": args.spec2vec_iterations},
               "spec2vec_hr": {"iterations": args.spec2vec_iterations},
               "ms2deepscore": {"model_path": args.ms2deepscore_model},
               "llm4ms": {"model": args.model, "batch_size": args.batch_size},
               "llm4ms_embedding": {"model": args.model, "batch_size": args.batch_size}}
    try:
        result = evaluate(queries, library, methods, ks=ks, mass_tolerance=args.mass_tolerance,
                          method_options=options, name=f"{args.queries} vs {args.library}",
                          prior=_prior(args), precursor_tolerance=precursor_tolerance,
                          reference=args.reference)
    except ImportError as err:  # an optional package that find_spec saw but that cannot be imported
        name = (getattr(err, "name", None) or "").split(".")[0]
        if name not in {m for mods in OPTIONAL_MODULES.values() for m in mods}:
            raise
        raise ConfigError(f"the optional package {name} could not be imported ({err}): {BASELINES_HINT}") from err
    result["settings"]["queries_path"] = str(args.queries)
    result["settings"]["library_path"] = str(args.library)
    print(markdown_table(result), end="")
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    return 0
