"""The layout of a library folder: written atomically and resumably by `StoreWriter`, read back and checked by
`open_complete`. Both sides live here, so the layout has one owner.

Layout of a library folder::

    manifest.json         what is complete, the model identity, source file, counts, index spec, file checksums
    .llm4ms.lock          held (fcntl) by the one process writing the folder; a second writer is refused
    shards/000000.npz     per-chunk embeddings + peaks while building (deleted once complete)
    shards/000000.jsonl   per-chunk metadata rows
    embeddings.npy        (n, d) float32 or float16, memory-mappable
    metadata.parquet      one row per spectrum: id, name, inchikey, smiles, formula, exact_mass, precursor_mz, ...
    peaks_mz.npy, peaks_intensity.npy, peaks_offsets.npy   all peaks, for mirror plots and re-ranking
    index.faiss           the search index (`llm4ms.library.index_file`)

The manifest (`llm4ms.library.manifest`) is the single source of truth: a shard exists only once the manifest
lists it, and the manifest is replaced atomically (data fsynced before the rename) after each shard, so a
killed run loses at most the chunk in flight. A library is marked ``complete`` only after its consolidated
files *and* its index are written; the manifest records the size and a checksum of each file, checked
cheaply at load (size and the first and last MiB; `verify_library` hashes everything). Every way a folder
can be damaged (truncated, garbled, wrong dtype or shape, missing file) is reported as one `Llm4msError`
line naming the folder, what is wrong and how to rebuild it.

Folders of format 1 name the molecular mass column ``mass``; they are read as if it were ``exact_mass``. Folders
written before the MS/MS columns (``precursor_type``, ``ion_mode``; `ADDED_COLUMNS`) are read with those
columns empty.
"""
from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError, Llm4msError, ModelMismatchError
from llm4ms.library.index_file import open_index, write_index
from llm4ms.library.lock import remove_stale_temporaries, writer_lock
from llm4ms.library.manifest import (
    DATA_FILES,
    FORMAT_VERSION,
    INDEX_FILE,
    MANIFEST,
    Manifest,
    file_mismatch,
    file_record,
)
from llm4ms.library.messages import damaged, reason, rebuild_hint
from llm4ms.spectrum import CONFIDENCE_KEY, Spectrum
from llm4ms.utils import atomic_path

log = logging.getLogger(__name__)

#: The molecular mass of a library spectrum: its column, and the `Spectrum` metadata key it is read back as.
MASS_COLUMN = "exact_mass"
#: Metadata columns kept per library spectrum (the hit table shows these).
METADATA_COLUMNS = ("id", "name", "inchikey", "smiles", "formula", MASS_COLUMN, "precursor_mz",
                    "retention_index", "license", "authors", "source_record", "precursor_type", "ion_mode",
                    CONFIDENCE_KEY)
_FLOAT_COLUMNS = (MASS_COLUMN, "precursor_mz", "retention_index", CONFIDENCE_KEY)
#: Columns (and shard row keys) as format 1 named them -> their name now.
LEGACY_COLUMNS = {"mass": MASS_COLUMN}
#: Columns added after folders were first written (MS/MS; the predictor's confidence, which the learned
#: re-ranker reads): an older folder is read with them empty (null).
ADDED_COLUMNS = ("precursor_type", "ion_mode", CONFIDENCE_KEY)


# ---- metadata rows ------------------------------------------------------------------------------------
def metadata_row(spectrum: Spectrum, source_record: int) -> dict[str, Any]:
    """The stored metadata of one library spectrum.

    MS/MS spectra keep their precursor m/z, adduct (``precursor_type``) and ion mode ("positive"/"negative",
    recorded or implied by the adduct: `Spectrum.ion_mode`) for the precursor and ion-mode filters; EI
    spectra leave them empty.
    """
    mass = spectrum.molecular_mass
    ri = _float_or_none(spectrum.get("retention_index"))
    return {
        "id": _str(spectrum.id) or str(source_record),
        "name": _str(spectrum.name),
        "inchikey": _str(spectrum.inchikey),
        "smiles": _str(spectrum.smiles),
        "formula": _str(spectrum.formula),
        MASS_COLUMN: float(mass) if mass is not None else None,
        "precursor_mz": spectrum.precursor_mz,
        "retention_index": ri,
        "license": _str(spectrum.get("license")),
        "authors": _str(spectrum.get("authors")),
        "source_record": int(source_record),
        "precursor_type": _str(spectrum.precursor_type),
        "ion_mode": spectrum.ion_mode,
        CONFIDENCE_KEY: spectrum.prediction_confidence,
    }


def _float_or_none(value: Any) -> Optional[float]:
    try:
        out = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return out if out is not None and np.isfinite(out) else None


def _str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _current_row(row: dict[str, Any]) -> dict[str, Any]:
    """A shard metadata row with its format-1 keys renamed (a build resumed across the rename)."""
    for old, new in LEGACY_COLUMNS.items():
        if old in row and new not in row:
            row[new] = row.pop(old)
    return row


def metadata_schema():
    """The parquet schema of ``metadata.parquet``."""
    import pyarrow as pa

    return pa.schema([(c, pa.int64()) if c == "source_record" else
                      (c, pa.float64()) if c in _FLOAT_COLUMNS else (c, pa.string())
                      for c in METADATA_COLUMNS])


# ---- helpers of a build -------------------------------------------------------------------------------
def source_fingerprint(path: str | Path) -> dict[str, Any]:
    """Identify an input file cheaply (path, size, mtime) so a resumed build knows it is the same input."""
    p = Path(path)
    st = p.stat()
    return {"path": str(p.resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}


def clear_library(folder: Path) -> None:
    """Remove a library's own files (not anything else a user keeps in the folder); hold the lock."""
    for name in (MANIFEST, INDEX_FILE) + DATA_FILES:
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "shards", ignore_errors=True)
    remove_stale_temporaries(folder)


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Group a stream into lists of at most `size` items (the chunks a `StoreWriter` stores)."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---- writing ------------------------------------------------------------------------------------------
class StoreWriter:
    """Builds a library folder chunk by chunk; rerunning the same build continues where it stopped.

    Holds the folder's writer lock from construction until `close` (or `finish`): a second writer on the
    same folder is refused with `LibraryBusy`. Temporaries and unrecorded shard files of a killed run are
    removed when a writer starts.
    """

    def __init__(self, folder: str | Path, model_info: dict[str, Any], source: Optional[dict[str, Any]] = None,
                 dtype: str = "float32", chunk_size: int = 4096, overwrite: bool = False,
                 shard: Optional[tuple[int, int]] = None) -> None:
        if dtype not in ("float32", "float16"):
            raise ConfigError(f"embedding dtype must be float32 or float16, not {dtype!r}")
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise Llm4msError(f"{self.folder}: is a file, not a library folder")
        self._lock: Optional[contextlib.ExitStack] = contextlib.ExitStack()
        self._lock.enter_context(writer_lock(self.folder))
        try:
            if overwrite:
                clear_library(self.folder)
            self._start(model_info, source, dtype, chunk_size, shard)
            self._remove_leftovers()
        except BaseException:
            self.close()
            raise

    def _start(self, model_info: dict[str, Any], source: Optional[dict[str, Any]], dtype: str, chunk_size: int,
               shard: Optional[tuple[int, int]]) -> None:
        """Continue the build the folder's manifest records, or start a new one."""
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

    def close(self) -> None:
        """Release the writer lock (idempotent)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _remove_leftovers(self) -> None:
        """Temporaries and shard files a killed run wrote but never recorded in the manifest."""
        remove_stale_temporaries(self.folder)
        if self.manifest.complete:
            return
        recorded = {entry["stem"].split("/")[-1] for entry in self.manifest.shards}
        shards = self.folder / "shards"
        for path in sorted(shards.iterdir()) if shards.is_dir() else []:
            stem = path.name.split(".")[0]
            if path.suffix in (".npz", ".jsonl") and stem.isdigit() and stem not in recorded:
                path.unlink(missing_ok=True)
                log.info("%s: removed %s, written by an interrupted run after its last recorded chunk",
                         self.folder, path.name)
        for entry in self.manifest.shards:
            stem = self.folder / entry["stem"]
            if not (Path(f"{stem}.npz").is_file() and Path(f"{stem}.jsonl").is_file()):
                raise damaged(self.folder, f"{entry['stem']} is listed in {MANIFEST} but its files are missing",
                              rebuild_hint(self.folder, self.manifest.source))

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
        if self._lock is None:
            raise Llm4msError(f"{self.folder}: this writer is closed")
        dim = int(self.manifest.model["dim"])
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape != (len(rows), dim) or len(mz) != len(rows) \
                or len(intensities) != len(rows):
            raise ValueError(f"a chunk needs ({len(rows)}, {dim}) embeddings and one peak list per row, got "
                             f"{embeddings.shape} and {len(mz)}/{len(intensities)} peak lists")
        stem = f"shards/{len(self.manifest.shards):06d}"
        peaks = self._write_shard(stem, embeddings, mz, intensities, rows)
        self.manifest.shards.append({"stem": stem, "count": len(rows), "peaks": peaks})
        self.manifest.count += len(rows)
        self.manifest.save(self.folder)

    def _write_shard(self, stem: str, embeddings: np.ndarray, mz: list[np.ndarray],
                     intensities: list[np.ndarray], rows: list[dict[str, Any]]) -> int:
        """Write ``STEM.npz`` and ``STEM.jsonl`` atomically; returns the number of peaks stored."""
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
        return int(offsets[-1])

    def finish(self, skipped: int = 0, empty: int = 0, keep_shards: bool = False,
               index: Any = None) -> None:
        """Consolidate shards into memory-mappable arrays + parquet, build the index, then mark complete.

        `index` is an `IndexSpec` or kind name; None builds no index (the shards of a distributed build).
        The manifest says ``complete`` only once every file, the index included, is on disk; a run killed
        before that redoes the consolidation and the index when rerun. Releases the writer lock.
        """
        try:
            self.manifest.skipped = skipped
            self.manifest.empty = empty
            if self.manifest.count == 0:
                raise Llm4msError(f"{self.folder}: no spectra were embedded (the input held no usable spectrum)")
            self._consolidate()
            self.manifest.files = {name: file_record(self.folder / name) for name in DATA_FILES}
            self.manifest.consolidated = True
            self.manifest.format_version = FORMAT_VERSION  # the consolidated files are of this format
            self.manifest.index = None
            self.manifest.save(self.folder)
            if index is not None:
                write_index(self.folder, self.manifest, index)
            self.manifest.complete = True
            self.manifest.save(self.folder)
            if not keep_shards:
                shutil.rmtree(self.folder / "shards", ignore_errors=True)
        finally:
            self.close()

    def _consolidate(self) -> None:
        """Join every shard into the consolidated files, each written atomically."""
        import pyarrow.parquet as pq

        n, dim = self.manifest.count, int(self.manifest.model["dim"])
        n_peaks = sum(int(s["peaks"]) for s in self.manifest.shards)
        with contextlib.ExitStack() as stack:
            tmp = {name: stack.enter_context(atomic_path(self.folder / name)) for name in DATA_FILES}
            arrays = _Consolidation(tmp, self.manifest.dtype, n, dim, n_peaks)
            schema = metadata_schema()
            with pq.ParquetWriter(tmp["metadata.parquet"], schema) as writer:
                for shard in self.manifest.shards:
                    writer.write_table(self._copy_shard(shard, arrays, schema))
            arrays.close()

    def _copy_shard(self, shard: dict[str, Any], arrays: "_Consolidation", schema: Any):
        """Copy one shard's arrays into place and return its metadata rows as a table; damage is one line."""
        import pyarrow as pa

        stem = self.folder / shard["stem"]
        try:
            with np.load(f"{stem}.npz") as data:
                count = data["embeddings"].shape[0]
                peaks = data["mz"].shape[0]
                if count != shard["count"] or peaks != shard["peaks"] or data["offsets"].shape != (count + 1,):
                    raise ValueError("its arrays do not match the manifest")
                arrays.add(data, count, peaks)
            with open(f"{stem}.jsonl", encoding="utf-8") as handle:
                rows = [_current_row(json.loads(line)) for line in handle]
            if len(rows) != count:
                raise ValueError(f"{len(rows)} metadata rows for {count} embeddings")
            return pa.Table.from_pylist(rows, schema=schema)
        except Exception as err:  # a damaged shard: say which, and how to start over
            raise damaged(self.folder, f"{shard['stem']} is damaged ({reason(err)})",
                          rebuild_hint(self.folder, self.manifest.source)) from None


class _Consolidation:
    """The consolidated arrays of a library, filled shard after shard (temporaries until `close`d)."""

    def __init__(self, tmp: dict[str, Path], dtype: str, n: int, dim: int, n_peaks: int) -> None:
        open_memmap = np.lib.format.open_memmap
        self.embeddings = open_memmap(tmp["embeddings.npy"], mode="w+", dtype=dtype, shape=(n, dim))
        self.mz = open_memmap(tmp["peaks_mz.npy"], mode="w+", dtype=np.float32, shape=(n_peaks,))
        self.intensity = open_memmap(tmp["peaks_intensity.npy"], mode="w+", dtype=np.float32, shape=(n_peaks,))
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        self.offsets_path = tmp["peaks_offsets.npy"]
        self.row, self.peak = 0, 0

    def add(self, data: Any, count: int, peaks: int) -> None:
        """Append one shard's embeddings and peaks (`data`: its npz)."""
        row, peak = self.row, self.peak
        self.embeddings[row:row + count] = data["embeddings"]
        self.mz[peak:peak + peaks] = data["mz"]
        self.intensity[peak:peak + peaks] = data["intensity"]
        self.offsets[row + 1:row + count + 1] = data["offsets"][1:] + peak
        self.row, self.peak = row + count, peak + peaks

    def close(self) -> None:
        """Flush the memory maps and write the peak offsets."""
        for array in (self.embeddings, self.mz, self.intensity):
            array.flush()
        del self.embeddings, self.mz, self.intensity
        with open(self.offsets_path, "wb") as handle:  # a handle: np.save would append .npy to a path
            np.save(handle, self.offsets)


# ---- reading ------------------------------------------------------------------------------------------
@dataclass
class LibraryFiles:
    """The checked arrays and metadata table of a complete library."""

    embeddings: np.ndarray
    peaks_mz: np.ndarray
    peaks_intensity: np.ndarray
    peaks_offsets: np.ndarray
    table: Any
    masses: np.ndarray

    def peaks(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(m/z, intensities) of spectrum `i`."""
        start, end = int(self.peaks_offsets[i]), int(self.peaks_offsets[i + 1])
        return np.asarray(self.peaks_mz[start:end]), np.asarray(self.peaks_intensity[start:end])

    def gathered_peaks(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets, m/z, intensities) of spectra `indices`, their peaks concatenated in that order (vectorised:
        scoring a few thousand candidates must not build a few thousand objects)."""
        indices = np.asarray(indices, dtype=np.int64)
        starts = np.asarray(self.peaks_offsets[indices], dtype=np.int64)
        lengths = np.asarray(self.peaks_offsets[indices + 1], dtype=np.int64) - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        position = np.arange(offsets[-1]) - np.repeat(offsets[:-1] - starts, lengths)
        return offsets, np.asarray(self.peaks_mz[position]), np.asarray(self.peaks_intensity[position])

    def row(self, i: int) -> dict[str, Any]:
        """The metadata row of spectrum `i` (the columns of `METADATA_COLUMNS`)."""
        return self.table.slice(int(i), 1).to_pylist()[0]

    def rows(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        if len(indices) == 0:
            return []
        return self.table.take(np.asarray(indices, dtype=np.int64)).to_pylist()

    def source_records(self) -> np.ndarray:
        """The 1-based position of each spectrum in the input it was built from."""
        return np.asarray(self.table.column("source_record").to_numpy())

    def precursors(self) -> np.ndarray:
        """Precursor m/z per spectrum (float64, NaN where unknown: EI spectra)."""
        import pyarrow as pa

        column = self.table.column("precursor_mz").cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(column, dtype=np.float64)

    def ion_modes(self) -> list:
        """Ion mode per spectrum: "positive", "negative" or None."""
        return self.table.column("ion_mode").to_pylist()

    def with_structure(self) -> int:
        """How many spectra have an InChIKey."""
        return len(self.table.column("inchikey").drop_null())


def open_complete(folder: str | Path, mmap: bool = True) -> tuple[Manifest, LibraryFiles]:
    """The manifest and checked files of a complete library folder (one line when incomplete or damaged)."""
    folder = Path(folder)
    manifest = Manifest.load(folder)
    if not manifest.complete:
        raise Llm4msError(f"{folder}: the library build is not complete "
                          f"({manifest.count} spectra embedded so far); rerun `llm4ms embed` to finish it")
    return manifest, open_library_files(folder, manifest, mmap=mmap)


def open_library_files(folder: Path, manifest: Manifest, mmap: bool = True) -> LibraryFiles:
    """Open the consolidated files of a complete library, checking each against the manifest and the others.

    Checks: every file present; size and head/tail checksum as recorded; arrays readable, of the recorded
    dtype and shape (embeddings rows == metadata rows == peak offsets - 1 == manifest count; dim == model
    dim; peak offsets start at 0, never decrease and end at the peak count). Anything wrong is one
    `Llm4msError` line: ``FOLDER: what is wrong; rebuild it with ...``.
    """
    folder = Path(folder)
    hint = rebuild_hint(folder, manifest.source)
    n, dim = int(manifest.count), int(manifest.model["dim"])
    _check_recorded(folder, manifest, hint)
    mode = "r" if mmap else None
    embeddings = _load_array(folder, "embeddings.npy", mode, hint)
    _expect(folder, "embeddings.npy", embeddings, np.dtype(manifest.dtype), (n, dim), hint)
    peaks_mz = _load_array(folder, "peaks_mz.npy", mode, hint)
    _expect(folder, "peaks_mz.npy", peaks_mz, np.dtype(np.float32), None, hint)
    peaks_intensity = _load_array(folder, "peaks_intensity.npy", mode, hint)
    _expect(folder, "peaks_intensity.npy", peaks_intensity, np.dtype(np.float32), peaks_mz.shape, hint)
    offsets = _load_array(folder, "peaks_offsets.npy", None, hint)
    _expect(folder, "peaks_offsets.npy", offsets, np.dtype(np.int64), (n + 1,), hint)
    if offsets[0] != 0 or offsets[-1] != peaks_mz.shape[0] or (n and np.any(np.diff(offsets) < 0)):
        raise damaged(folder, "peaks_offsets.npy is inconsistent with the stored peaks", hint)
    table = _load_table(folder, n, hint)
    try:
        masses = np.asarray(table.column(MASS_COLUMN).to_numpy(zero_copy_only=False), dtype=np.float64)
    except Exception as err:
        raise damaged(folder, f"metadata.parquet: unreadable masses ({reason(err)})", hint) from None
    return LibraryFiles(embeddings, peaks_mz, peaks_intensity, offsets, table, masses)


def _check_recorded(folder: Path, manifest: Manifest, hint: str) -> None:
    """Every data file present, of the size and head/tail checksum the manifest records."""
    for name in DATA_FILES:
        if not (folder / name).is_file():
            raise damaged(folder, f"{name} is missing", hint)
        mismatch = file_mismatch(folder / name, (manifest.files or {}).get(name))
        if mismatch:
            raise damaged(folder, mismatch, hint)


def _load_array(folder: Path, name: str, mmap_mode: Optional[str], hint: str) -> np.ndarray:
    try:
        array = np.load(folder / name, mmap_mode=mmap_mode, allow_pickle=False)
    except Exception as err:  # truncated or garbled .npy: ValueError, EOFError, OSError, UnpicklingError
        raise damaged(folder, f"{name} is unreadable ({reason(err)})", hint) from None
    if not isinstance(array, np.ndarray):
        raise damaged(folder, f"{name} is not a single array", hint)
    return array


def _expect(folder: Path, name: str, array: np.ndarray, dtype: np.dtype, shape: Optional[tuple[int, ...]],
            hint: str) -> None:
    if array.dtype != dtype:
        raise damaged(folder, f"{name} holds {array.dtype} values, not {dtype}", hint)
    if shape is not None and array.shape != tuple(shape):
        raise damaged(folder, f"{name} has shape {array.shape}, expected {tuple(shape)} from the manifest", hint)
    if shape is None and array.ndim != 1:
        raise damaged(folder, f"{name} has shape {array.shape}, expected one dimension", hint)


def _load_table(folder: Path, n: int, hint: str):
    """``metadata.parquet`` with its columns as `metadata_schema` names them (format 1 renamed) and checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = _current_columns(pq.read_table(folder / "metadata.parquet"))
    except Exception as err:  # ArrowInvalid, OSError, ...
        raise damaged(folder, f"metadata.parquet is unreadable ({reason(err)})", hint) from None
    if table.num_rows != n:
        raise damaged(folder, f"metadata.parquet has {table.num_rows} rows, but the library {n} spectra", hint)
    for column in metadata_schema():
        if column.name not in table.column_names:
            raise damaged(folder, f"metadata.parquet has no {column.name!r} column", hint)
        kind = table.schema.field(column.name).type
        ok = kind == column.type or kind == pa.null() or (column.type == pa.string() and kind == pa.large_string())
        if not ok:
            raise damaged(folder, f"metadata.parquet column {column.name!r} holds {kind}, not {column.type}", hint)
    # one contiguous chunk per column: the file holds one row group per shard, and `take` over ~1,000 chunks
    # cost 50 ms per hit list at 1 M spectra (0.6 ms combined; combining once takes 0.4 s there)
    return table.combine_chunks()


def _current_columns(table: Any) -> Any:
    """`table` with the columns format 1 named otherwise renamed (``mass`` -> ``exact_mass``) and the columns
    added since (`ADDED_COLUMNS`) present, empty where an older folder lacks them."""
    import pyarrow as pa

    names = table.column_names
    renamed = [LEGACY_COLUMNS[c] if c in LEGACY_COLUMNS and LEGACY_COLUMNS[c] not in names else c for c in names]
    if renamed != names:
        table = table.rename_columns(renamed)
    for column in ADDED_COLUMNS:
        if column not in table.column_names:
            kind = pa.float64() if column in _FLOAT_COLUMNS else pa.string()
            table = table.append_column(pa.field(column, kind), pa.nulls(table.num_rows, kind))
    return table


def verify_library(folder: str | Path) -> list[str]:
    """Full check of a library folder: everything `open_library_files` checks, plus the full sha256 of each
    file recorded at build time (slow on a large library). Returns the problems found (empty: all good)."""
    folder = Path(folder)
    try:
        manifest = Manifest.load(folder)
        if not manifest.complete:
            return [f"{folder}: the build is not complete; rerun `llm4ms embed` to finish it"]
        open_library_files(folder, manifest, mmap=True)
    except Llm4msError as err:
        return [str(err)]
    problems = []
    for name in DATA_FILES:
        mismatch = file_mismatch(folder / name, (manifest.files or {}).get(name), full=True)
        if mismatch:
            problems.append(str(damaged(folder, mismatch, rebuild_hint(folder, manifest.source))))
    if manifest.index and manifest.shard is None:
        try:
            open_index(folder, manifest)
        except Llm4msError as err:
            problems.append(str(err))
    return problems
