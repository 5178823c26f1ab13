"""Read molecule lists (.smi, .csv, .tsv, optionally .gz) as a stream of rows (row number, SMILES, id, name).

Bad chemistry is the predictor's business (it reports a reason per row); this module only refuses files it
cannot read at all (unknown extension, missing column), with one line that names the file.
"""
from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Optional

from llm4ms.errors import ConfigError

FORMATS = {".smi": "smi", ".smiles": "smi", ".txt": "smi", ".csv": "csv", ".tsv": "tsv"}
_SMILES_NAMES = ("smiles", "canonical_smiles", "isomeric_smiles", "smi")


@dataclass(frozen=True)
class MoleculeRow:
    row: int  # 1-based data row (line number for .smi)
    smiles: str
    id: Optional[str] = None
    name: Optional[str] = None


def input_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise ConfigError(f"{path}: unknown molecule file type (use .smi, .csv or .tsv, optionally .gz)")
    return fmt


def _open(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_molecules(path: str | Path, smiles_column: str = "smiles", id_column: Optional[str] = None,
                   name_column: Optional[str] = None) -> Iterator[MoleculeRow]:
    """Stream rows; for tables, columns are matched case-insensitively ('id'/'name' used if present)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    fmt = input_format(path)
    if fmt == "smi":
        yield from _read_smi(path)
    else:
        yield from _read_table(path, "\t" if fmt == "tsv" else ",", smiles_column, id_column, name_column)


def _read_smi(path: Path) -> Iterator[MoleculeRow]:
    """`SMILES [name ...]` per line; '#' comments and a 'smiles ...' header line are skipped."""
    with _open(path) as handle:
        for lineno, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split(None, 1)
            if lineno == 1 and parts[0].lower() in _SMILES_NAMES:
                continue
            label = parts[1].strip() if len(parts) > 1 else None
            yield MoleculeRow(row=lineno, smiles=parts[0], id=label, name=label)


def _column(fields: list[str], wanted: Optional[str], path: Path, role: str,
            fallbacks: tuple[str, ...] = (), required: bool = False) -> Optional[str]:
    lower = {f.strip().lower(): f for f in fields}
    for name in ((wanted,) if wanted else fallbacks):
        if name and name.lower() in lower:
            return lower[name.lower()]
    if wanted or required:
        raise ConfigError(f"{path}: no {role} column {wanted or fallbacks[0]!r} (columns: {', '.join(fields)})")
    return None


def _read_table(path: Path, delimiter: str, smiles_column: str, id_column: Optional[str],
                name_column: Optional[str]) -> Iterator[MoleculeRow]:
    with _open(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        fallbacks = (smiles_column,) + _SMILES_NAMES if smiles_column.lower() == "smiles" else (smiles_column,)
        s_col = _column(header, smiles_column if smiles_column.lower() != "smiles" else None, path, "SMILES",
                        fallbacks, required=True)
        i_col = _column(header, id_column, path, "id", ("id", "identifier", "db#"))
        n_col = _column(header, name_column, path, "name", ("name", "compound_name"))
        index = {name: k for k, name in enumerate(header)}
        for row_no, values in enumerate(reader, start=1):
            if not values or all(not v.strip() for v in values):
                continue

            def pick(col: Optional[str]) -> Optional[str]:
                if col is None or index[col] >= len(values):
                    return None
                return values[index[col]].strip() or None

            yield MoleculeRow(row=row_no, smiles=pick(s_col) or "", id=pick(i_col), name=pick(n_col))
