"""Build the MS/MS training and validation sets for `recipes/supervised.py` from `build_msms_sets.py` output.

    python data_prep/build_msms_sets.py MassBank-data work_data/msms/all --clean
    python data_prep/build_msms_training_sets.py work_data/msms/all work_data/msms/training [--negatives 1]

Reads SETS/train.mgf and SETS/validation.mgf (split by compound already; the test split is never read)
and writes to OUT:

- supervised_triples.jsonl: one (anchor, positive, hard negatives) row per train spectrum whose compound has
  another spectrum in the same ion mode (`llm4ms.training.msms_pairs.build_msms_triples`: replicate pairs
  across collision energies and instruments, negatives from other compounds in the precursor window);
- mntp.jsonl: every train spectrum (for an MNTP stage);
- validation_queries.jsonl / validation_library.jsonl: one spectrum per validation compound and ion mode
  as query, every other validation spectrum in the library (the recipes' Recall@k during training).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def read_mgf(path: Path) -> list:
    """Spectra with an InChIKey and at least one peak, intensities scaled to max 1."""
    from llm4ms.io import read_spectra
    from llm4ms.spectrum import normalize_intensities, pipeline, remove_nonpositive

    clean = pipeline(remove_nonpositive, normalize_intensities)
    out = []
    for spectrum in read_spectra(path, skip_invalid=True):
        spectrum = clean(spectrum) if spectrum.inchikey14 else None
        if spectrum is not None:
            out.append(spectrum)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, help="folder with train.mgf and validation.mgf (build_msms_sets.py)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--negatives", type=int, default=1, help="hard negatives per triple")
    parser.add_argument("--precursor-window", type=float, default=0.01, help="Da; where hard negatives come from")
    parser.add_argument("--max-validation-queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from llm4ms.training.data import SET_FILES, spectrum_to_record, triple_to_record, write_jsonl
    from llm4ms.training.msms_pairs import build_msms_triples, msms_validation_sets

    for name in ("train.mgf", "validation.mgf"):
        if not (args.sets / name).is_file():
            print(f"error: {args.sets / name} not found (build it with data_prep/build_msms_sets.py)",
                  file=sys.stderr)
            return 2
    train = read_mgf(args.sets / "train.mgf")
    validation = read_mgf(args.sets / "validation.mgf")
    triples = build_msms_triples(train, num_negatives=args.negatives,
                                 precursor_tolerance_da=args.precursor_window, seed=args.seed)
    queries, library = msms_validation_sets(validation, seed=args.seed, max_queries=args.max_validation_queries)
    train_keys = {s.inchikey14 for s in train}
    assert not train_keys & {s.inchikey14 for s in validation}, "a compound is in train and validation"

    out = args.out_dir
    counts = {
        "mntp": write_jsonl(map(spectrum_to_record, train), out / SET_FILES["mntp"]),
        "triples": write_jsonl(map(triple_to_record, triples), out / SET_FILES["triples"]),
        "validation_queries": write_jsonl(map(spectrum_to_record, queries), out / SET_FILES["validation_queries"]),
        "validation_library": write_jsonl(map(spectrum_to_record, library), out / SET_FILES["validation_library"]),
    }
    print(f"wrote {out}/ (seed {args.seed}, {args.negatives} negatives per triple, window {args.precursor_window} Da)")
    for name, n in counts.items():
        print(f"  {name:<20} {n:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
