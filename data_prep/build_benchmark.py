"""Build the public EI identification benchmarks, reproducibly, under one output folder.

Steps (each separately runnable, each skips outputs that already exist; `all` runs them in order):

  measured    measured-vs-measured: MassBank EI nominal set, compounds of one split (`compound_split`,
              default test). For compounds with >= 2 spectra the query is the spectrum with the smallest
              accession; the library is every other spectrum of the split.
              -> measured_<split>/queries.msp, library.msp, info.json
  targets     measured-vs-in-silico queries: one measured spectrum (smallest accession) per compound of
              the split, and the structures to predict for them.
              -> insilico_<split>/queries.msp, targets.tsv
  decoys      decoy molecules for the in-silico library: MassBank structures + FastEI's NEIMS test
              molecules first, then QM9 + MOSES, each group in a seeded shuffle; parsed with RDKit,
              FastEI's filters (single component, exact mass <= 1000, elements C H O N S P F Cl Br I Si),
              deduplicated by InChIKey first block, never a compound of the split's targets. Library
              sizes are nested prefixes of one ordering, so the 10k library is inside the 100k one.
              -> insilico_<split>/decoys_<size>.tsv (library size = targets + decoys)
  predict     NEIMS-style predicted spectra (`llm4ms.predict.EIPredictor`) of targets + decoys, written
              in resumable parts and merged. Skipped with a message if the predictor is not available.
              -> insilico_<split>/library_<size>.msp

    python data_prep/build_benchmark.py all --out work_data/benchmark --sizes 10k,100k
    python data_prep/build_benchmark.py measured --split all      # whole nominal set (sanity check)
"""
from __future__ import annotations

import argparse
import csv
import gzip
import logging
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm4ms.data.split import compound_split  # noqa: E402
from llm4ms.spectrum import Spectrum  # noqa: E402
from llm4ms.utils import atomic_open, write_json  # noqa: E402
from llm4ms.data.shared import portable_path, shared_path  # noqa: E402

logger = logging.getLogger("build_benchmark")

SEED = 20261125
ALLOWED_ELEMENTS = {"C", "H", "O", "N", "S", "P", "F", "Cl", "Br", "I", "Si"}
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


# ---- shared helpers ---------------------------------------------------------------------------------
# The shared data folder is looked up when a step runs, never at import (a machine without it can still
# import this module, e.g. to collect the tests, which then skip).
def measured_path() -> Path:
    """MassBank EI nominal-mass spectra in the shared data folder (ConfigError when the folder is missing)."""
    return shared_path("massbank_ei", "massbank_ei_nominal.msp")


def molecules_dir() -> Path:
    return shared_path("molecules")


def read_measured(path: Optional[Path] = None) -> list[Spectrum]:
    from llm4ms.evaluate.loading import load_spectra

    return [s for s in load_spectra(path or measured_path()) if s.inchikey14]


def in_split(spectrum: Spectrum, split: str) -> bool:
    return split == "all" or compound_split(spectrum.inchikey14) == split


def write_msp(spectra: Sequence[Spectrum], path: Path) -> None:
    try:
        from llm4ms.io import write_msp as io_write_msp
    except ImportError:  # pragma: no cover - io always exists once the package is assembled
        io_write_msp = None
    if io_write_msp is not None:
        io_write_msp(spectra, path)
        return
    with atomic_open(path, "w", encoding="utf-8") as handle:  # pragma: no cover
        for s in spectra:
            for key, label in (("name", "NAME"), ("id", "DB#"), ("inchikey", "INCHIKEY"), ("smiles", "SMILES"),
                               ("formula", "FORMULA"), ("exact_mass", "EXACTMASS")):
                if s.get(key) is not None:
                    handle.write(f"{label}: {s.get(key)}\n")
            handle.write(f"NUM PEAKS: {s.n_peaks}\n")
            for m, i in zip(s.mz, s.intensities):
                handle.write(f"{m:g} {i:g}\n")
            handle.write("\n")


def by_compound(spectra: Iterable[Spectrum]) -> dict[str, list[Spectrum]]:
    groups: dict[str, list[Spectrum]] = defaultdict(list)
    for s in spectra:
        groups[s.inchikey14].append(s)
    for members in groups.values():
        members.sort(key=lambda s: str(s.id or ""))
    return dict(sorted(groups.items()))


# ---- (a) measured vs measured -----------------------------------------------------------------------
def build_measured(out: Path, split: str) -> Path:
    folder = out / f"measured_{split}"
    if (folder / "info.json").exists():
        logger.info("%s exists; skipping", folder)
        return folder
    spectra = [s for s in read_measured() if in_split(s, split)]
    groups = by_compound(spectra)
    queries = [members[0] for members in groups.values() if len(members) >= 2]
    query_ids = {id(q) for q in queries}
    library = sorted((s for s in spectra if id(s) not in query_ids), key=lambda s: str(s.id or ""))
    write_msp(queries, folder / "queries.msp")
    write_msp(library, folder / "library.msp")
    write_json(folder / "info.json", {
        "benchmark": "measured", "split": split, "source": portable_path(measured_path()),
        "protocol": "query = smallest accession of each compound (InChIKey first block) with >= 2 spectra "
                    "in the split; library = all other spectra of the split",
        "queries": len(queries), "library": len(library), "compounds_in_split": len(groups)})
    logger.info("measured_%s: %d queries, %d library spectra", split, len(queries), len(library))
    return folder


# ---- (b) measured vs in-silico ----------------------------------------------------------------------
def build_targets(out: Path, split: str) -> Path:
    folder = out / f"insilico_{split}"
    if (folder / "targets.tsv").exists() and (folder / "queries.msp").exists():
        logger.info("%s targets exist; skipping", folder)
        return folder
    groups = by_compound(s for s in read_measured() if in_split(s, split))
    queries = [members[0] for members in groups.values()]
    write_msp(queries, folder / "queries.msp")
    with atomic_open(folder / "targets.tsv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["inchikey", "smiles", "exact_mass", "name", "source"])
        for q in queries:
            writer.writerow([q.inchikey, q.smiles or "", q.molecular_mass or "", q.name or "", "target"])
    logger.info("insilico_%s: %d target compounds", split, len(queries))
    return folder


def _smiles_column(path: Path, column: str) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    delimiter = "\t" if ".tsv" in path.name else ","
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        field = next((f for f in reader.fieldnames or [] if f.lower() == column.lower()), None)
        if field is None:
            raise ValueError(f"{path}: no column {column!r}")
        for row in reader:
            value = (row.get(field) or "").strip()
            if value:
                yield value


def decoy_pool() -> list[tuple[str, str]]:
    """(smiles, source) in the fixed priority order: measured-like structures first, then the rest."""
    rng = random.Random(SEED)
    molecules = molecules_dir()
    neims = shared_path("fastei", "NEIMS_test_11499molecules.csv")
    first = [(s, "massbank") for s in _smiles_column(molecules / "massbank_all_structures.tsv", "smiles")]
    first += [(s, "neims_test") for s in _smiles_column(neims, "smiles")]
    rest = [(s, "qm9") for s in _smiles_column(molecules / "qm9_smiles.csv", "smiles")]
    for name in ("moses_train.csv.gz", "moses_test.csv.gz", "moses_test_scaffolds.csv.gz"):
        rest += [(s, "moses") for s in _smiles_column(molecules / name, "smiles")]
    rng.shuffle(first)
    rng.shuffle(rest)
    return first + rest


def describe(smiles: str) -> Optional[tuple[str, str, float]]:
    """(canonical smiles, InChIKey, exact mass) if the molecule passes FastEI's library filters."""
    from rdkit import Chem
    from rdkit.Chem.Descriptors import ExactMolWt

    if "." in smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    if any(atom.GetSymbol() not in ALLOWED_ELEMENTS for atom in mol.GetAtoms()):
        return None
    mass = ExactMolWt(mol)
    if mass > 1000:
        return None
    key = Chem.MolToInchiKey(mol)
    if not key:
        return None
    return Chem.MolToSmiles(mol), key, mass


def build_decoys(out: Path, split: str, sizes: Sequence[str]) -> None:
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    folder = build_targets(out, split)
    todo = [s for s in sizes if not (folder / f"decoys_{s}.tsv").exists()]
    if not todo:
        logger.info("decoys exist for %s; skipping", ",".join(sizes))
        return
    with open(folder / "targets.tsv", encoding="utf-8") as handle:
        targets = list(csv.DictReader(handle, delimiter="\t"))
    seen = {t["inchikey"][:14].upper() for t in targets}
    need = max(SIZES[s] for s in todo) - len(targets)
    decoys: list[tuple[str, str, float, str]] = []
    for smiles, source in decoy_pool():
        if len(decoys) >= need:
            break
        info = describe(smiles)
        if info is None or info[1][:14] in seen:
            continue
        seen.add(info[1][:14])
        decoys.append((info[1], info[0], info[2], source))
        if len(decoys) % 20000 == 0:
            logger.info("%d decoys", len(decoys))
    for size in todo:
        count = SIZES[size] - len(targets)
        if count > len(decoys):
            logger.warning("only %d decoys available for size %s", len(decoys), size)
        with atomic_open(folder / f"decoys_{size}.tsv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["inchikey", "smiles", "exact_mass", "source"])
            for key, smi, mass, source in decoys[:count]:
                writer.writerow([key, smi, f"{mass:.5f}", source])
        logger.info("decoys_%s: %d molecules", size, min(count, len(decoys)))


def build_predicted(out: Path, split: str, sizes: Sequence[str], part_size: int = 5000,
                    predictor_path: Optional[str] = None, references: Optional[str] = None) -> None:
    """Predict each size's targets + decoys into library_<size>.msp (resumable parts); `references`
    ('train' or a spectrum file) makes the predictor mix in measured analogues (`EIPredictor.use_references`)."""
    try:
        from llm4ms.predict import EIPredictor
    except ImportError as err:
        logger.warning("predictor not available (%s): decoy lists are written; run `predict` later", err)
        return
    folder = out / f"insilico_{split}"
    predictor = None
    for size in sizes:
        final = folder / f"library_{size}.msp"
        if final.exists():
            logger.info("%s exists; skipping", final)
            continue
        rows = []
        for name in ("targets.tsv", f"decoys_{size}.tsv"):
            with open(folder / name, encoding="utf-8") as handle:
                rows += list(csv.DictReader(handle, delimiter="\t"))
        parts = folder / f"library_{size}.parts"
        for start in range(0, len(rows), part_size):
            part = parts / f"part_{start // part_size:05d}.msp"
            if part.exists():
                continue
            if predictor is None:
                from llm4ms.errors import Llm4msError

                try:
                    predictor = EIPredictor.from_pretrained(predictor_path)
                    if references:
                        from llm4ms.predict.training import resolve_references

                        predictor.use_references(resolve_references(references))
                except Llm4msError as err:
                    logger.warning("no predictor weights (%s): decoy lists are written; run `predict` later", err)
                    return
            chunk = rows[start:start + part_size]
            predicted = predictor.predict([r["smiles"] for r in chunk])
            spectra = []
            for row, spectrum in zip(chunk, predicted):
                if spectrum is None or spectrum.n_peaks == 0:
                    continue
                meta = dict(spectrum.metadata)
                meta.update({"name": row.get("name") or row["inchikey"], "id": f"pred-{row['inchikey']}",
                             "inchikey": row["inchikey"], "smiles": row["smiles"],
                             "exact_mass": float(row["exact_mass"]) if row["exact_mass"] else None,
                             "comment": f"predicted ({row['source']})"})
                spectra.append(Spectrum(spectrum.mz, spectrum.intensities, meta))
            write_msp(spectra, part)
            logger.info("%s: %d/%d predicted", part.name, len(spectra), len(chunk))
        with atomic_open(final, "w", encoding="utf-8") as handle:
            for part in sorted(parts.glob("part_*.msp")):
                handle.write(part.read_text(encoding="utf-8"))
        logger.info("wrote %s", final)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("measured", "targets", "decoys", "predict", "all"))
    parser.add_argument("--out", default="work_data/benchmark", help="output folder")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test", "all"))
    parser.add_argument("--sizes", default="10k,100k", help="in-silico library sizes: 10k, 100k, 1m")
    parser.add_argument("--predictor", help="EIPredictor folder (default: the bundled weights)")
    parser.add_argument("--predictor-references", default=None,
                        help="reference spectra mixed into predictions: 'train' (the TRAIN split) or a spectrum file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        parser.error(f"unknown size(s) {bad}; choose from {', '.join(SIZES)}")
    if args.step in ("measured", "all"):
        build_measured(out, args.split)
    if args.step in ("targets", "all"):
        build_targets(out, args.split)
    if args.step in ("decoys", "all"):
        build_decoys(out, args.split, sizes)
    if args.step in ("predict", "all"):
        build_predicted(out, args.split, sizes, predictor_path=args.predictor,
                        references=args.predictor_references)
    return 0


if __name__ == "__main__":
    sys.exit(main())
