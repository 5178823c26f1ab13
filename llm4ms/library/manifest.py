"""``manifest.json``: what a library folder holds, how far its build has got, and the checksums of its files.

The manifest is the single source of truth of a library folder (its layout: `llm4ms.library.store`): a shard
exists only once the manifest lists it, and a library is usable only once the manifest says ``complete``.
`Manifest.load` checks every field (types, ranges, file names that never point outside the folder) and
reports a bad manifest as one `Llm4msError` line. The file records (size, sha256 of the first and last MiB,
full sha256) are checked cheaply at load and fully by `verify_library`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from llm4ms import __version__
from llm4ms.errors import Llm4msError
from llm4ms.library.index import INDEX_KINDS, IndexSpec
from llm4ms.library.messages import damaged, one_line, reason, rebuild_hint
from llm4ms.utils import write_json

FORMAT_NAME = "llm4ms-library"
#: 1: the molecular mass column of ``metadata.parquet`` was named ``mass`` (still read);
#: 2: it is ``exact_mass``, the metadata key of `Spectrum` and `llm4ms.io`.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
#: The consolidated files of a complete library (the index is recorded separately, under ``index``).
DATA_FILES = ("embeddings.npy", "peaks_mz.npy", "peaks_intensity.npy", "peaks_offsets.npy", "metadata.parquet")
#: Bytes hashed at each end of a file by the cheap load-time check.
DIGEST_SPAN = 1 << 20

_SHARD_STEM = re.compile(r"shards/[0-9]{6}")


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
        data = _read(folder)
        _check_format(folder, data)
        problem = manifest_problem(data)
        if problem:
            raise damaged(folder, f"{MANIFEST}: {problem}", rebuild_hint(folder, data.get("source")))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _read(folder: Path) -> dict[str, Any]:
    """The parsed manifest of `folder` (a JSON object), or one line saying why there is none."""
    path = folder / MANIFEST
    if not path.is_file():
        if folder.is_file():
            raise Llm4msError(f"{folder}: is a file, not an llm4ms library folder")
        raise Llm4msError(f"{folder}: not an llm4ms library (no {MANIFEST}); build one with `llm4ms embed`")
    hint = rebuild_hint(folder)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise damaged(folder, f"cannot read {MANIFEST} ({reason(err)})", hint) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise damaged(folder, f"{MANIFEST} is not UTF-8 text (garbled)", hint) from None
    except (ValueError, RecursionError) as err:
        raise damaged(folder, f"{MANIFEST} is not valid JSON ({reason(err)})", hint) from None
    if not isinstance(data, dict):
        raise damaged(folder, f"{MANIFEST} is not a JSON object", hint)
    return data


def _check_format(folder: Path, data: dict[str, Any]) -> None:
    """Refuse a JSON file that is not a library manifest, or one of a format newer than this llm4ms."""
    path = folder / MANIFEST
    if data.get("format") != FORMAT_NAME:
        raise Llm4msError(f"{path}: not an llm4ms library manifest")
    version = data.get("format_version", 0)
    if not _is_int(version):
        raise damaged(folder, f"{MANIFEST}: format_version is not a whole number", rebuild_hint(folder))
    if version > FORMAT_VERSION:
        raise Llm4msError(f"{path}: library format {version} is newer than this llm4ms "
                          f"understands ({FORMAT_VERSION}); upgrade llm4ms")


# ---- validation ---------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def manifest_problem(data: dict[str, Any]) -> Optional[str]:
    """What is wrong with the fields of a parsed manifest (None if nothing): types, ranges, file names."""
    for check in (_model_problem, _scalar_problem, _shards_problem, _files_problem, _shard_problem,
                  _index_problem):
        problem = check(data)
        if problem:
            return problem
    return None


def _model_problem(data: dict[str, Any]) -> Optional[str]:
    model = data.get("model")
    if not isinstance(model, dict):
        return "model is missing or not an object"
    if not isinstance(model.get("identity"), str) or not model.get("identity"):
        return "model.identity is missing"
    if not _is_int(model.get("dim")) or model["dim"] < 1:
        return f"model.dim is not a positive whole number ({model.get('dim')!r})"
    if model.get("reference") is not None and not isinstance(model.get("reference"), str):
        return "model.reference is not text"
    return None


def _scalar_problem(data: dict[str, Any]) -> Optional[str]:
    if data.get("dtype", "float32") not in ("float32", "float16"):
        return f"dtype {data.get('dtype')!r} is not float32 or float16"
    for key in ("count", "skipped", "empty", "chunk_size"):
        if key in data and (not _is_int(data[key]) or data[key] < 0):
            return f"{key} is not a non-negative whole number ({data[key]!r})"
    for key in ("complete", "consolidated"):
        if key in data and not isinstance(data[key], bool):
            return f"{key} is not true/false"
    return None


def _shards_problem(data: dict[str, Any]) -> Optional[str]:
    shards = data.get("shards", [])
    if not isinstance(shards, list):
        return "shards is not a list"
    for entry in shards:
        if not (isinstance(entry, dict) and isinstance(entry.get("stem"), str)
                and _SHARD_STEM.fullmatch(entry["stem"]) and _is_int(entry.get("count"))
                and _is_int(entry.get("peaks")) and entry["count"] >= 0 and entry["peaks"] >= 0):
            return f"shard entry {one_line(entry, 80)} is malformed"
    if sum(e["count"] for e in shards) != data.get("count", 0):
        return f"count {data.get('count')} differs from the {sum(e['count'] for e in shards)} spectra its shards hold"
    return None


def _files_problem(data: dict[str, Any]) -> Optional[str]:
    for key in ("source", "files"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"{key} is not an object"
    for name, record in (data.get("files") or {}).items():
        if name not in DATA_FILES or not _file_record_ok(record):
            return f"files entry {name!r} is malformed"
    return None


def _shard_problem(data: dict[str, Any]) -> Optional[str]:
    shard = data.get("shard")
    if shard is not None and not (isinstance(shard, list) and len(shard) == 2 and all(_is_int(x) for x in shard)
                                  and 0 <= shard[0] < shard[1]):
        return f"shard {shard!r} is not [index, count]"
    return None


def _index_problem(data: dict[str, Any]) -> Optional[str]:
    index = data.get("index")
    if index is None:
        return None
    if not isinstance(index, dict) or not isinstance(index.get("spec"), dict):
        return "index is not an object with a spec"
    if index.get("file") != INDEX_FILE:  # never a path: the manifest must not point outside its folder
        return f"index file {index.get('file')!r} is not {INDEX_FILE!r}"
    problem = _spec_problem(index["spec"])
    if problem:
        return problem
    if "ntotal" in index and not _is_int(index["ntotal"]):
        return "index ntotal is not a whole number"
    if ("size" in index or "head_tail_sha256" in index) and not _file_record_ok(index):
        return "index checksum record is malformed"
    return None


def _spec_problem(spec: dict[str, Any]) -> Optional[str]:
    known = set(IndexSpec.__dataclass_fields__)
    if set(spec) - known or spec.get("kind") not in INDEX_KINDS or spec.get("kind") == "auto":
        return f"index spec {one_line(spec, 80)} is not one this llm4ms knows"
    for key in ("nlist", "nprobe", "hnsw_m", "ef_construction", "ef_search"):
        value = spec.get(key)
        if value is not None and (not _is_int(value) or value < 1):
            return f"index spec {key} is not a positive whole number ({value!r})"
    return None


def _file_record_ok(record: Any) -> bool:
    return (isinstance(record, dict) and _is_int(record.get("size")) and record["size"] >= 0
            and isinstance(record.get("head_tail_sha256"), str)
            and (record.get("sha256") is None or isinstance(record.get("sha256"), str)))


# ---- file records (checksums) -------------------------------------------------------------------------
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
