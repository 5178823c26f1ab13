"""Predict a library from a big molecule list: chunked, resumable, atomic output.

Layout while running: `<out>.parts/` holds `chunk_000000.msp` (+ `.rejects.tsv`) per chunk of input rows and
`progress.json` (what input and settings the parts belong to, and which chunks are complete). A rerun of the
same command skips complete chunks; the output file is assembled from the parts and renamed into place, and
the parts folder is removed once the whole input is done.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import json
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from llm4ms.errors import ConfigError
from llm4ms.io import write_msp
from llm4ms.predict.inputs import MoleculeRow, input_format, read_molecules
from llm4ms.predict.predictor import EIPredictor, OutputSettings
from llm4ms.utils import atomic_open, read_json, write_json

PROGRESS = "progress.json"


@dataclass
class BatchResult:
    read: int = 0
    predicted: int = 0
    skipped: Counter = field(default_factory=Counter)
    complete: bool = False  # the whole input was processed
    seconds: float = 0.0
    predicted_this_run: int = 0

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
        return (f"read {self.read}, predicted {self.predicted}, skipped {skipped}"
                + (f" ({detail})" if detail else ""))


def _chunks(rows: Iterable[MoleculeRow], size: int) -> Iterator[list[MoleculeRow]]:
    it = iter(rows)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


#: OutputSettings fields added after the first release (predictor format 2)
LATER_OUTPUT_SETTINGS = ("isotope_envelope", "confidence")


def _output_settings(predictor: EIPredictor) -> dict:
    """Output settings that shape the MSP; settings added later count only when changed from their default,
    so parts written before they existed still resume."""
    defaults = OutputSettings()
    return {k: v for k, v in asdict(predictor.output).items()
            if k not in LATER_OUTPUT_SETTINGS or v != getattr(defaults, k)}


def _signature(path: Path, predictor: EIPredictor, chunk_size: int, columns: tuple) -> dict:
    stat = path.stat()
    settings = json.dumps(_output_settings(predictor), sort_keys=True).encode()
    return {"input": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "predictor": predictor.identity, "chunk_size": chunk_size, "columns": list(columns),
            "output": hashlib.sha256(settings).hexdigest()[:8]}


def predict_file(predictor: EIPredictor, smiles_path: str | Path, out_path: str | Path,
                 smiles_column: str = "smiles", id_column: Optional[str] = None,
                 name_column: Optional[str] = None, batch_size: int = 256, n_jobs: int = 1,
                 limit: Optional[int] = None, chunk_size: int = 10000, rejects_path: Optional[Path] = None,
                 restart: bool = False, progress: Optional[bool] = None, total: Optional[int] = None
                 ) -> BatchResult:
    """Predict every row of `smiles_path` into the MSP `out_path`; rerun to resume after an interruption.

    `limit` stops after that many input rows (the output then holds those rows; a rerun without it continues).
    `progress`: False shows nothing; otherwise a bar with total and ETA on a terminal, INFO log lines every
    20 s elsewhere. `total` (input rows) is counted from the file when not given.
    """
    from llm4ms.progress import Progress

    src, out = Path(smiles_path), Path(out_path)
    if not src.is_file():
        raise ConfigError(f"{src}: no such molecule file")
    input_format(src)  # unknown extensions fail before any work
    parts = out.with_name(out.name + ".parts")
    signature = _signature(src, predictor, chunk_size, (smiles_column, id_column, name_column))
    state = _load_state(parts, signature, restart)
    rows: Iterable[MoleculeRow] = read_molecules(src, smiles_column, id_column, name_column)
    if limit is not None:
        rows = itertools.islice(rows, max(0, limit))
    result = BatchResult()
    t0 = time.monotonic()
    n_chunks = 0
    if progress is not False and total is None:
        total = count_rows(src)
    if limit is not None:
        total = min(total, limit) if total is not None else limit
    bar = Progress(total, desc="predict", unit="molecules", enabled=progress)
    finished = False
    try:
        for k, chunk in enumerate(_chunks(rows, chunk_size)):
            n_chunks = k + 1
            done = state["chunks"].get(str(k))
            if done and done["complete"] and done["rows"] == len(chunk):
                counts = done
            else:
                counts = _run_chunk(predictor, chunk, k, parts, src, batch_size, n_jobs, on_rows=bar.update)
                input_ended = len(chunk) < chunk_size and (limit is None or result.read + len(chunk) < limit)
                counts["complete"] = len(chunk) == chunk_size or input_ended
                state["chunks"][str(k)] = counts
                write_json(parts / PROGRESS, state)
                result.predicted_this_run += counts["predicted"]
            result.read += counts["rows"]
            result.predicted += counts["predicted"]
            result.skipped.update(counts["skipped"])
            if counts is done:
                bar.update(len(chunk))  # a chunk of an earlier run (new chunks report as they go)
        finished = True
    finally:
        bar.close(finished=finished)
    limited = limit is not None and result.read >= limit
    _assemble(parts, n_chunks, out, rejects_path)
    result.complete = not limited
    if result.complete:
        shutil.rmtree(parts, ignore_errors=True)
    result.seconds = time.monotonic() - t0
    return result


def count_rows(path: Path) -> Optional[int]:
    """Data rows of a molecule file, cheaply (non-empty lines, less a table's header): a progress total."""
    import gzip

    try:
        fmt = input_format(path)
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rb") as handle:
            lines = sum(1 for line in handle if line.strip() and not line.startswith(b"#"))
    except (OSError, EOFError, ConfigError):
        return None
    return max(0, lines - 1) if fmt in ("csv", "tsv") else lines


def _load_state(parts: Path, signature: dict, restart: bool) -> dict:
    progress = parts / PROGRESS
    if restart and parts.exists():
        shutil.rmtree(parts)
    if progress.is_file():
        state = read_json(progress)
        if state.get("signature") != signature:
            raise ConfigError(f"{parts}: left by a run with another input, predictor or settings; "
                              "rerun with --restart (or delete it)")
        return state
    parts.mkdir(parents=True, exist_ok=True)
    state = {"signature": signature, "chunks": {}}
    write_json(progress, state)
    return state


def _run_chunk(predictor: EIPredictor, chunk: list[MoleculeRow], k: int, parts: Path, src: Path,
               batch_size: int, n_jobs: int, on_rows=None) -> dict:
    """Predict one resumable chunk, in steps of about 1000 rows per process so progress moves smoothly."""
    from llm4ms.predict.predictor import PredictionReport

    stem = src.name.split(".")[0]
    step = max(batch_size, 1000 * max(1, n_jobs))
    spectra: list = []
    report = PredictionReport()
    for start in range(0, len(chunk), step):
        rows = chunk[start:start + step]
        ids = [r.id or f"{stem}-{r.row}" for r in rows]
        got, part = predictor.predict_with_report([r.smiles for r in rows], ids=ids, names=[r.name for r in rows],
                                                  batch_size=batch_size, n_jobs=n_jobs)
        spectra += got
        report.reasons += part.reasons
        report.details += part.details
        if on_rows is not None:
            on_rows(len(rows))
    write_msp([s for s in spectra if s is not None], parts / f"chunk_{k:06d}.msp")
    with atomic_open(parts / f"chunk_{k:06d}.rejects.tsv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        for r, reason, detail in zip(chunk, report.reasons, report.details):
            if reason is not None:
                writer.writerow([r.row, r.id or "", r.smiles, reason, detail])
    return {"rows": len(chunk), "predicted": report.n_predicted, "skipped": dict(report.skipped)}


def _assemble(parts: Path, n_chunks: int, out: Path, rejects_path: Optional[Path]) -> None:
    """Concatenate chunk files into the final outputs, each renamed into place atomically."""
    with atomic_open(out, "w", encoding="utf-8") as handle:
        for k in range(n_chunks):
            text = (parts / f"chunk_{k:06d}.msp").read_text(encoding="utf-8")
            if text and not text.endswith("\n\n"):
                text = text.rstrip("\n") + "\n\n"
            handle.write(text)
    if rejects_path is not None:
        with atomic_open(rejects_path, "w", encoding="utf-8") as handle:
            handle.write("row\tid\tsmiles\treason\tdetail\n")
            for k in range(n_chunks):
                handle.write((parts / f"chunk_{k:06d}.rejects.tsv").read_text(encoding="utf-8"))
