"""Retrieval by a classic score over a library folder: exhaustive (the default), or approximate on request.

The default ranking also retrieves candidates by sqrt cosine, because the embedding alone misses fused top hits deep
in a large library (`llm4ms.ranking`). Exhaustively that is one sparse product over the whole library per query:
about 7.5 ms at 1 M on 2 cores (MKL's product), a quarter of a million-spectrum search; the library's matrix is
built from its stored arrays in ~20 s at 1 M (`peak_matrix`), or mapped in ~1 s from the copy that ``llm4ms index``
keeps beside a library of more than 300,000 spectra (`prepare_exact`). With ``Ranking.classic_approximate``
(``llm4ms search --approximate-classic``) the library's weight vectors are projected on their 256 leading
*uncentred* principal directions (an orthogonal projection, so inner products are kept as far as the kept directions
carry them) and searched with a FAISS IVF inner-product index of 8-bit scalar-quantised codes (about 270 MB at 1 M;
an L2 index over the projections completed to unit length found no more and ran 8x slower); its candidates are then
ordered by the exact score from the sparse rows, so every score a hit shows is exact. Recall against exhaustive
retrieval is measured by ``benchmarks/classic_retrieval.py``: on the 1 M validation library it finds 93.8 % of the
default's top 10 and loses 2 R@1 points, at 1.5x the default's speed, so it is not the default.

FAISS and numpy do all the work; what is written here is only what neither has: the uncentred projection of a sparse
matrix and the caches beside the library, the built approximate index and the exact matrix's arrays
(``classic_<score>/`` in the library folder, keyed by the peaks' checksums, so a changed library is never served a
stale one; written atomically; when the folder is read-only the index is kept in memory and the matrix rebuilt).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from scipy import sparse

from llm4ms.library.index import NPROBE_SHARE
from llm4ms.similarity.classic import MAX_MZ, PRESETS, weighted_matrix, weighted_matrix_from_peaks
from llm4ms.similarity.named import ClassicIndex
from llm4ms.spectrum import Spectrum
from llm4ms.utils import atomic_path, write_json

log = logging.getLogger(__name__)

#: bump when the approximate index's recipe changes (a cached index of another version is rebuilt)
FORMAT_VERSION = 1


def peak_matrix(files: Any, name: str, block: int = 100_000) -> ClassicIndex:
    """The exact `ClassicIndex` of a library's stored peaks, built in vectorised blocks (1 M spectra: ~20 s)."""
    mz_power, intensity_power, _ = PRESETS[name]
    offsets = np.asarray(files.peaks_offsets, dtype=np.int64)
    parts = []
    for start in range(0, offsets.size - 1, block):
        o = offsets[start:min(start + block, offsets.size - 1) + 1]
        parts.append(weighted_matrix_from_peaks(o - o[0], files.peaks_mz[o[0]:o[-1]],
                                                files.peaks_intensity[o[0]:o[-1]], mz_power, intensity_power))
    matrix = sparse.vstack(parts, format="csr") if parts else sparse.csr_matrix((0, MAX_MZ + 1), dtype=np.float32)
    return ClassicIndex.from_matrix(name, matrix)


class ApproximateClassicIndex:
    """Top-n by a classic score through a projected FAISS IVF index, candidates ordered by the exact score.

    Same interface as `ClassicIndex` (``name``, ``scores``, ``top``), so the ranking does not know which it has.
    ``top(queries, n)`` asks the index for ``n`` candidates and sorts them by the exact score; a candidate the
    projection ranks below ``n`` is missed (the recall the benchmark reports).
    """

    def __init__(self, exact: ClassicIndex, projection: np.ndarray, index: Any, nprobe: int) -> None:
        self.exact, self.name, self.projection, self.index = exact, exact.name, projection, index
        self.nprobe = nprobe
        index.nprobe = nprobe

    def __len__(self) -> int:
        return len(self.exact)

    def scores(self, query: Spectrum, idx: np.ndarray) -> np.ndarray:
        return self.exact.scores(query, idx)

    def top(self, queries: Sequence[Spectrum], n: int) -> np.ndarray:
        """(len(queries), n) library indices by the exact score among the index's candidates (-1 = none)."""
        n = min(n, len(self))
        mz_power, intensity_power, _ = self.exact.weighting
        dense = weighted_matrix(queries, mz_power, intensity_power, self.exact.max_mz).toarray()
        _, found = self.index.search(np.ascontiguousarray(dense @ self.projection, dtype=np.float32), n)
        out = np.full((len(queries), n), -1, dtype=np.int64)
        for row, (query, cand) in enumerate(zip(queries, found)):
            cand = cand[cand >= 0]
            out[row, :cand.size] = cand[np.lexsort((cand, -self.exact.scores(query, cand)))]
        return out

    @classmethod
    def build(cls, exact: ClassicIndex, dim: int = 256, sample: int = 100_000, seed: int = 0,
              nprobe: Optional[int] = None) -> "ApproximateClassicIndex":
        """Fit the projection and IVF lists on a sample of the library, then add every spectrum (1 M: ~2 min).
        `nprobe`: lists searched per query (default 1 / `NPROBE_SHARE` of them, at least 32)."""
        import faiss

        rng = np.random.default_rng(seed)
        n = len(exact)
        nlist = int(max(1, min(4 * math.sqrt(n), n // 39)))
        # FAISS wants >= 39 training points per list; the projection is fit on the same sample
        rows = exact.matrix[np.sort(rng.choice(n, min(n, max(sample, 40 * nlist)), replace=False))]
        gram = np.asarray((rows.T @ rows).todense(), dtype=np.float64)
        _, vectors = np.linalg.eigh(gram)
        projection = np.ascontiguousarray(vectors[:, ::-1][:, :dim], dtype=np.float32)
        index = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.train(np.asarray(rows @ projection, dtype=np.float32))
        for start in range(0, n, 100_000):
            index.add(np.asarray(exact.matrix[start:start + 100_000] @ projection, dtype=np.float32))
        return cls(exact, projection, index, nprobe or min(nlist, max(32, math.ceil(nlist / NPROBE_SHARE))))

    # ---- the cache beside the library ------------------------------------------------------------
    def save(self, folder: Path, key: str) -> None:
        import faiss

        folder.mkdir(exist_ok=True)
        (folder / "key.json").unlink(missing_ok=True)  # no moment with a key over another index's files
        with atomic_path(folder / "projection.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, self.projection)
        with atomic_path(folder / "index.faiss") as tmp:
            faiss.write_index(self.index, str(tmp))
        write_json(folder / "key.json", {"key": key, "nprobe": self.nprobe})  # last: marks the cache complete

    @classmethod
    def load(cls, exact: ClassicIndex, folder: Path, key: str) -> Optional["ApproximateClassicIndex"]:
        """The cached index if it was built for this library (`key`) and reads back whole, else None."""
        import faiss

        try:
            record = json.loads((folder / "key.json").read_text())
            if record.get("key") != key:
                return None
            projection = np.load(folder / "projection.npy")
            index = faiss.read_index(str(folder / "index.faiss"))
        except (OSError, ValueError, RuntimeError, AttributeError):
            return None
        if (index.ntotal != len(exact) or projection.shape[0] != exact.matrix.shape[1]
                or index.d != projection.shape[1]):
            return None
        return cls(exact, projection, index, int(record.get("nprobe", 64)))


def cache_key(manifest: Any, name: str) -> str:
    """What the cached index was derived from: the stored peaks (their checksums), the score and the recipe."""
    files = manifest.files or {}
    parts = [str(FORMAT_VERSION), name, str(manifest.count)]
    parts += [json.dumps(files.get(f), sort_keys=True) for f in ("peaks_mz.npy", "peaks_intensity.npy",
                                                                   "peaks_offsets.npy")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


#: `Library.prepare_search` keeps the exact matrix beside libraries above this size (smaller ones build it in a few
#: seconds per search process: 100,000 spectra ~2 s)
MATRIX_KEEP_ABOVE = 300_000
#: the exact matrix's arrays kept beside a large library (`save_exact`), and the record that marks them complete
EXACT_ARRAYS = ("indptr", "indices", "data")
EXACT_RECORD = "exact.json"


def save_exact(exact: ClassicIndex, folder: Path, key: str) -> None:
    """Keep the exhaustive index's CSR arrays in `folder` (``classic_<score>/``) so the next process maps them
    instead of rebuilding them: at 1 M spectra ~20 s to build, ~1 s to map (0.9 GB on disk, as much as the peaks).
    Each array written atomically; the record last, so a half-written cache is never read."""
    folder.mkdir(exist_ok=True)
    (folder / EXACT_RECORD).unlink(missing_ok=True)
    matrix = exact.matrix
    for part in EXACT_ARRAYS:
        with atomic_path(folder / f"exact_{part}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, getattr(matrix, part))
    write_json(folder / EXACT_RECORD, {"key": key, "shape": list(matrix.shape), "nnz": int(matrix.nnz)})


def load_exact(folder: Path, key: str, name: str) -> Optional[ClassicIndex]:
    """The kept exhaustive index if it was built from this library's peaks (`key`) and reads back whole, else
    None. Its arrays are memory-mapped copy-on-write: pages are read when first scored, never written back."""
    try:
        record = json.loads((folder / EXACT_RECORD).read_text())
        if record.get("key") != key:
            return None
        arrays = {part: np.load(folder / f"exact_{part}.npy", mmap_mode="c") for part in EXACT_ARRAYS}
        shape = tuple(int(v) for v in record["shape"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (arrays["indptr"].shape != (shape[0] + 1,) or arrays["data"].shape != (int(record["nnz"]),)
            or arrays["indices"].shape != arrays["data"].shape or shape[1] != MAX_MZ + 1):
        return None
    matrix = sparse.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape, copy=False)
    return ClassicIndex.from_matrix(name, matrix)


def prepare_exact(folder: Path, manifest: Any, files: Any, name: str) -> bool:
    """Build and keep the exhaustive index of a library folder unless a current one is kept (`Library.prepare_search`,
    i.e. ``llm4ms index``). True when one is kept now; False when it could not be written (a read-only folder, a
    full disk: logged, and each search process builds the matrix itself as before)."""
    cache, key = Path(folder) / f"classic_{name}", cache_key(manifest, name)
    if load_exact(cache, key, name) is not None:
        return True
    try:
        save_exact(peak_matrix(files, name), cache, key)
    except OSError as err:
        log.warning("could not keep the %s matrix in %s (%s); each search builds it from the peaks", name, cache,
                    err)
        return False
    return True


def classic_retrieval(folder: Path, manifest: Any, files: Any, name: str, approximate: bool = False,
                      exact: Optional[ClassicIndex] = None) -> Any:
    """Retrieval by the classic score `name` over a library folder: the exhaustive `ClassicIndex` (`exact`, when
    already built; mapped from the folder when `prepare_exact` kept it; else built from the stored peaks), or with
    `approximate` the cached approximate index (built and kept on first use)."""
    cache = Path(folder) / f"classic_{name}"
    key = cache_key(manifest, name)
    if exact is None:
        exact = load_exact(cache, key, name) or peak_matrix(files, name)
    if not approximate:
        return exact
    approx = ApproximateClassicIndex.load(exact, cache, key)
    if approx is None:
        log.warning("building the approximate %s index of %s (%d spectra; once, kept in %s)", name, folder,
                    len(exact), cache)
        approx = ApproximateClassicIndex.build(exact)
        try:
            approx.save(cache, key)
        except OSError as err:  # a read-only library folder: keep it in memory only
            log.warning("could not keep the %s index in %s (%s); it is rebuilt next time", name, cache, err)
    return approx
