"""Training sets on disk: spectra (not texts) as JSON lines, read with `datasets`.

Sets store ``mz``/``intensities`` lists plus ``inchikey14``, ``name`` and ``id`` so any textualizer can
be applied later; MS/MS records also keep ``precursor_mz`` and ``ion_mode`` (textualizers with a precursor
word or neutral losses need them). Triple rows hold ``anchor``/``positive`` records and a ``negatives`` list of records.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum
from llm4ms.utils import atomic_open

#: File names inside a training-set folder written by data_prep/build_training_sets.py.
SET_FILES = {"mntp": "mntp.jsonl", "simcse": "simcse.jsonl", "triples": "supervised_triples.jsonl",
             "validation_queries": "validation_queries.jsonl", "validation_library": "validation_library.jsonl"}


def spectrum_to_record(spectrum: Spectrum) -> dict[str, Any]:
    """A JSON-ready record; m/z rounded to 4 decimals, intensities to 4 significant digits; precursor m/z
    and ion mode only when the spectrum has them (EI sets stay as they were)."""
    record = {"id": spectrum.id, "name": spectrum.name, "inchikey14": spectrum.inchikey14,
              "smiles": spectrum.smiles,
              "mz": [round(float(m), 4) for m in spectrum.mz],
              "intensities": [float(f"{v:.4g}") for v in spectrum.intensities]}
    if spectrum.precursor_mz is not None:
        record["precursor_mz"] = round(float(spectrum.precursor_mz), 5)
    if spectrum.ion_mode:
        record["ion_mode"] = spectrum.ion_mode
    return record


def record_to_spectrum(record: Mapping[str, Any]) -> Spectrum:
    """Inverse of `spectrum_to_record` (the InChIKey first block goes into ``inchikey``)."""
    metadata = {k: record.get(k) for k in ("id", "name", "smiles", "precursor_mz", "ion_mode")
                if record.get(k) is not None}
    if record.get("inchikey14"):
        metadata["inchikey"] = record["inchikey14"]
    return Spectrum(np.asarray(record["mz"], dtype=np.float64),
                    np.asarray(record["intensities"], dtype=np.float64), metadata)


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write rows atomically, one JSON object per line; returns the row count."""
    count = 0
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, separators=(",", ":")) + "\n")
            count += 1
    return count


def load_records(path: str | Path, streaming: bool = False):
    """Load a jsonl (or .arrow / .parquet) set with `datasets`; `streaming` gives an IterableDataset."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: training set not found (build it with data_prep/build_training_sets.py)")
    from datasets import load_dataset

    kind = {".jsonl": "json", ".json": "json", ".arrow": "arrow", ".parquet": "parquet"}.get(path.suffix)
    if kind is None:
        raise ConfigError(f"{path}: unsupported training-set format (use .jsonl, .arrow or .parquet)")
    if path.stat().st_size == 0:
        raise ConfigError(f"{path}: empty training set")
    return load_dataset(kind, data_files=str(path), split="train", streaming=streaming)


def load_spectra(path: str | Path) -> list[Spectrum]:
    """All records of a spectrum set as `Spectrum` objects."""
    return [record_to_spectrum(r) for r in load_records(path)]


def triple_to_record(triple: Mapping[str, Any]) -> dict[str, Any]:
    """A `mining.build_triples` row (Spectrum objects) -> JSON-ready record."""
    return {"anchor_key": triple["anchor_key"], "anchor": spectrum_to_record(triple["anchor"]),
            "positive": spectrum_to_record(triple["positive"]),
            "negatives": [spectrum_to_record(s) for s in triple["negatives"]]}
