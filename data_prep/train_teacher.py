"""Train the graph teacher (NExtIMS-style) and let it label structures that have no measured spectrum.

    # 1. teacher on the TRAIN compounds, early stopping on VALIDATION (same table as the student)
    PYTHONPATH=. python data_prep/train_teacher.py train --out work_data/teacher/gine \
        --n-bits 2048 --extra chem --extra-data-min-ev 40
    # 2. labels for TRAIN-split structures without a measured EI spectrum (resumable parts)
    PYTHONPATH=. python data_prep/train_teacher.py label --teacher work_data/teacher/gine \
        --sources massbank neims moses --moses-max 100000 --out work_data/teacher/gine/labels
    # 3. the student learns from both
    PYTHONPATH=. python data_prep/train_predictor.py ... --pseudo work_data/teacher/gine/labels

The teacher reads the student's features plus the molecular graph (`llm4ms.predict.teacher`); it is a
training tool, never shipped. Labels are written as `part-NNNN.npz` (keys, SMILES, student features, masses,
sqrt-intensity targets, featuriser); a rerun skips parts that exist.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm4ms.data.shared import shared_path  # noqa: E402
from llm4ms.data.split import compound_split  # noqa: E402
from llm4ms.predict.featurize import FeaturizerSettings, featurize_many  # noqa: E402
from llm4ms.predict.model import LossSettings  # noqa: E402
from llm4ms.predict.teacher import Labeller, graphs_for, new_teacher, save_teacher  # noqa: E402
from llm4ms.predict.training import TrainSettings, train, training_table  # noqa: E402
from llm4ms.utils import atomic_path, write_json  # noqa: E402

log = logging.getLogger("train_teacher")
SOURCES = ("massbank", "neims", "moses", "qm9")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    t = sub.add_parser("train", help="train the teacher on the TRAIN split")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--n-bits", type=int, default=2048)
    t.add_argument("--extra", nargs="*", default=["chem"], choices=["maccs", "atompair", "chem"])
    t.add_argument("--extra-data-min-ev", type=float, default=40.0)
    t.add_argument("--hidden", type=int, default=256, help="graph layer width")
    t.add_argument("--layers", type=int, default=4)
    t.add_argument("--dropout", type=float, default=0.2, help="graph dropout")
    t.add_argument("--head-hidden", type=int, nargs="+", default=[512, 512])
    t.add_argument("--head-dropout", type=float, default=0.5)
    t.add_argument("--epochs", type=int, default=80)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--patience", type=int, default=8)
    t.add_argument("--max-minutes", type=float, default=30.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--jobs", type=int, default=1)
    lab = sub.add_parser("label", help="label TRAIN-split structures that have no measured spectrum")
    lab.add_argument("--teacher", type=Path, nargs="+", required=True,
                     help="graph teacher folder(s) and/or predictor folders; labels are their mean (sqrt space)")
    lab.add_argument("--out", type=Path, required=True)
    lab.add_argument("--sources", nargs="*", default=["massbank", "neims"], choices=SOURCES)
    lab.add_argument("--smiles-file", type=Path, nargs="*", default=[],
                     help="more structures: one SMILES per line, or a CSV/TSV with a 'smiles' column")
    lab.add_argument("--moses-max", type=int, default=100_000)
    lab.add_argument("--qm9-max", type=int, default=20_000)
    lab.add_argument("--part-size", type=int, default=5000)
    lab.add_argument("--threads", type=int, default=1)
    lab.add_argument("--jobs", type=int, default=1)
    return p.parse_args(argv)


def run_train(args) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    featurizer = FeaturizerSettings(n_bits=args.n_bits, extra=tuple(args.extra))
    table, n_extra = training_table(featurizer, extra_min_ev=args.extra_data_min_ev, n_jobs=args.jobs)
    t0 = time.monotonic()
    graphs = graphs_for(table.smiles)
    log.info("%d graphs in %.1f s", len(graphs), time.monotonic() - t0)
    teacher = new_teacher(featurizer, hidden=args.hidden, layers=args.layers, dropout=args.dropout,
                          head_hidden=tuple(args.head_hidden), head_dropout=args.head_dropout)
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             weight_decay=args.weight_decay, patience=args.patience,
                             max_minutes=args.max_minutes, seed=args.seed, loss=LossSettings())
    result = train(teacher, table, settings, graphs=graphs)
    info = {"best_epoch": result["best_epoch"], "best_val_loss": round(result["best_val_loss"], 5),
            "n_train": result["n_train"], "n_validation": result["n_validation"], "n_extra_spectra": n_extra,
            "minutes": round(result["minutes"], 1),
            "n_parameters": sum(p.numel() for p in teacher.parameters()),
            "command": "PYTHONPATH=. python data_prep/train_teacher.py " + " ".join(sys.argv[1:])}
    save_teacher(teacher, featurizer, args.out, info)
    write_json(args.out / "training_history.json", result["history"])
    print(f"saved teacher {args.out}: best epoch {result['best_epoch']}, validation loss "
          f"{result['best_val_loss']:.4f}, {result['minutes']:.1f} min")
    return 0


def _read_column(path: Path, column: str) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as handle:
        delimiter = "\t" if path.suffix == ".tsv" else ","
        return [row[column] for row in csv.DictReader(handle, delimiter=delimiter) if row.get(column)]


def read_smiles_file(path: Path) -> list[str]:
    """One SMILES per line, or a delimited file whose header has a `smiles` column (any case)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return []
    delimiter = "\t" if "\t" in lines[0] else ","
    header = [h.strip().lower() for h in lines[0].split(delimiter)]
    if "smiles" not in header:
        return [line.strip() for line in lines if line.strip()]
    col = header.index("smiles")
    rows = csv.reader(lines[1:], delimiter=delimiter)
    return [row[col].strip() for row in rows if len(row) > col and row[col].strip()]


def candidate_smiles(sources: list[str], moses_max: int, qm9_max: int,
                     smiles_files: tuple[Path, ...] = ()) -> list[str]:
    """Structures in a fixed order: MassBank (all records), FastEI's NEIMS molecules, then seeded samples."""
    out: list[str] = []
    for path in smiles_files:
        out += read_smiles_file(path)
    for source in sources:
        if source == "massbank":
            out += _read_column(shared_path("molecules", "massbank_all_structures.tsv"), "smiles")
        elif source == "neims":
            out += _read_column(shared_path("fastei", "NEIMS_test_11499molecules.csv"), "smiles")
        else:
            name, column, limit = {"moses": ("moses_train.csv.gz", "SMILES", moses_max),
                                   "qm9": ("qm9_smiles.csv", "smiles", qm9_max)}[source]
            smiles = _read_column(shared_path("molecules", name), column)
            random.Random(0).shuffle(smiles)
            out += smiles[:limit]
    return out


def load_teachers(paths: list[Path]) -> tuple[list[Labeller], FeaturizerSettings]:
    """Graph teachers and/or student predictors (an ensemble teacher), all on one featuriser."""
    from llm4ms.errors import ConfigError

    try:
        teachers = [Labeller.load(path) for path in paths]
    except ConfigError as err:
        raise SystemExit(str(err)) from None
    for path, teacher in zip(paths, teachers):
        if teacher.featurizer != teachers[0].featurizer:
            raise SystemExit(f"{path}: another featuriser than {paths[0]}")
    return teachers, teachers[0].featurizer


def run_label(args) -> int:
    torch.set_num_threads(args.threads)
    teachers, featurizer = load_teachers(args.teacher)
    smiles = candidate_smiles(args.sources, args.moses_max, args.qm9_max, tuple(args.smiles_file))
    args.out.mkdir(parents=True, exist_ok=True)
    log.info("%d candidate structures from %s", len(smiles), ", ".join(args.sources + list(map(str, args.smiles_file))))
    seen: set[str] = set()
    n_parts = (len(smiles) + args.part_size - 1) // args.part_size
    written = 0
    for k in range(n_parts):
        path = args.out / f"part-{k:04d}.npz"
        if path.is_file():  # resume: a written part only adds its keys to what has been seen
            with np.load(path, allow_pickle=False) as part:
                seen.update(part["keys"].tolist())
            continue
        chunk = smiles[k * args.part_size:(k + 1) * args.part_size]
        items = featurize_many(chunk, featurizer, n_jobs=args.jobs)
        rows = []
        for item in items:
            key = (item.metadata.get("inchikey") or "")[:14] if item.ok else ""
            if key and key not in seen and compound_split(key) == "train":
                seen.add(key)
                rows.append(item)
        t0 = time.monotonic()
        if not rows:
            continue
        x = np.stack([r.features for r in rows]).astype(np.float32)
        m = np.asarray([r.nominal_mass for r in rows], dtype=np.int64)
        graphs = graphs_for([r.metadata["smiles"] for r in rows]) if any(t.uses_graphs for t in teachers) else None
        y = torch.stack([t.predict(x, m, graphs) for t in teachers]).mean(dim=0).numpy()
        y /= np.maximum(y.max(axis=1, keepdims=True), 1e-12)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, keys=np.asarray([r.metadata["inchikey"][:14] for r in rows]),
                         smiles=np.asarray([r.metadata["smiles"] for r in rows]), features=x.astype(np.float16),
                         masses=m, targets=y.astype(np.float16),
                         featurizer=np.asarray(json.dumps(featurizer.to_dict())))
        written += len(rows)
        log.info("part %d/%d: %d rows in %.1f s", k + 1, n_parts, len(rows), time.monotonic() - t0)
    write_json(args.out / "labels.json", {"teachers": [str(t) for t in args.teacher], "sources": args.sources,
                                          "smiles_files": [p.name for p in args.smiles_file],
                                          "moses_max": args.moses_max, "qm9_max": args.qm9_max,
                                          "n_unique_train_structures": len(seen)})
    print(f"labelled {len(seen)} TRAIN-split structures into {args.out} ({written} new this run)")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run_train(args) if args.step == "train" else run_label(args)


if __name__ == "__main__":
    sys.exit(main())
