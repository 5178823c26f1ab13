"""Build the training and validation sets for the three recipes from the shared EI MSP files.

Spectra (m/z + intensity lists, InChIKey first block, name) are stored, not texts, so any textualizer
can be used later. Only train-split compounds go into training sets, only validation-split compounds
into the validation query/library sets; a test-split compound is never written (checked).

- mntp.jsonl / simcse.jsonl: every train spectrum of MassBank EI (nominal) and, unless --no-pnnl, PNNL
  GC-MS (TMS derivatives: fine for unsupervised stages, kept out of the supervised pairs).
- supervised_triples.jsonl: one (anchor, positive, hard negatives) row per MassBank train spectrum.
- validation_queries.jsonl / validation_library.jsonl: for validation compounds with >= 2 spectra, the
  first spectrum (smallest id) is a query; every other validation spectrum is in the library.
- with --predicted crossfit|bundled: one more triple per train spectrum, (measured, in-silico spectrum
  of the same compound) with in-silico spectra of look-alike compounds as hard negatives -- the
  benchmark's "measured query vs predicted library" task. `crossfit` predicts each of K folds of the
  train compounds with a predictor fit on the other folds (llm4ms.training.crossfit), so the pairs are
  as hard as for unseen compounds; `bundled` uses the shipped predictor (fit on all train compounds:
  optimistic). Predictions are cached in <out_dir>/predicted_train.jsonl.
- with --insilico-validation DIR (from `build_benchmark.py all --split validation --sizes 10k`):
  validation_insilico_queries.jsonl / validation_insilico_library.jsonl, the in-silico benchmark's
  protocol on validation compounds (library cut to --insilico-library-size: all targets + first decoys).

    PYTHONPATH=. python data_prep/build_training_sets.py [out_dir] [--negatives 3 --negative-method cosine]
    PYTHONPATH=. python data_prep/build_training_sets.py --predicted crossfit --folds 3 \
        --insilico-validation work_data/benchmark/insilico_validation
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

# Inside the shared data folder (llm4ms.data.shared), looked up when the script runs, not at import.
MASSBANK = ("massbank_ei", "massbank_ei_nominal.msp")
PNNL = ("pnnl_gcms", "PNNLMetV20191015_clean.msp")


def read_split_spectra(path: Path) -> dict[str, list]:
    """{split: [Spectrum]} for spectra with an InChIKey, peaks scaled to max 1."""
    from llm4ms.data.split import compound_split
    from llm4ms.io import read_spectra
    from llm4ms.spectrum import normalize_intensities, pipeline, remove_nonpositive

    clean = pipeline(remove_nonpositive, normalize_intensities)
    out: dict[str, list] = defaultdict(list)
    for spectrum in read_spectra(path, skip_invalid=True):
        spectrum = clean(spectrum) if spectrum.inchikey14 else None
        if spectrum is not None:
            out[compound_split(spectrum.inchikey14)].append(spectrum)
    return out


def validation_sets(spectra: list) -> tuple[list, list]:
    """Queries = first spectrum (by id) of each compound with >= 2 spectra; library = all the rest."""
    by_key: dict[str, list] = defaultdict(list)
    for s in sorted(spectra, key=lambda s: str(s.id or "")):
        by_key[s.inchikey14].append(s)
    queries = [group[0] for group in by_key.values() if len(group) >= 2]
    chosen = {id(q) for q in queries}
    return queries, [s for s in spectra if id(s) not in chosen]


def predicted_train(massbank: dict[str, list], args) -> list:
    """In-silico spectra of the train compounds (cached as predicted_train.jsonl in the output folder)."""
    import json

    from llm4ms.training.crossfit import CrossfitSettings, crossfit_predictions, predict_compounds
    from llm4ms.training.data import load_spectra, spectrum_to_record, write_jsonl
    from llm4ms.utils import write_json

    cache = args.out_dir / "predicted_train.jsonl"
    meta = {"method": args.predicted, "folds": args.folds, "predictor_epochs": args.predictor_epochs,
            "predictor_minutes": args.predictor_minutes, "seed": args.seed}
    if args.predictor_v2:  # written only when used, so caches of earlier runs still match
        meta["predictor_v2"] = {"extra": ["chem"], "members": args.predictor_members, "isotope_envelope": "anchor"}
    info_path = args.out_dir / "predicted_train.json"
    if cache.exists() and info_path.exists() and json.loads(info_path.read_text())["settings"] == meta:
        print(f"reusing {cache}")
        return load_spectra(cache)
    if args.predicted == "crossfit":
        v2 = dict(extra=("chem",), members=args.predictor_members, isotope_envelope="anchor") \
            if args.predictor_v2 else {}
        settings = CrossfitSettings(folds=args.folds, epochs=args.predictor_epochs, max_minutes=args.predictor_minutes,
                                    seed=args.seed, **v2)
        predicted, folds = crossfit_predictions(massbank["train"] + massbank["validation"], settings)
    else:
        predicted, folds = predict_compounds(massbank["train"]), []
    write_jsonl(map(spectrum_to_record, predicted), cache)
    write_json(info_path, {"settings": meta, "predicted": len(predicted), "folds": folds})
    return predicted


def insilico_validation(folder: Path, size: int) -> tuple[list, list]:
    """Measured validation queries and the predicted library cut to `size` (all targets, then decoys)."""
    from llm4ms.io import read_spectra

    queries = list(read_spectra(folder / "queries.msp"))
    library = list(read_spectra(folder / "library_10k.msp"))
    targets = [s for s in library if is_target(s)]
    decoys = [s for s in library if not is_target(s)]
    return queries, targets + decoys[:max(0, size - len(targets))]


def is_target(spectrum) -> bool:
    """build_benchmark.py marks predicted spectra of the split's own compounds with "(target)"."""
    return "(target)" in str(spectrum.metadata.get("comment") or "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("work_data/training"))
    parser.add_argument("--negatives", type=int, default=3, help="hard negatives per triple")
    parser.add_argument("--negative-method", default="cosine", choices=("cosine", "tanimoto", "both", "none"))
    parser.add_argument("--no-pnnl", action="store_true", help="leave PNNL out of the MNTP/SimCSE sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--predicted", default="none", choices=("none", "crossfit", "bundled"),
                        help="add measured-vs-in-silico triples (see the module doc)")
    parser.add_argument("--folds", type=int, default=3, help="cross-fitting folds (--predicted crossfit)")
    parser.add_argument("--predictor-epochs", type=int, default=15, help="epochs per fold predictor (cross-fit)")
    parser.add_argument("--predictor-minutes", type=float, default=3.0, help="time cap per fold predictor")
    parser.add_argument("--predictor-v2", action="store_true",
                        help="cross-fit with predictor v2's options (chemistry features, isotope envelope, "
                             "--predictor-members seeds per fold averaged)")
    parser.add_argument("--predictor-members", type=int, default=3, help="seeds per fold with --predictor-v2")
    parser.add_argument("--insilico-validation", type=Path, help="insilico_validation benchmark folder")
    parser.add_argument("--insilico-library-size", type=int, default=3000)
    args = parser.parse_args(argv)

    from llm4ms.data.shared import shared_path
    from llm4ms.data.split import compound_split
    from llm4ms.training.data import SET_FILES, spectrum_to_record, triple_to_record, write_jsonl
    from llm4ms.training.mining import build_triples

    massbank = read_split_spectra(shared_path(*MASSBANK))
    unsupervised = list(massbank["train"])
    if not args.no_pnnl:
        unsupervised += read_split_spectra(shared_path(*PNNL))["train"]
    predicted = predicted_train(massbank, args) if args.predicted != "none" else None
    triples = build_triples(massbank["train"], num_negatives=args.negatives, negative_method=args.negative_method,
                            seed=args.seed, predicted=predicted, predicted_negatives=predicted is not None)
    queries, library = validation_sets(massbank["validation"])
    insilico_q, insilico_lib = (insilico_validation(args.insilico_validation, args.insilico_library_size)
                                if args.insilico_validation else ([], []))

    for s in unsupervised + queries + library:  # the one rule that must never break
        assert compound_split(s.inchikey14) != "test", f"test compound {s.inchikey14} in a training set"
    for s in insilico_q + [s for s in insilico_lib if is_target(s)]:
        assert compound_split(s.inchikey14) == "validation", f"non-validation target {s.inchikey14}"
    for t in triples:
        for s in (t["anchor"], t["positive"], *t["negatives"]):
            assert compound_split(s.inchikey14) == "train", f"non-train compound {s.inchikey14} in a triple"

    out = args.out_dir
    counts = {
        "mntp": write_jsonl(map(spectrum_to_record, unsupervised), out / SET_FILES["mntp"]),
        "simcse": write_jsonl(map(spectrum_to_record, unsupervised), out / SET_FILES["simcse"]),
        "triples": write_jsonl(map(triple_to_record, triples), out / SET_FILES["triples"]),
        "validation_queries": write_jsonl(map(spectrum_to_record, queries), out / SET_FILES["validation_queries"]),
        "validation_library": write_jsonl(map(spectrum_to_record, library), out / SET_FILES["validation_library"]),
    }
    if insilico_q:
        counts["validation_insilico_queries"] = write_jsonl(map(spectrum_to_record, insilico_q),
                                                            out / "validation_insilico_queries.jsonl")
        counts["validation_insilico_library"] = write_jsonl(map(spectrum_to_record, insilico_lib),
                                                            out / "validation_insilico_library.jsonl")
    print(f"wrote {out}/ (seed {args.seed}, {args.negatives} {args.negative_method} negatives per triple)")
    for name, n in counts.items():
        print(f"  {name:<20} {n:>6}")
    singles = Counter(Counter(s.inchikey14 for s in massbank["train"]).values())[1]
    print(f"  train compounds measured once (augmented positives): {singles}")
    print(f"  held out: test {len(massbank['test'])} spectra (never written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
