"""``index.faiss`` of a library folder: written atomically and recorded (spec, vector count, checksum) in the
manifest, checked against that record when opened. Every failure is one `Llm4msError` line saying how to
rebuild the index."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import numpy as np

from llm4ms.errors import Llm4msError
from llm4ms.library.index import (
    IndexSpec,
    build_index,
    configure_search,
    load_index,
    save_index,
)
from llm4ms.library.lock import remove_stale_temporaries, writer_lock
from llm4ms.library.manifest import INDEX_FILE, Manifest, file_mismatch, file_record
from llm4ms.library.messages import damaged, index_hint, reason


def write_index(folder: Path, manifest: Manifest, spec: Any = "auto") -> IndexSpec:
    """Build the FAISS index over ``embeddings.npy``, write it atomically and record it in the manifest.

    Returns the resolved `IndexSpec`. Takes the writer lock (re-entrant for a writer that holds it).
    """
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
        raise damaged(folder, f"{INDEX_FILE} is unreadable ({reason(err)})", index_hint(folder)) from None
    _check_shape(folder, manifest, index)
    try:
        configure_search(index, spec)
    except Exception as err:
        raise damaged(folder, f"{INDEX_FILE} is not the {spec.kind} index the manifest records ({reason(err)})",
                      index_hint(folder)) from None
    return index


def _check_shape(folder: Path, manifest: Manifest, index: Any) -> None:
    dim = int(manifest.model["dim"])
    if int(index.ntotal) != manifest.count or int(index.d) != dim:
        raise damaged(folder, f"{INDEX_FILE} holds {index.ntotal} vectors of dimension {index.d}, but the library "
                              f"{manifest.count} of dimension {dim}", index_hint(folder))
