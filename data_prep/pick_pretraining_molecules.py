"""Pick TRAIN-split molecules whose predicted spectra pretrain the re-ranker's fingerprint network.

The spectrum -> fingerprint network (`llm4ms.fingerprint_model`) has only ~7,500 measured TRAIN spectra to learn
from. Predicted spectra of many more structures (MOSES) teach it which bits go with which peaks first
(`train_fingerprint_model(pretrain=...)`). This script writes the SMILES to predict (``llm4ms predict`` turns them
into an MSP, resumably); the molecules are

- TRAIN split by the project's compound split (so no validation or test compound's spectrum is ever seen), and
- in none of the `--exclude` tables (the benchmark's targets and decoys: the re-ranker is fit and judged on lists
  from those libraries, and their structures should stay unseen there too),

drawn in a seeded shuffle of MOSES' training set (../shared/data/molecules/moses_train.csv.gz).

    python data_prep/pick_pretraining_molecules.py --n 200000 --out work_data/fingerprint_pretraining/moses.smi \\
        --exclude work_data/benchmark/insilico_*/targets.tsv work_data/benchmark/insilico_*/decoys_*.tsv
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MOSES = ("molecules", "moses_train.csv.gz")


def inchikey_blocks(tables: list[Path]) -> set[str]:
    """First InChIKey blocks in the ``inchikey`` column of TSV tables."""
    from llm4ms.errors import ConfigError

    keys: set[str] = set()
    for table in tables:
        with open(table, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            if "inchikey" not in (reader.fieldnames or []):
                raise ConfigError(f"{table}: no 'inchikey' column")
            keys.update(row["inchikey"][:14] for row in reader if row.get("inchikey"))
    return keys


def pick(source: Path, n: int, exclude: set[str], seed: int) -> list[str]:
    from rdkit import Chem, RDLogger

    from llm4ms.data.split import compound_split
    from llm4ms.predict.inputs import read_molecules

    RDLogger.DisableLog("rdApp.*")
    smiles = [row.smiles for row in read_molecules(source) if row.smiles]
    random.Random(seed).shuffle(smiles)
    seen, out = set(exclude), []
    for text in smiles:
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            continue
        key = Chem.MolToInchiKey(mol)[:14]
        if not key or key in seen or compound_split(key) != "train":
            continue
        seen.add(key)
        out.append(text)
        if len(out) >= n:
            break
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="molecules to pick")
    parser.add_argument("--out", type=Path, required=True, help=".smi file to write (SMILES id)")
    parser.add_argument("--exclude", type=Path, nargs="*", default=[],
                        help="TSV tables with an 'inchikey' column whose structures are left out")
    parser.add_argument("--source", type=Path, default=None,
                        help="molecule file, .smi/.csv/.tsv(.gz) as llm4ms predict reads (default: shared MOSES)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)

    from llm4ms.data.shared import shared_path
    from llm4ms.utils import atomic_path

    smiles = pick(args.source or shared_path(*MOSES), args.n, inchikey_blocks(args.exclude), args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text("".join(f"{s} P{i}\n" for i, s in enumerate(smiles)), encoding="utf-8")
    print(f"{args.out}: {len(smiles)} TRAIN-split molecules ({len(args.exclude)} exclusion tables)")
    return 0


if __name__ == "__main__":
    from llm4ms.errors import Llm4msError

    try:
        sys.exit(main())
    except Llm4msError as err:
        sys.exit(f"pick_pretraining_molecules: error: {err}")
