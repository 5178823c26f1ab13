"""Build the training and validation sets for the three recipes from the shared EI MSP files.

Spectra (m/z + intensity lists, InChIKey first block, name) are stored, not texts, so any textualizer
can be used later. Only train-split compounds go into training sets, only validation-split compounds
into the validation query/library sets; a test-split compound is never written (checked).

- mntp.jsonl / simcse.jsonl: every train spectrum of MassBank EI (nominal) and, unless --no-pnnl, PNNL
  GC-MS (TMS derivatives: fine for unsupervised stages, kept out of the supervised pairs).
- supervised_triples.jsonl: one (anchor, positive, hard negatives) row per MassBank train spectrum.
- validation_queries.jsonl / validation_library.jsonl: for validation compounds with >= 2 spectra, the
  first spectrum (smallest id) is a query; every other validation spectrum is in the library.

    PYTHONPATH=. python data_prep/build_training_sets.py [out_dir] [--negatives 3 --negative-method cosine]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path
from llm4ms.data.shared import shared_data_dir

DATA = shared_data_dir()
MASSBANK = DATA / "massbank_ei" / "massbank_ei_nominal.msp"
PNNL = DATA / "pnnl_gcms" / "PNNLMetV20191015_clean.msp"


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("work_data/training"))
    parser.add_argument("--negatives", type=int, default=3, help="hard negatives per triple")
    parser.add_argument("--negative-method", default="cosine", choices=("cosine", "tanimoto", "both", "none"))
    parser.add_argument("--no-pnnl", action="store_true", help="leave PNNL out of the MNTP/SimCSE sets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from llm4ms.data.split import compound_split
    from llm4ms.training.data import SET_FILES, spectrum_to_record, triple_to_record, write_jsonl
    from llm4ms.training.mining import build_triples

    massbank = read_split_spectra(MASSBANK)
    unsupervised = list(massbank["train"])
    if not args.no_pnnl:
        unsupervised += read_split_spectra(PNNL)["train"]
    triples = build_triples(massbank["train"], num_negatives=args.negatives, negative_method=args.negative_method,
                            seed=args.seed)
    queries, library = validation_sets(massbank["validation"])

    for s in unsupervised + queries + library:  # the one rule that must never break
        assert compound_split(s.inchikey14) != "test", f"test compound {s.inchikey14} in a training set"
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
    print(f"wrote {out}/ (seed {args.seed}, {args.negatives} {args.negative_method} negatives per triple)")
    for name, n in counts.items():
        print(f"  {name:<20} {n:>6}")
    singles = Counter(Counter(s.inchikey14 for s in massbank["train"]).values())[1]
    print(f"  train compounds measured once (augmented positives): {singles}")
    print(f"  held out: test {len(massbank['test'])} spectra (never written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
