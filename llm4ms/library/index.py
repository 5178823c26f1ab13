"""FAISS index kinds behind one small interface (inner product on L2-normalised embeddings = cosine).

Kinds are named by short strings so a library manifest can record them:
``flat`` (exact, fp32), ``flat16`` (exact scores on fp16-stored vectors), ``sq8`` (8-bit scalar quantised),
``ivf`` (inverted lists, approximate; ``nlist``/``nprobe``), ``ivfsq8``, ``hnsw`` (graph; ``M``/``ef_search``),
and ``auto`` (exact below `AUTO_EXACT_LIMIT` vectors, IVF above). A GPU is used when faiss reports one.
This module knows nothing of library folders: `llm4ms.library.index_file` writes and opens their index.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from llm4ms.errors import ConfigError

log = logging.getLogger(__name__)

INDEX_KINDS = ("auto", "flat", "flat16", "sq8", "ivf", "ivfsq8", "hnsw")
AUTO_EXACT_LIMIT = 200_000
#: IVF probes 1 / NPROBE_SHARE of its lists unless told otherwise: on the 1 M validation library embedded with the
#: default model, 256 of 3,999 lists find 99.4 % of the exact top 10 (32 lists: 91.7 %;
#: benchmarks/results/index_tradeoffs_validation_1m_current_model.json)
NPROBE_SHARE = 16


@dataclass
class IndexSpec:
    """What kind of index to build and how to search it; saved in the library manifest."""

    kind: str = "auto"
    nlist: Optional[int] = None
    nprobe: Optional[int] = None  # None: nlist / NPROBE_SHARE (at least 32), set by `resolved`
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 256
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved(self, n_vectors: int) -> "IndexSpec":
        """Replace ``auto`` and a missing nlist by concrete choices for `n_vectors`."""
        if self.kind not in INDEX_KINDS:
            raise ConfigError(f"unknown index type {self.kind!r}; choose one of {', '.join(INDEX_KINDS)}")
        spec = IndexSpec(**asdict(self))
        if spec.kind == "auto":
            spec.kind = "flat" if n_vectors <= AUTO_EXACT_LIMIT else "ivf"
        if spec.kind in ("ivf", "ivfsq8") and not spec.nlist:
            # about 4 sqrt(n) lists, at least 39 training points per list (faiss' own minimum)
            spec.nlist = int(max(1, min(4 * math.sqrt(n_vectors), n_vectors // 39)))
        if spec.kind in ("ivf", "ivfsq8") and spec.nprobe is None:
            spec.nprobe = min(spec.nlist, max(32, math.ceil(spec.nlist / NPROBE_SHARE)))
        return spec

    def factory_string(self) -> str:
        kinds = {
            "flat": "Flat",
            "flat16": "SQfp16",
            "sq8": "SQ8",
            "ivf": f"IVF{self.nlist},Flat",
            "ivfsq8": f"IVF{self.nlist},SQ8",
            "hnsw": f"HNSW{self.hnsw_m}",
        }
        return kinds[self.kind]


def _faiss():
    import faiss

    return faiss


def gpu_count() -> int:
    """Number of GPUs faiss can use (0 with faiss-cpu, or faiss-gpu on a machine without a GPU)."""
    faiss = _faiss()
    try:
        return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except Exception:  # pragma: no cover - defensive: broken GPU drivers
        return 0


def build_index(embeddings: np.ndarray, spec: IndexSpec | str = "auto", use_gpu: Optional[bool] = None):
    """Build (train + add) a FAISS inner-product index over `embeddings` (n, d) float32.

    Training of IVF quantisers runs on the GPU when one is present; the returned index is on the CPU so it
    can be saved. `search()` moves it to the GPU again when asked.
    """
    faiss = _faiss()
    if isinstance(spec, str):
        spec = IndexSpec(kind=spec)
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ConfigError("cannot build an index over an empty embedding matrix")
    spec = spec.resolved(x.shape[0])
    index = faiss.index_factory(x.shape[1], spec.factory_string(), faiss.METRIC_INNER_PRODUCT)
    if spec.kind == "hnsw":
        index.hnsw.efConstruction = spec.ef_construction
    gpu = gpu_count() > 0 if use_gpu is None else use_gpu
    if not index.is_trained:
        sample = x
        max_train = 64 * (spec.nlist or 1)  # 64 points per list: well inside faiss' 39..256 advice
        if x.shape[0] > max_train:
            rng = np.random.default_rng(0)
            sample = x[np.sort(rng.choice(x.shape[0], max_train, replace=False))]
        if gpu and spec.kind in ("ivf", "ivfsq8"):
            trained = _train_ivf_on_gpu(index, sample)
            index = trained if trained is not None else index
        if not index.is_trained:
            index.train(sample)
    for start in range(0, x.shape[0], 100_000):
        index.add(x[start:start + 100_000])
    configure_search(index, spec)
    return index, spec


def _train_ivf_on_gpu(index, sample: np.ndarray):
    """Train an IVF index with a GPU clustering step; None if anything about the GPU fails."""
    faiss = _faiss()
    try:  # pragma: no cover - exercised only where a GPU exists
        gpu_index = faiss.index_cpu_to_all_gpus(index)
        gpu_index.train(sample)
        return faiss.index_gpu_to_cpu(gpu_index)
    except Exception as err:  # pragma: no cover
        log.warning("GPU training failed (%s); training on the CPU", err)
        return None


def configure_search(index, spec: IndexSpec) -> None:
    """Apply search-time parameters (nprobe, efSearch) recorded in the spec."""
    faiss = _faiss()
    if spec.kind in ("ivf", "ivfsq8"):
        faiss.extract_index_ivf(index).nprobe = int(spec.nprobe)
    elif spec.kind == "hnsw":
        index.hnsw.efSearch = int(spec.ef_search)


def to_gpu_if_available(index):
    """Return a GPU copy of the index when faiss reports a GPU, else the index itself."""
    if gpu_count() == 0:
        return index
    faiss = _faiss()
    try:  # pragma: no cover - exercised only where a GPU exists
        return faiss.index_cpu_to_all_gpus(index)
    except Exception as err:  # pragma: no cover
        log.warning("could not move the index to the GPU (%s); searching on the CPU", err)
        return index


def save_index(index, path: str | Path) -> None:
    """Write the index atomically."""
    from llm4ms.utils import atomic_path

    faiss = _faiss()
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def load_index(path: str | Path, spec: Optional[IndexSpec] = None, mmap: bool = False):
    """Read an index (optionally memory-mapped) and apply the search parameters of `spec`."""
    faiss = _faiss()
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
    index = faiss.read_index(str(path), flags) if flags else faiss.read_index(str(path))
    if spec is not None:
        configure_search(index, spec)
    return index


def search_index(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, indices); indices are -1 where fewer than k results exist."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = max(1, min(int(k), int(index.ntotal)))
    scores, indices = index.search(q, k)
    return scores, indices
