"""The candidates' structure fingerprints, computed once per library and kept beside it.

The learned re-ranker compares the fingerprint the query's spectrum suggests with each candidate's structure
(`llm4ms.fingerprint_model`). RDKit needs ~0.8 ms per SMILES (MACCS keys are most of it), 40 ms per query for its
50 candidates: most of a search's time. For a library the bits are computed once (`llm4ms embed` / `llm4ms index`,
processes in parallel, resumable in parts) and read back packed, 149 bytes a spectrum (1 M spectra: 149 MB, memory-mapped).

Layout: ``structures/`` in the library folder with ``bits.npy`` (n, bytes) uint8 packed bits, ``parsed.npy`` (n,)
bool and ``key.json`` written last; its key is derived from the metadata table's checksum (the SMILES live there)
and the fingerprint settings, so a changed library or fingerprint recipe is never served stale bits.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.fingerprint_model import FingerprintConfig, structure_bits
from llm4ms.utils import atomic_path, write_json

log = logging.getLogger(__name__)

FOLDER = "structures"
#: `Library.prepare_search` (``llm4ms embed`` / ``llm4ms index``) keeps the bits of libraries above this size. Smaller
#: ones compute them per candidate (cached in memory): RDKit costs ~0.8 ms a SMILES, so a first batch of 200 queries
#: against 100,000 spectra spent ~8 s on it (40 ms a query; 20 vs 73 queries/s, benchmarks/RESULTS.md §5)
KEEP_ABOVE = 1_000
PART = 20_000  # SMILES per resumable part


class StructureBits:
    """Packed fingerprint bits of every library spectrum (memory-mapped)."""

    def __init__(self, bits: np.ndarray, parsed: np.ndarray, n_outputs: int) -> None:
        self.bits, self.parsed, self.n_outputs = bits, parsed, n_outputs

    def __call__(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((n, n_outputs) float32 bits, (n,) bool parsed) of library rows `indices` (as `fingerprints` gives)."""
        indices = np.asarray(indices, dtype=np.int64)
        order = np.argsort(indices)
        packed = np.empty((indices.size, self.bits.shape[1]), dtype=np.uint8)
        packed[order] = self.bits[indices[order]]
        out = np.unpackbits(packed, axis=1, count=self.n_outputs).astype(np.float32)
        return out, np.asarray(self.parsed[indices], dtype=bool)


def cache_key(manifest: Any, config: FingerprintConfig) -> str:
    metadata = (manifest.files or {}).get("metadata.parquet")
    text = json.dumps([manifest.count, metadata, asdict(config)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def load_structure_bits(folder: Path, manifest: Any, config: FingerprintConfig) -> Optional[StructureBits]:
    """The library's cached bits for `config`, or None when missing, stale or unreadable."""
    cache = Path(folder) / FOLDER
    try:
        if json.loads((cache / "key.json").read_text()).get("key") != cache_key(manifest, config):
            return None
        bits = np.load(cache / "bits.npy", mmap_mode="r")
        parsed = np.load(cache / "parsed.npy", mmap_mode="r")
    except (OSError, ValueError):
        return None
    if bits.shape != (manifest.count, (config.n_outputs + 7) // 8) or parsed.shape != (manifest.count,):
        return None
    return StructureBits(bits, parsed, config.n_outputs)


def _part(args: tuple[Sequence[Optional[str]], FingerprintConfig]) -> tuple[np.ndarray, np.ndarray]:
    smiles, config = args
    bits = np.zeros((len(smiles), (config.n_outputs + 7) // 8), dtype=np.uint8)
    parsed = np.zeros(len(smiles), dtype=bool)
    for i, text in enumerate(smiles):
        row = structure_bits(text or "", config)
        if row is not None:
            bits[i], parsed[i] = np.packbits(row.astype(bool)), True
    return bits, parsed


def build_structure_bits(folder: Path, manifest: Any, smiles: Sequence[Optional[str]], config: FingerprintConfig,
                         processes: Optional[int] = None, show_progress: Optional[bool] = None) -> StructureBits:
    """Compute and keep the bits of every library SMILES; parts already written by an interrupted run are kept."""
    from llm4ms.progress import Progress

    cache = Path(folder) / FOLDER
    key = cache_key(manifest, config)
    parts = cache / f"parts-{key[:16]}"
    parts.mkdir(parents=True, exist_ok=True)
    todo = [start for start in range(0, len(smiles), PART) if not (parts / f"{start:012d}.npz").is_file()]
    processes = processes or max(1, min(len(todo), os.cpu_count() or 1))
    jobs = ((list(smiles[start:start + PART]), config) for start in todo)
    done = len(smiles) - sum(min(PART, len(smiles) - start) for start in todo)
    with ProcessPoolExecutor(processes) if processes > 1 else _Serial() as pool, \
            Progress(len(smiles), "structure fingerprints", "structures", show_progress, initial=done) as progress:
        for start, (bits, parsed) in zip(todo, pool.map(_part, jobs)):
            with atomic_path(parts / f"{start:012d}.npz") as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, bits=bits, parsed=parsed)
            progress.update(len(parsed))
    (cache / "key.json").unlink(missing_ok=True)  # the bits change below: no moment with a key over other bits
    loaded = [np.load(parts / f"{start:012d}.npz") for start in range(0, len(smiles), PART)]
    for name in ("bits", "parsed"):
        with atomic_path(cache / f"{name}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, np.concatenate([part[name] for part in loaded]) if loaded else
                        np.zeros((0, (config.n_outputs + 7) // 8) if name == "bits" else 0,
                                 dtype=np.uint8 if name == "bits" else bool))
    write_json(cache / "key.json", {"key": key, "spectra": len(smiles)})
    shutil.rmtree(parts, ignore_errors=True)
    result = load_structure_bits(folder, manifest, config)
    assert result is not None
    return result


class _Serial:
    """`ProcessPoolExecutor`'s map in this process (one core, or tests)."""

    def __enter__(self) -> "_Serial":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @staticmethod
    def map(fn: Any, jobs: Any):
        return map(fn, jobs)
