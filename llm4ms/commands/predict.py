"""`llm4ms predict`: an in-silico EI library (MSP) from a list of structures."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="predict EI spectra from SMILES (NEIMS-style) into an MSP library",
        description="Predict nominal-mass EI spectra for molecules in a .smi/.csv/.tsv(.gz) file and write an "
                    "MSP library. Invalid rows are skipped and counted; rerun the same command to resume.")
    p.add_argument("--smiles", required=True, type=Path, metavar="MOLS",
                   help="molecule file: .smi (SMILES [name]) or .csv/.tsv with a header, optionally .gz")
    p.add_argument("--out", required=True, type=Path, metavar="LIB.msp", help="output MSP file")
    p.add_argument("--smiles-column", default="smiles", help="SMILES column of a table (default: smiles)")
    p.add_argument("--id-column", default=None, help="id column (default: 'id' if present)")
    p.add_argument("--name-column", default=None, help="name column (default: 'name' if present)")
    p.add_argument("--model", default=None, type=Path, help="predictor folder (default: bundled weights)")
    p.add_argument("--batch-size", type=int, default=256, help="molecules per forward pass")
    p.add_argument("--jobs", type=int, default=1, help="processes for RDKit featurisation")
    p.add_argument("--limit", type=int, default=None, help="stop after N input rows (rerun without it to go on)")
    p.add_argument("--chunk-size", type=int, default=10000, help="rows per resumable chunk")
    p.add_argument("--rejects", type=Path, default=None, help="also write skipped rows with reasons (TSV)")
    p.add_argument("--restart", action="store_true", help="discard the parts of an earlier run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--references", type=Path, default=None, metavar="SPECTRA",
                   help="measured 70 eV spectra with structures (MSP/MGF/...: MassBank, NIST, in-house): each "
                        "prediction is mixed with those of its most similar reference compounds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.errors import ConfigError
    from llm4ms.predict.batch import predict_file
    from llm4ms.predict.predictor import EIPredictor

    for name in ("batch_size", "jobs", "chunk_size"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    predictor = EIPredictor.from_pretrained(args.model)
    if args.references is not None:
        refs = predictor.use_references(args.references, n_jobs=args.jobs)
        tandem = f"; {refs.n_tandem_left_out} MS/MS spectra left out" if refs.n_tandem_left_out else ""
        print(f"llm4ms predict: {len(refs.keys)} reference compounds ({refs.n_spectra} spectra{tandem}) from "
              f"{args.references}")
    result = predict_file(predictor, args.smiles, args.out, smiles_column=args.smiles_column,
                          id_column=args.id_column, name_column=args.name_column, batch_size=args.batch_size,
                          n_jobs=args.jobs, limit=args.limit, chunk_size=args.chunk_size,
                          rejects_path=args.rejects, restart=args.restart,
                          progress=False if args.no_progress else None)
    rate = result.predicted_this_run / result.seconds if result.seconds > 0 else 0.0
    tail = "" if result.complete else "; stopped at --limit, rerun without it to continue"
    print(f"llm4ms predict: {result.summary()} -> {args.out} ({rate:.0f} mol/s this run){tail}")
    return 0
