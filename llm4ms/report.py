"""Hit tables out: CSV, TSV, JSON files, and a readable table for the terminal."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Sequence

from llm4ms.errors import ConfigError
from llm4ms.library.hits import HIT_COLUMNS, Hit
from llm4ms.utils import atomic_open

HIT_FORMATS = (".csv", ".tsv", ".json")


def write_hits(results: Sequence[Sequence[Hit]], path: str | Path) -> int:
    """Write one row per (query, rank) to `path` (format from its suffix); returns the number of rows."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in HIT_FORMATS:
        raise ConfigError(f"{path}: unknown output format {suffix!r}; use one of {', '.join(HIT_FORMATS)}")
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        return write_hits_to(results, handle, suffix[1:])


def write_hits_to(results: Sequence[Sequence[Hit]], handle: IO[str], format: str = "csv") -> int:
    """Write one row per (query, rank) to a text stream as ``csv``, ``tsv`` or ``json``; returns the row count.

    `write_hits` (files) and the web app's CSV download (`io.StringIO`) both write through here. Open files
    with ``newline=""``: rows end in ``\\n`` as written.
    """
    if "." + format not in HIT_FORMATS:
        raise ConfigError(f"unknown output format {format!r}; use one of {', '.join(HIT_FORMATS)}")
    rows = [hit.to_row() for hits in results for hit in hits]
    if format == "json":
        json.dump({"columns": list(HIT_COLUMNS), "hits": rows}, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
        return len(rows)
    writer = csv.DictWriter(handle, fieldnames=list(HIT_COLUMNS), delimiter="\t" if format == "tsv" else ",",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else (f"{v:.6f}" if k == "score" else v)) for k, v in row.items()})
    return len(rows)


def format_hit_table(results: Sequence[Sequence[Hit]], name_width: int = 40) -> str:
    """A plain-text table per query: rank, score, name, formula, mass, InChIKey; plus precursor m/z and adduct
    when a hit of that query has them (MS/MS libraries)."""
    lines: list[str] = []
    for hits in results:
        if not hits:
            continue
        first = hits[0]
        label = first.query_name or first.query_id or f"query {first.query_index + 1}"
        msms = any(hit.precursor_mz is not None or hit.adduct for hit in hits)
        lines.append(f"Query {first.query_index + 1}: {label}")
        extra = f" {'precursor':>10}  {'adduct':<10}" if msms else ""
        lines.append(f"  {'rank':>4}  {'score':>6}  {'name':<{name_width}}  {'formula':<14} {'mass':>9}{extra}"
                     "  inchikey")
        for hit in hits:
            name = (hit.name or hit.id or "")[:name_width]
            mass = f"{hit.mass:.4f}" if hit.mass is not None else ""
            if msms:
                precursor = f"{hit.precursor_mz:.4f}" if hit.precursor_mz is not None else ""
                extra = f" {precursor:>10}  {(hit.adduct or ''):<10}"
            lines.append(f"  {hit.rank:>4}  {hit.score:6.3f}  {name:<{name_width}}  {(hit.formula or ''):<14} "
                         f"{mass:>9}{extra}  {hit.inchikey or ''}")
        lines.append("")
    if not lines:
        return "no hits\n"
    return "\n".join(lines)
