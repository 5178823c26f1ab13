"""The embedding store: a library folder on disk that is written atomically and resumes after interruption.

Layout of a library folder::

    manifest.json         what is complete, the model identity, source file, counts, index spec
    shards/000000.npz     per-chunk embeddings + peaks while building (deleted once consolidated)
    shards/000000.jsonl   per-chunk metadata rows
    embeddings.npy        (n, d) float32 or float16, memory-mappable
    metadata.parquet      one row per spectrum: id, name, inchikey, smiles, formula, mass, ...
    peaks_mz.npy, peaks_intensity.npy, peaks_offsets.npy   all peaks, for mirror plots and re-ranking
    index.faiss           the search index

The manifest is the single source of truth: a shard exists only once the manifest lists it, and the
manifest is replaced atomically after each shard, so a killed run loses at most the chunk in flight.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from llm4ms import __version__
from llm4ms.errors import ConfigError, Llm4msError, ModelMismatchError
from llm4ms.spectrum import Spectrum
from llm4ms.utils import atomic_path, read_json, write_json

log = logging.getLogger(__name__)

FORMAT_NAME = "llm4ms-library"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

#: Metadata columns kept per library spectrum (the hit table shows these).
METADATA_COLUMNS = ("id", "name", "inchikey", "smiles", "formula", "mass", "precursor_mz",
                    "retention_index", "license", "authors", "source_record")


@dataclass
class Manifest:
    """What a library folder holds and how far its build has got."""

    model: dict[str, Any]
    dtype: str = "float32"
    chunk_size: int = 4096
    source: Optional[dict[str, Any]] = None
    shards: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    skipped: int = 0
    empty: int = 0
    complete: bool = False
    consolidated: bool = False
    index: Optional[dict[str, Any]] = None
    shard: Optional[list[int]] = None  # [index, count] for one shard of a distributed build
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    llm4ms_version: str = __version__
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    def save(self, folder: Path) -> None:
        write_json(folder / MANIFEST, asdict(self))

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        path = folder / MANIFEST
        if not path.exists():
            raise Llm4msError(f"{folder}: not an llm4ms library (no {MANIFEST}); build one with `llm4ms embed`")
        try:
            data = read_json(path)
        except json.JSONDecodeError as err:
            raise Llm4msError(f"{path}: unreadable manifest ({err})") from err
        if data.get("format") != FORMAT_NAME:
            raise Llm4msError(f"{path}: not an llm4ms library manifest")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise Llm4msError(f"{path}: library format {data['format_version']} is newer than this llm4ms "
                              f"understands ({FORMAT_VERSION}); upgrade llm4ms")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def source_fingerprint(path: str | Path) -> dict[str, Any]:
    """Identify an input file cheaply (path, size, mtime) so a resumed build knows it is the same input."""
    p = Path(path)
    st = p.stat()
    return {"path": str(p.resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}


def metadata_row(spectrum: Spectrum, source_record: int) -> dict[str, Any]:
    """The stored metadata of one library spectrum."""
    mass = spectrum.molecular_mass
    ri = spectrum.get("retention_index")
    try:
        ri = float(ri) if ri is not None else None
    except (TypeError, ValueError):
        ri = None
    return {
        "id": _str(spectrum.id) or str(source_record),
        "name": _str(spectrum.name),
        "inchikey": _str(spectrum.inchikey),
        "smiles": _str(spectrum.smiles),
        "formula": _str(spectrum.formula),
        "mass": float(mass) if mass is not None else None,
        "precursor_mz": spectrum.precursor_mz,
        "retention_index": ri,
        "license": _str(spectrum.get("license")),
        "authors": _str(spectrum.get("authors")),
        "source_record": int(source_record),
    }


def _str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


class StoreWriter:
    """Builds a library folder chunk by chunk; rerunning the same build continues where it stopped."""

    def __init__(self, folder: str | Path, model_info: dict[str, Any], source: Optional[dict[str, Any]] = None,
                 dtype: str = "float32", chunk_size: int = 4096, overwrite: bool = False,
                 shard: Optional[tuple[int, int]] = None) -> None:
        if dtype not in ("float32", "float16"):
            raise ConfigError(f"embedding dtype must be float32 or float16, not {dtype!r}")
        self.folder = Path(folder)
        if overwrite and self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "shards").mkdir(exist_ok=True)
        if (self.folder / MANIFEST).exists():
            manifest = Manifest.load(self.folder)
            self._check_resumable(manifest, model_info, source, dtype)
            self.manifest = manifest
            self.resumed = manifest.count > 0 or manifest.complete
        else:
            self.manifest = Manifest(model=model_info, dtype=dtype, chunk_size=chunk_size, source=source,
                                     shard=list(shard) if shard else None)
            self.manifest.save(self.folder)
            self.resumed = False

    def _check_resumable(self, manifest: Manifest, model_info: dict[str, Any],
                         source: Optional[dict[str, Any]], dtype: str) -> None:
        where = self.folder
        if manifest.model.get("identity") != model_info.get("identity"):
            raise ModelMismatchError(
                f"{where}: this library was embedded with model {manifest.model.get('reference')!r} "
                f"(identity {str(manifest.model.get('identity'))[:12]}), not with the model given now "
                f"({model_info.get('reference')!r}); use --overwrite to rebuild or another --out folder")
        if source and manifest.source and source != manifest.source:
            raise Llm4msError(f"{where}: this library was built from {manifest.source.get('path')} "
                              f"(size {manifest.source.get('size')}), which differs from the input now; "
                              "use --overwrite to rebuild or another --out folder")
        if manifest.dtype != dtype:
            raise Llm4msError(f"{where}: library stores {manifest.dtype} embeddings, not {dtype}; use --overwrite")

    @property
    def done(self) -> int:
        """Spectra already embedded (a resumed stream skips this many)."""
        return self.manifest.count

    def add_chunk(self, embeddings: np.ndarray, spectra: list[Spectrum], records: list[int]) -> None:
        """Persist one chunk (embeddings + peaks + metadata) and record it in the manifest.

        `records` are the 1-based positions of the spectra in the input stream (their `source_record`).
        """
        if not len(spectra) == embeddings.shape[0] == len(records):
            raise ValueError("embeddings, spectra and records differ in length")
        rows = [metadata_row(spectrum, record) for spectrum, record in zip(spectra, records)]
        self.add_rows(embeddings, [s.mz for s in spectra], [s.intensities for s in spectra], rows)

    def add_rows(self, embeddings: np.ndarray, mz: list[np.ndarray], intensities: list[np.ndarray],
                 rows: list[dict[str, Any]]) -> None:
        """Persist one chunk given as arrays and metadata rows (what `add_chunk` and merges write)."""
        number = len(self.manifest.shards)
        stem = f"shards/{number:06d}"
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([m.size for m in mz], out=offsets[1:])
        flat_mz = np.concatenate(mz).astype(np.float32) if rows else np.zeros(0, np.float32)
        flat_int = np.concatenate(intensities).astype(np.float32) if rows else np.zeros(0, np.float32)
        with atomic_path(self.folder / f"{stem}.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, embeddings=embeddings.astype(self.manifest.dtype), mz=flat_mz,
                         intensity=flat_int, offsets=offsets)
        with atomic_path(self.folder / f"{stem}.jsonl") as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False))
                    handle.write("\n")
        self.manifest.shards.append({"stem": stem, "count": len(rows), "peaks": int(offsets[-1])})
        self.manifest.count += len(rows)
        self.manifest.save(self.folder)

    def finish(self, skipped: int = 0, empty: int = 0, keep_shards: bool = False) -> None:
        """Consolidate shards into memory-mappable arrays + parquet, then mark the library complete."""
        self.manifest.skipped = skipped
        self.manifest.empty = empty
        if self.manifest.count == 0:
            raise Llm4msError(f"{self.folder}: no spectra were embedded (the input held no usable spectrum)")
        self._consolidate()
        self.manifest.consolidated = True
        self.manifest.complete = True
        self.manifest.save(self.folder)
        if not keep_shards:
            shutil.rmtree(self.folder / "shards", ignore_errors=True)

    def _consolidate(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        n, dim = self.manifest.count, int(self.manifest.model["dim"])
        n_peaks = sum(int(s["peaks"]) for s in self.manifest.shards)
        with atomic_path(self.folder / "embeddings.npy") as emb_tmp, \
                atomic_path(self.folder / "peaks_mz.npy") as mz_tmp, \
                atomic_path(self.folder / "peaks_intensity.npy") as int_tmp, \
                atomic_path(self.folder / "peaks_offsets.npy") as off_tmp, \
                atomic_path(self.folder / "metadata.parquet") as meta_tmp:
            emb = np.lib.format.open_memmap(emb_tmp, mode="w+", dtype=self.manifest.dtype, shape=(n, dim))
            mz_out = np.lib.format.open_memmap(mz_tmp, mode="w+", dtype=np.float32, shape=(n_peaks,))
            int_out = np.lib.format.open_memmap(int_tmp, mode="w+", dtype=np.float32, shape=(n_peaks,))
            offsets = np.zeros(n + 1, dtype=np.int64)
            schema = pa.schema([(c, pa.string()) if c not in ("mass", "precursor_mz", "retention_index",
                                                              "source_record")
                                else (c, pa.int64() if c == "source_record" else pa.float64())
                                for c in METADATA_COLUMNS])
            row, peak = 0, 0
            with pq.ParquetWriter(meta_tmp, schema) as writer:
                for shard in self.manifest.shards:
                    stem = self.folder / shard["stem"]
                    with np.load(f"{stem}.npz") as data:
                        count = data["embeddings"].shape[0]
                        emb[row:row + count] = data["embeddings"]
                        p = data["mz"].shape[0]
                        mz_out[peak:peak + p] = data["mz"]
                        int_out[peak:peak + p] = data["intensity"]
                        offsets[row + 1:row + count + 1] = data["offsets"][1:] + peak
                    rows = [json.loads(line) for line in open(f"{stem}.jsonl", encoding="utf-8")]
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                    row += count
                    peak += p
            emb.flush()
            mz_out.flush()
            int_out.flush()
            del emb, mz_out, int_out
            with open(off_tmp, "wb") as handle:  # a handle: np.save would append .npy to a path
                np.save(handle, offsets)


def chunked(items: Iterable[Spectrum], size: int) -> Iterator[list[Spectrum]]:
    """Group a stream into lists of at most `size` items."""
    chunk: list[Spectrum] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
