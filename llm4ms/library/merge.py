"""Joining the shard libraries of one distributed build (``llm4ms embed --shard I/N``) into one library, in
input order. The order is deterministic, so an interrupted merge continues where it stopped.

The shards are opened libraries (`llm4ms.library.Library`); this module reads them only through their public
accessors (`manifest`, `embeddings`, `peaks`, `metadata_rows`, `source_records`).
"""
from __future__ import annotations

import heapq
import logging
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from llm4ms.errors import ConfigError, Llm4msError, ModelMismatchError
from llm4ms.library.store import StoreWriter, chunked

if TYPE_CHECKING:
    from llm4ms.library.library import Library

log = logging.getLogger(__name__)


def check_shards(shards: Sequence["Library"], shard_dirs: Sequence[str | Path]) -> None:
    """The shards must be 0..n-1 of n, embedded with one model from one input (else one line saying why)."""
    if not shards:
        raise ConfigError("no shard folders to merge")
    first = shards[0].manifest
    counts = {tuple(s.manifest.shard or ()) for s in shards}
    expected = {(i, len(shards)) for i in range(len(shards))}
    if counts != expected:
        raise Llm4msError(f"shards to merge must be 0..{len(shards) - 1} of {len(shards)}; found "
                          f"{sorted(counts)} in {', '.join(str(d) for d in shard_dirs)}")
    for s in shards[1:]:
        if s.manifest.model.get("identity") != first.model.get("identity"):
            raise ModelMismatchError(f"{s.folder}: embedded with another model than {shards[0].folder}")
        if s.manifest.source != first.source:
            raise Llm4msError(f"{s.folder}: built from another input than {shards[0].folder}")


def write_merged(shards: Sequence["Library"], out_dir: str | Path, index: Any = "auto", chunk_size: int = 4096,
                 overwrite: bool = False) -> bool:
    """Write the checked `shards` into `out_dir` (resuming an interrupted merge) and build its index.

    Returns False when `out_dir` already held the complete merged library (nothing written).
    """
    first = shards[0].manifest
    writer = StoreWriter(out_dir, first.model, source=first.source, dtype=first.dtype, chunk_size=chunk_size,
                         overwrite=overwrite)
    try:
        if writer.manifest.complete:
            return False
        if writer.done:
            log.info("resuming the merge into %s after %d spectra", out_dir, writer.done)
        order = heapq.merge(*[_numbered_records(s, k) for k, s in enumerate(shards)])
        for chunk in chunked(islice(order, writer.done, None), chunk_size):
            _add_chunk(writer, shards, chunk)
        writer.finish(skipped=max(s.manifest.skipped for s in shards),
                      empty=max(s.manifest.empty for s in shards), index=index)
    finally:
        writer.close()
    return True


def _add_chunk(writer: StoreWriter, shards: Sequence["Library"], chunk: Sequence[tuple[int, int, int]]) -> None:
    """Store the spectra of (record, shard, row) triples."""
    embeddings = np.stack([np.asarray(shards[k].embeddings[i], dtype=np.float32) for _, k, i in chunk])
    peaks = [shards[k].peaks(i) for _, k, i in chunk]
    writer.add_rows(embeddings, [p[0] for p in peaks], [p[1] for p in peaks], _rows_in_order(shards, chunk))


def _rows_in_order(shards: Sequence["Library"], chunk: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Metadata rows for (record, shard, row) triples, fetched with one vectorised take per shard."""
    by_shard: dict[int, list[int]] = {}
    for pos, (_, k, i) in enumerate(chunk):
        by_shard.setdefault(k, []).append(pos)
    rows: list[dict[str, Any]] = [{}] * len(chunk)
    for k, positions in by_shard.items():
        fetched = shards[k].metadata_rows([chunk[p][2] for p in positions])
        for pos, row in zip(positions, fetched):
            rows[pos] = row
    return rows


def _numbered_records(library: "Library", shard: int) -> Iterable[tuple[int, int, int]]:
    """(source_record, shard, row) for each row of a shard library, in its (ascending) record order."""
    return ((int(r), shard, i) for i, r in enumerate(library.source_records()))
