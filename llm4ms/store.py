"""The embedding store: a library folder on disk that is written atomically and resumes after interruption.

Layout of a library folder::

    manifest.json         what is complete, the model identity, source file, counts, index spec, file checksums
    .llm4ms.lock          held (fcntl) by the one process writing the folder; a second writer is refused
    shards/000000.npz     per-chunk embeddings + peaks while building (deleted once complete)
    shards/000000.jsonl   per-chunk metadata rows
    embeddings.npy        (n, d) float32 or float16, memory-mappable
    metadata.parquet      one row per spectrum: id, name, inchikey, smiles, formula, mass, ...
    peaks_mz.npy, peaks_intensity.npy, peaks_offsets.npy   all peaks, for mirror plots and re-ranking
    index.faiss           the search index

The manifest is the single source of truth: a shard exists only once the manifest lists it, and the
manifest is replaced atomically (data fsynced before the rename) after each shard, so a killed run loses at
most the chunk in flight. A library is marked ``complete`` only after its consolidated files *and* its index
are written; the manifest records the size and a checksum of each file, checked cheaply at load (size and
the first and last MiB; `verify_library` hashes everything). Every way a folder can be damaged (truncated,
garbled, wrong dtype or shape, missing file) is reported as one `Llm4msError` line naming the folder, what
is wrong and how to rebuild it.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from llm4ms import __version__
from llm4ms.errors import ConfigError, Llm4msError, ModelMismatchError
from llm4ms.spectrum import Spectrum
from llm4ms.utils import atomic_path, stale_temporaries, write_json

log = logging.getLogger(__name__)

FORMAT_NAME = "llm4ms-library"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LOCK_NAME = ".llm4ms.lock"
INDEX_FILE = "index.faiss"
#: The consolidated files of a complete library (the index is recorded separately, under ``index``).
DATA_FILES = ("embeddings.npy", "peaks_mz.npy", "peaks_intensity.npy", "peaks_offsets.npy", "metadata.parquet")
#: Bytes hashed at each end of a file by the cheap load-time check.
DIGEST_SPAN = 1 << 20

#: Metadata columns kept per library spectrum (the hit table shows these).
METADATA_COLUMNS = ("id", "name", "inchikey", "smiles", "formula", "mass", "precursor_mz",
                    "retention_index", "license", "authors", "source_record")
_FLOAT_COLUMNS = ("mass", "precursor_mz", "retention_index")
_SHARD_STEM = re.compile(r"shards/[0-9]{6}")


class LibraryBusy(Llm4msError):
    """Another process holds the writer lock of a library folder."""


# ---- messages -----------------------------------------------------------------------------------------
def rebuild_hint(folder: str | Path, source: Any = None) -> str:
    """How to rebuild a damaged library (the `embed` command, with the recorded input file when known)."""
    path = source.get("path") if isinstance(source, dict) else None
    spectra = str(path) if isinstance(path, str) and path else "SPECTRA_FILE"
    return f"rebuild it with `llm4ms embed --spectra {spectra} --out {folder} --overwrite`"


def index_hint(folder: str | Path) -> str:
    return f"rebuild the index with `llm4ms index {folder}` (or rerun `llm4ms embed`)"


def _one_line(text: Any, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def damaged(folder: str | Path, what: str, hint: str) -> Llm4msError:
    """The one-line error for a damaged library: ``FOLDER: what is wrong; how to rebuild``."""
    return Llm4msError(f"{folder}: {_one_line(what, 300)}; {hint}")


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if " failed: " in text:  # faiss: "Error in <C++ signature> at <source>: Error: '<check>' failed: <why>"
        text = text.rsplit(" failed: ", 1)[1]
    elif text.startswith("Error in ") and " at " in text:
        text = text.split(": ", 1)[-1] if ": " in text else text
    text = _one_line(text, 160)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# ---- manifest -----------------------------------------------------------------------------------------
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
    files: Optional[dict[str, dict[str, Any]]] = None  # name -> {size, head_tail_sha256, sha256}
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    llm4ms_version: str = __version__
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    def save(self, folder: Path) -> None:
        write_json(folder / MANIFEST, asdict(self))

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            if folder.is_file():
                raise Llm4msError(f"{folder}: is a file, not an llm4ms library folder")
            raise Llm4msError(f"{folder}: not an llm4ms library (no {MANIFEST}); build one with `llm4ms embed`")
        hint = rebuild_hint(folder)
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise damaged(folder, f"cannot read {MANIFEST} ({_reason(err)})", hint) from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise damaged(folder, f"{MANIFEST} is not UTF-8 text (garbled)", hint) from None
        except (ValueError, RecursionError) as err:
            raise damaged(folder, f"{MANIFEST} is not valid JSON ({_reason(err)})", hint) from None
        if not isinstance(data, dict):
            raise damaged(folder, f"{MANIFEST} is not a JSON object", hint)
        if data.get("format") != FORMAT_NAME:
            raise Llm4msError(f"{path}: not an llm4ms library manifest")
        version = data.get("format_version", 0)
        if not _is_int(version):
            raise damaged(folder, f"{MANIFEST}: format_version is not a whole number", hint)
        if version > FORMAT_VERSION:
            raise Llm4msError(f"{path}: library format {version} is newer than this llm4ms "
                              f"understands ({FORMAT_VERSION}); upgrade llm4ms")
        problem = _manifest_problem(data)
        if problem:
            raise damaged(folder, f"{MANIFEST}: {problem}", rebuild_hint(folder, data.get("source")))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _manifest_problem(data: dict[str, Any]) -> Optional[str]:
    """What is wrong with the fields of a parsed manifest (None if nothing): types, ranges, file names."""
    from llm4ms.index import INDEX_KINDS

    model = data.get("model")
    if not isinstance(model, dict):
        return "model is missing or not an object"
    if not isinstance(model.get("identity"), str) or not model.get("identity"):
        return "model.identity is missing"
    if not _is_int(model.get("dim")) or model["dim"] < 1:
        return f"model.dim is not a positive whole number ({model.get('dim')!r})"
    if model.get("reference") is not None and not isinstance(model.get("reference"), str):
        return "model.reference is not text"
    if data.get("dtype", "float32") not in ("float32", "float16"):
        return f"dtype {data.get('dtype')!r} is not float32 or float16"
    for key in ("count", "skipped", "empty", "chunk_size"):
        if key in data and (not _is_int(data[key]) or data[key] < 0):
            return f"{key} is not a non-negative whole number ({data[key]!r})"
    for key in ("complete", "consolidated"):
        if key in data and not isinstance(data[key], bool):
            return f"{key} is not true/false"
    shards = data.get("shards", [])
    if not isinstance(shards, list):
        return "shards is not a list"
    for entry in shards:
        if not (isinstance(entry, dict) and isinstance(entry.get("stem"), str)
                and _SHARD_STEM.fullmatch(entry["stem"]) and _is_int(entry.get("count"))
                and _is_int(entry.get("peaks")) and entry["count"] >= 0 and entry["peaks"] >= 0):
            return f"shard entry {_one_line(entry, 80)} is malformed"
    if sum(e["count"] for e in shards) != data.get("count", 0):
        return f"count {data.get('count')} differs from the {sum(e['count'] for e in shards)} spectra its shards hold"
    for key in ("source", "files"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"{key} is not an object"
    for name, record in (data.get("files") or {}).items():
        if name not in DATA_FILES or not _file_record_ok(record):
            return f"files entry {name!r} is malformed"
    shard = data.get("shard")
    if shard is not None and not (isinstance(shard, list) and len(shard) == 2 and all(_is_int(x) for x in shard)
                                  and 0 <= shard[0] < shard[1]):
        return f"shard {shard!r} is not [index, count]"
    index = data.get("index")
    if index is not None:
        if not isinstance(index, dict) or not isinstance(index.get("spec"), dict):
            return "index is not an object with a spec"
        if index.get("file") != INDEX_FILE:  # never a path: the manifest must not point outside its folder
            return f"index file {index.get('file')!r} is not {INDEX_FILE!r}"
        spec = index["spec"]
        from llm4ms.index import IndexSpec

        known = set(IndexSpec.__dataclass_fields__)
        if set(spec) - known or spec.get("kind") not in INDEX_KINDS or spec.get("kind") == "auto":
            return f"index spec {_one_line(spec, 80)} is not one this llm4ms knows"
        for key in ("nlist", "nprobe", "hnsw_m", "ef_construction", "ef_search"):
            value = spec.get(key)
            if value is not None and (not _is_int(value) or value < 1):
                return f"index spec {key} is not a positive whole number ({value!r})"
        if "ntotal" in index and not _is_int(index["ntotal"]):
            return "index ntotal is not a whole number"
        if ("size" in index or "head_tail_sha256" in index) and not _file_record_ok(index):
            return "index checksum record is malformed"
    return None


def _file_record_ok(record: Any) -> bool:
    return (isinstance(record, dict) and _is_int(record.get("size")) and record["size"] >= 0
            and isinstance(record.get("head_tail_sha256"), str)
            and (record.get("sha256") is None or isinstance(record.get("sha256"), str)))


# ---- checksums ----------------------------------------------------------------------------------------
def head_tail_digest(path: str | Path, span: int = DIGEST_SPAN) -> str:
    """sha256 of a file's size and its first and last `span` bytes (the whole file when it is small)."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        if size <= 2 * span:
            h.update(handle.read())
        else:
            h.update(handle.read(span))
            handle.seek(size - span)
            h.update(handle.read(span))
    return h.hexdigest()


def full_digest(path: str | Path) -> str:
    """sha256 of a whole file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_record(path: str | Path, full: bool = True) -> dict[str, Any]:
    """What the manifest records of a file: size, cheap digest and (with `full`) the sha256 of it all."""
    record: dict[str, Any] = {"size": Path(path).stat().st_size, "head_tail_sha256": head_tail_digest(path)}
    if full:
        record["sha256"] = full_digest(path)
    return record


def file_mismatch(path: Path, record: Optional[dict[str, Any]], full: bool = False) -> Optional[str]:
    """Why `path` is not the file `record` describes (None if it is, or nothing was recorded)."""
    if not record:
        return None
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    if size != record["size"]:
        return (f"{path.name} has {size:,} bytes, not the {record['size']:,} recorded at build time "
                "(truncated or replaced)")
    if head_tail_digest(path) != record["head_tail_sha256"]:
        return f"{path.name} has changed since it was built (checksum differs: corrupted or replaced)"
    if full and record.get("sha256") and full_digest(path) != record["sha256"]:
        return f"{path.name} has changed since it was built (full sha256 differs: corrupted)"
    return None


# ---- the writer lock ----------------------------------------------------------------------------------
_HELD: dict[tuple[str, int], list[Any]] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def writer_lock(folder: str | Path) -> Iterator[None]:
    """Hold the writer lock of a library folder (``.llm4ms.lock``, an fcntl lock the OS drops if we die).

    Re-entrant within one thread; another process (or thread) asking for it while held gets `LibraryBusy`
    at once. Where locks are unsupported (no fcntl, a file system refusing locks, a read-only folder) the
    block runs unlocked.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise Llm4msError(f"{folder}: is a file, not a library folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Llm4msError(f"{folder}: cannot create the library folder ({err.strerror or err})") from None
    key = (str(folder.resolve()), threading.get_ident())
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
        else:
            fd = _acquire(folder)
            held = _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        with _HELD_GUARD:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                if held[0] is not None:
                    os.close(held[0])  # closing the descriptor releases the lock


def _acquire(folder: Path) -> Optional[int]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks here
        return None
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            return None  # read-only folder: nothing will be written here anyway
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            try:
                owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            except OSError:  # pragma: no cover
                owner = ""
            os.close(fd)
            who = f" ({owner})" if owner else ""
            raise LibraryBusy(f"{folder}: another llm4ms process{who} is writing this library folder; wait for it "
                              "to finish (then rerun to resume) or use another --out folder") from None
        os.close(fd)  # ENOLCK and friends: a file system without locks
        log.warning("%s: cannot lock the library folder (%s); make sure only one process writes it", folder, err)
        return None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename if hasattr(os, 'uname') else '?'}".encode(), 0)
    except OSError:  # pragma: no cover
        pass
    return fd


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporaries a killed writer left (``.NAME.XXXX.tmp``); call only while holding the lock."""
    removed = 0
    for sub in (folder, folder / "shards"):
        for path in stale_temporaries(sub):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    if removed:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", folder, removed)
    return removed


def clear_library(folder: Path) -> None:
    """Remove a library's own files (not anything else a user keeps in the folder); hold the lock."""
    for name in (MANIFEST, INDEX_FILE) + DATA_FILES:
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "shards", ignore_errors=True)
    remove_stale_temporaries(folder)


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
            self._remove_leftovers()
        except BaseException:
            self.close()
            raise

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
        import pyarrow as pa
        import pyarrow.parquet as pq

        n, dim = self.manifest.count, int(self.manifest.model["dim"])
        n_peaks = sum(int(s["peaks"]) for s in self.manifest.shards)
        hint = rebuild_hint(self.folder, self.manifest.source)
        with atomic_path(self.folder / "embeddings.npy") as emb_tmp, \
                atomic_path(self.folder / "peaks_mz.npy") as mz_tmp, \
                atomic_path(self.folder / "peaks_intensity.npy") as int_tmp, \
                atomic_path(self.folder / "peaks_offsets.npy") as off_tmp, \
                atomic_path(self.folder / "metadata.parquet") as meta_tmp:
            emb = np.lib.format.open_memmap(emb_tmp, mode="w+", dtype=self.manifest.dtype, shape=(n, dim))
            mz_out = np.lib.format.open_memmap(mz_tmp, mode="w+", dtype=np.float32, shape=(n_peaks,))
            int_out = np.lib.format.open_memmap(int_tmp, mode="w+", dtype=np.float32, shape=(n_peaks,))
            offsets = np.zeros(n + 1, dtype=np.int64)
            schema = metadata_schema()
            row, peak = 0, 0
            with pq.ParquetWriter(meta_tmp, schema) as writer:
                for shard in self.manifest.shards:
                    stem = self.folder / shard["stem"]
                    try:
                        with np.load(f"{stem}.npz") as data:
                            count = data["embeddings"].shape[0]
                            p = data["mz"].shape[0]
                            if count != shard["count"] or p != shard["peaks"] or data["offsets"].shape != (count + 1,):
                                raise ValueError("its arrays do not match the manifest")
                            emb[row:row + count] = data["embeddings"]
                            mz_out[peak:peak + p] = data["mz"]
                            int_out[peak:peak + p] = data["intensity"]
                            offsets[row + 1:row + count + 1] = data["offsets"][1:] + peak
                        with open(f"{stem}.jsonl", encoding="utf-8") as handle:
                            rows = [json.loads(line) for line in handle]
                        if len(rows) != count:
                            raise ValueError(f"{len(rows)} metadata rows for {count} embeddings")
                        table = pa.Table.from_pylist(rows, schema=schema)
                    except Exception as err:  # a damaged shard: say which, and how to start over
                        raise damaged(self.folder, f"{shard['stem']} is damaged ({_reason(err)})", hint) from None
                    writer.write_table(table)
                    row += count
                    peak += p
            emb.flush()
            mz_out.flush()
            int_out.flush()
            del emb, mz_out, int_out
            with open(off_tmp, "wb") as handle:  # a handle: np.save would append .npy to a path
                np.save(handle, offsets)


def metadata_schema():
    """The parquet schema of ``metadata.parquet``."""
    import pyarrow as pa

    return pa.schema([(c, pa.int64()) if c == "source_record" else
                      (c, pa.float64()) if c in _FLOAT_COLUMNS else (c, pa.string())
                      for c in METADATA_COLUMNS])


# ---- the index ----------------------------------------------------------------------------------------
def write_index(folder: Path, manifest: Manifest, spec: Any = "auto") -> Any:
    """Build the FAISS index over ``embeddings.npy``, write it atomically and record it in the manifest.

    Returns the resolved `IndexSpec`. Takes the writer lock (re-entrant for a writer that holds it).
    """
    from llm4ms.index import IndexSpec, build_index, save_index

    folder = Path(folder)
    if isinstance(spec, str):
        spec = IndexSpec(kind=spec)
    with writer_lock(folder):
        remove_stale_temporaries(folder)
        embeddings = np.load(folder / "embeddings.npy", mmap_mode="r")
        index, resolved = build_index(np.asarray(embeddings, dtype=np.float32), spec)
        del embeddings
        save_index(index, folder / INDEX_FILE)
        manifest.index = {"file": INDEX_FILE, "spec": asdict(resolved), "ntotal": int(index.ntotal),
                          **file_record(folder / INDEX_FILE, full=False)}
        manifest.save(folder)
    return resolved


def index_problem(folder: Path, manifest: Manifest) -> Optional[str]:
    """Why the library's index cannot be used as recorded (None if it can, as far as cheap checks tell)."""
    info = manifest.index
    if not info:
        return "no index"
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        return f"{INDEX_FILE} is missing"
    if "size" in info:
        mismatch = file_mismatch(path, info)
        if mismatch:
            return mismatch
    if info.get("ntotal") is not None and info["ntotal"] != manifest.count:
        return f"the index holds {info['ntotal']} vectors but the library {manifest.count} spectra"
    return None


def open_index(folder: Path, manifest: Manifest, mmap: bool = False):
    """Read and check the library's index; every failure is one `Llm4msError` line saying how to rebuild."""
    from llm4ms.index import IndexSpec, configure_search, load_index

    folder = Path(folder)
    problem = index_problem(folder, manifest)
    if problem == "no index":
        raise Llm4msError(f"{folder}: no index; build one with `llm4ms index {folder}`")
    if problem:
        raise damaged(folder, problem, index_hint(folder))
    spec = IndexSpec(**manifest.index["spec"])
    try:
        index = load_index(folder / INDEX_FILE, None, mmap=mmap)
    except Exception as err:  # faiss raises RuntimeError (or MemoryError on absurd sizes) for broken files
        raise damaged(folder, f"{INDEX_FILE} is unreadable ({_reason(err)})", index_hint(folder)) from None
    dim = int(manifest.model["dim"])
    if int(index.ntotal) != manifest.count or int(index.d) != dim:
        raise damaged(folder, f"{INDEX_FILE} holds {index.ntotal} vectors of dimension {index.d}, but the library "
                              f"{manifest.count} of dimension {dim}", index_hint(folder))
    try:
        configure_search(index, spec)
    except Exception as err:
        raise damaged(folder, f"{INDEX_FILE} is not the {spec.kind} index the manifest records ({_reason(err)})",
                      index_hint(folder)) from None
    return index


# ---- loading and checking a complete library -----------------------------------------------------------
@dataclass
class LibraryFiles:
    """The checked arrays and metadata table of a complete library."""

    embeddings: np.ndarray
    peaks_mz: np.ndarray
    peaks_intensity: np.ndarray
    peaks_offsets: np.ndarray
    table: Any
    masses: np.ndarray


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
    for name in DATA_FILES:
        if not (folder / name).is_file():
            raise damaged(folder, f"{name} is missing", hint)
        mismatch = file_mismatch(folder / name, (manifest.files or {}).get(name))
        if mismatch:
            raise damaged(folder, mismatch, hint)
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
        masses = np.asarray(table.column("mass").to_numpy(zero_copy_only=False), dtype=np.float64)
    except Exception as err:
        raise damaged(folder, f"metadata.parquet: unreadable masses ({_reason(err)})", hint) from None
    return LibraryFiles(embeddings, peaks_mz, peaks_intensity, offsets, table, masses)


def _load_array(folder: Path, name: str, mmap_mode: Optional[str], hint: str) -> np.ndarray:
    try:
        array = np.load(folder / name, mmap_mode=mmap_mode, allow_pickle=False)
    except Exception as err:  # truncated or garbled .npy: ValueError, EOFError, OSError, UnpicklingError
        raise damaged(folder, f"{name} is unreadable ({_reason(err)})", hint) from None
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
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(folder / "metadata.parquet")
    except Exception as err:  # ArrowInvalid, OSError, ...
        raise damaged(folder, f"metadata.parquet is unreadable ({_reason(err)})", hint) from None
    if table.num_rows != n:
        raise damaged(folder, f"metadata.parquet has {table.num_rows} rows, but the library {n} spectra", hint)
    expected = metadata_schema()
    for column in expected:
        if column.name not in table.column_names:
            raise damaged(folder, f"metadata.parquet has no {column.name!r} column", hint)
        kind = table.schema.field(column.name).type
        ok = kind == column.type or kind == pa.null() or (column.type == pa.string() and kind == pa.large_string())
        if not ok:
            raise damaged(folder, f"metadata.parquet column {column.name!r} holds {kind}, not {column.type}", hint)
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
