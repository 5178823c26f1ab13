"""Spectral libraries: the on-disk library folder, its FAISS index, and `Library` (build, merge, load, search).

One job per module:

- `llm4ms.library.messages`: one-line errors for a damaged folder and how to rebuild it;
- `llm4ms.library.index`: FAISS index kinds (`IndexSpec`), build / save / load / search, GPU use;
- `llm4ms.library.manifest`: ``manifest.json`` (`Manifest`), its validation, file checksum records;
- `llm4ms.library.lock`: the writer lock (`LibraryBusy`) and temporaries a killed writer left;
- `llm4ms.library.index_file`: ``index.faiss`` of a folder: write, check, open;
- `llm4ms.library.store`: the folder layout, written (`StoreWriter`) and read back checked (`open_complete`,
  `verify_library`), metadata rows and schema;
- `llm4ms.library.hits`: `Hit` and the hit rows of a search;
- `llm4ms.library.merge`: joining the shard folders of a distributed build;
- `llm4ms.library.library`: `Library`.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that owns it; loaded on first use, so that importing one light module of the
#: package (e.g. `llm4ms.library.index` for the CLI's choices) does not load them all
_EXPORTS = {
    "HIT_COLUMNS": "llm4ms.library.hits", "Hit": "llm4ms.library.hits",
    "INDEX_KINDS": "llm4ms.library.index", "IndexSpec": "llm4ms.library.index",
    "Library": "llm4ms.library.library",
    "LibraryBusy": "llm4ms.library.lock", "writer_lock": "llm4ms.library.lock",
    "Manifest": "llm4ms.library.manifest",
    "METADATA_COLUMNS": "llm4ms.library.store", "verify_library": "llm4ms.library.store",
}
__all__ = ["HIT_COLUMNS", "INDEX_KINDS", "METADATA_COLUMNS", "Hit", "IndexSpec", "Library", "LibraryBusy",
           "Manifest", "verify_library", "writer_lock"]

if TYPE_CHECKING:
    from llm4ms.library.hits import HIT_COLUMNS, Hit
    from llm4ms.library.index import INDEX_KINDS, IndexSpec
    from llm4ms.library.library import Library
    from llm4ms.library.lock import LibraryBusy, writer_lock
    from llm4ms.library.manifest import Manifest
    from llm4ms.library.store import METADATA_COLUMNS, verify_library


def __getattr__(name: str) -> Any:
    owner = _EXPORTS.get(name)
    if owner is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(owner), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
