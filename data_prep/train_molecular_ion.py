"""Train the molecular-ion model (`llm4ms.molecular_ion`) on measured TRAIN-split EI spectra.

Rows: every TRAIN-split spectrum of the MassBank EI nominal set (or `--spectra`), its own nominal mass against
the masses of the 40 most similar spectra of other compounds (`training_table`). No validation or test
spectrum is read; the weight the ranking gives the model is fit on validation by ``data_prep/fit_ranking.py``.

    python data_prep/train_molecular_ion.py --out llm4ms/resources/molecular_ion
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MASSBANK_EI = ("massbank_ei", "massbank_ei_nominal.msp")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--spectra", type=Path, default=None,
                        help="measured spectra (default: the shared MassBank EI nominal set); TRAIN split only")
    parser.add_argument("--negatives", type=int, default=40)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from llm4ms.data.shared import portable_path, shared_path
    from llm4ms.data.split import compound_split
    from llm4ms.io import read_spectra
    from llm4ms.molecular_ion import train_ion_model, training_table

    source = args.spectra or shared_path(*MASSBANK_EI)
    spectra = [s for s in read_spectra(source)
               if s.inchikey14 and s.molecular_mass and compound_split(s.inchikey14) == "train"]
    t0 = time.perf_counter()
    features, labels, groups = training_table(spectra, negatives=args.negatives)
    info = {"data": f"{portable_path(source)}: {len(spectra)} TRAIN-split spectra "
                    f"({len(set(s.inchikey14 for s in spectra))} compounds), {int(labels.size)} rows",
            "negatives": args.negatives, "split": "compound_split (InChIKey first block) == train",
            "licence_note": "trained on MassBank EI records (mostly CC BY-NC-SA): treat as CC BY-NC-SA derived"}
    model = train_ion_model(features, labels, trees=args.trees, leaves=args.leaves,
                            learning_rate=args.learning_rate, seed=args.seed, info=info)
    model.save(args.out)
    print(f"{args.out}: {len(spectra)} spectra, {labels.size} rows, {int(labels.sum())} true masses, "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    from llm4ms.errors import Llm4msError

    try:
        sys.exit(main())
    except Llm4msError as err:
        sys.exit(f"train_molecular_ion: error: {err}")
