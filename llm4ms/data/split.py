"""Split compounds (InChIKey first block) into train / validation / test, reproducibly.

The split is a pure function of the InChIKey first block and a salt, so every script, recipe and
benchmark agrees on it without coordination, and no test compound can leak into training. It is also
written down as a TSV by ``data_prep/make_split.py`` so that anyone can audit it.
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Iterable, Mapping

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
DEFAULT_SALT = "llm4ms-split-v1"


def compound_split(inchikey14: str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
                   salt: str = DEFAULT_SALT) -> str:
    """Return 'train', 'validation' or 'test' for a compound, from a hash of its InChIKey first block."""
    if not inchikey14:
        raise ValueError("a compound split needs an InChIKey first block")
    digest = hashlib.sha256(f"{salt}:{inchikey14[:14].upper()}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    train, valid, _ = fractions
    if u < train:
        return "train"
    if u < train + valid:
        return "validation"
    return "test"


def write_split(inchikeys14: Iterable[str], path: str | Path, **kwargs) -> dict[str, int]:
    """Write `inchikey14<TAB>split` rows (sorted) and return the count per split."""
    from llm4ms.utils import atomic_open

    keys = sorted({k[:14].upper() for k in inchikeys14 if k})
    counts = {s: 0 for s in SPLITS}
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["inchikey14", "split"])
        for key in keys:
            split = compound_split(key, **kwargs)
            counts[split] += 1
            writer.writerow([key, split])
    return counts


def load_split(path: str | Path) -> Mapping[str, str]:
    """Read a split file written by `write_split` into {inchikey14: split}."""
    with open(path, encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return {row["inchikey14"]: row["split"] for row in reader}
