"""Scores by name: one query (or many) against a list of candidate spectra, e.g. to re-rank search hits.

``cosine``, ``cosine_sqrt`` and ``wcs`` are one sparse matrix product (`PRESETS`); ``composite`` adds the NIST
peak-ratio term per pair; ``entropy`` scores pair by pair with ms-entropy (the extra ``llm4ms[baselines]``).
``cosine_hr``, ``modified_cosine`` and ``entropy_hr`` compare MS/MS peaks at their recorded (accurate) m/z, pair by
pair with matchms and ms-entropy (`llm4ms.similarity.accurate`); `max_mz` does not apply to them.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from llm4ms.errors import ConfigError
from llm4ms.similarity.accurate import ACCURATE_SCORES, accurate_matrix
from llm4ms.similarity.classic import (COMPOSITE_WEIGHTING, MAX_MZ, PRESETS, composite_score, cosine_block,
                                       weighted_matrix, weighted_peaks)
from llm4ms.similarity.entropy import entropy_matrix
from llm4ms.spectrum import Spectrum

#: (scores of library rows lo..hi (rows, queries a..b), lo, hi, a, b, n) -> the best n rows per query (local
#: indices, (b - a, n)) and their selection scores: a selection by more than the score (`ClassicIndex.top`)
Select = Callable[[np.ndarray, int, int, int, int, int], tuple[np.ndarray, np.ndarray]]

#: Every name `scores` / `score_matrix` accept.
SCORES = (*PRESETS, "composite", "entropy", *ACCURATE_SCORES)


def check_score(name: str) -> str:
    """`name` if it is a known score, else a `ConfigError` listing the choices."""
    if name not in SCORES:
        raise ConfigError(f"unknown similarity {name!r}; choose one of {', '.join(SCORES)}")
    return name


def score_matrix(name: str, queries: Sequence[Spectrum], candidates: Sequence[Spectrum],
                 max_mz: int = MAX_MZ) -> np.ndarray:
    """Dense (n_queries, n_candidates) float32 similarities under the score `name`.

    Meant for re-ranking and small blocks: the library-scale baselines in `llm4ms.evaluate` fit the library
    matrix once and stream query chunks through the same functions.
    """
    check_score(name)
    queries, candidates = list(queries), list(candidates)
    if name == "entropy":
        return entropy_matrix(queries, candidates)
    if name in ACCURATE_SCORES:
        return accurate_matrix(name, queries, candidates)
    mz_power, intensity_power, square = COMPOSITE_WEIGHTING if name == "composite" else PRESETS[name]
    lib = weighted_matrix(candidates, mz_power, intensity_power, max_mz)
    cos = cosine_block(lib, weighted_matrix(queries, mz_power, intensity_power, max_mz))
    out = cos * cos if square else cos
    if name == "composite":
        lib_peaks = [weighted_peaks(s, mz_power, intensity_power, max_mz) for s in candidates]
        for row, query in enumerate(queries):
            q_bins, q_w = weighted_peaks(query, mz_power, intensity_power, max_mz)
            out[row] = [composite_score(q_bins, q_w, *peaks, dp) for peaks, dp in zip(lib_peaks, out[row])]
    return out


def scores(name: str, query: Spectrum, candidates: Sequence[Spectrum], max_mz: int = MAX_MZ) -> np.ndarray:
    """Similarity (n_candidates,) float32 of one `query` to each candidate under the score `name`."""
    return score_matrix(name, [query], candidates, max_mz)[0]


def top_per_column(scores: np.ndarray, n: int, step: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The n best rows of each column of `scores` (rows, columns), best first, ties by the lower row: (columns, n)
    row indices and their scores. Exact.

    Why not one `argpartition` per column: choosing 2,000 of a million costs ~45 ms a column, more than the
    sparse product that made the scores. Here every `step`-th row gives each column a threshold that a few more
    than n rows reach (a margin of four deviations of the sample's count), one vectorised comparison keeps those
    rows, and only they are sorted; a column whose threshold keeps fewer than n rows is done in full (with the
    margin of 1.4 n it had, that was most columns at n = 200: 24 ms a column of 500k rows instead of ~2). Every
    row of the true top n scores at least the n-th best, hence at least the threshold, so nothing is lost.
    """
    n_rows, n_cols = scores.shape
    n = min(n, n_rows)
    expected = n / step  # rows of the true top n in the sample, on average: keep a margin of a few deviations
    rank = int(np.ceil(expected + 4 * np.sqrt(expected) + 4))
    idx = np.empty((n_cols, n), dtype=np.int64)
    values = np.empty((n_cols, n), dtype=scores.dtype)
    if n == 0:
        return idx, values
    done = np.zeros(n_cols, dtype=bool)
    if n_rows >= 4 * n and rank <= (n_rows + step - 1) // step:
        sample = scores[::step]
        threshold = -np.partition(-sample, rank - 1, axis=0)[rank - 1]
        r, c = np.nonzero(scores > threshold[None, :])  # ties at the threshold are added below, lowest rows first
        order = np.argsort(c, kind="stable")  # by column, rows ascending inside
        r, c = r[order], c[order]
        edges = np.concatenate([[0], np.cumsum(np.bincount(c, minlength=n_cols))])
        for j in range(n_cols):
            rows = r[edges[j]:edges[j + 1]]
            if rows.size < n:  # the n-th best may sit at the threshold (e.g. many rows scoring 0)
                ties = np.flatnonzero(scores[:, j] == threshold[j])[:n - rows.size]
                if rows.size + ties.size < n:
                    continue
                rows = np.concatenate([rows, ties])
            vals = scores[rows, j]
            best = np.lexsort((rows, -vals))[:n]
            idx[j], values[j], done[j] = rows[best], vals[best], True
    for j in np.flatnonzero(~done):
        column = scores[:, j]
        best = np.lexsort((np.arange(n_rows), -column))[:n]
        idx[j], values[j] = best, column[best]
    return idx, values


class CsrProduct:
    """Library rows lo..hi of a CSR matrix times dense query columns, through MKL's sparse BLAS where torch has it.

    Why not scipy's product alone: it is one plain loop per row; torch's CSR x dense product calls MKL (x86
    wheels) and is 2.4x faster on the 1 M-spectrum library (5.8 vs 13.7 ms a query on 2 cores, 64 queries a
    block, two row parts on two threads). The rows are views of the matrix's arrays, never copied (scipy's row
    slice, and its constructor for a view of less than half an array, would copy: a memory-mapped matrix,
    `llm4ms.library.classic_retrieval.load_exact`, would be read into memory whole). scipy's product where torch
    has no MKL. Scores agree with scipy's to float32 rounding (about 1e-7).
    """

    def __init__(self, matrix: Any, lo: int = 0, hi: Optional[int] = None) -> None:
        hi = matrix.shape[0] if hi is None else hi
        start, stop = int(matrix.indptr[lo]), int(matrix.indptr[hi])
        self.shape = (hi - lo, matrix.shape[1])
        self.data, self.indices = matrix.data[start:stop], matrix.indices[start:stop]
        self.indptr = (np.asarray(matrix.indptr[lo:hi + 1]) - start).astype(matrix.indptr.dtype)
        self._torch = self._scipy = None
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a core dependency
            torch = None
        if (torch is not None and torch.backends.mkl.is_available() and stop > start
                and self.data.dtype == np.float32 and self.indptr.dtype == self.indices.dtype
                and matrix.has_canonical_format):
            self._torch = torch.sparse_csr_tensor(torch.from_numpy(self.indptr), torch.from_numpy(self.indices),
                                                  torch.from_numpy(self.data), size=self.shape,
                                                  check_invariants=False)
        else:
            from scipy import sparse

            self._scipy = sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def __matmul__(self, q: np.ndarray) -> np.ndarray:
        """(rows, columns of `q`) float32."""
        if self._torch is None:
            return np.asarray(self._scipy @ q, dtype=np.float32)
        import torch

        return (self._torch @ torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32))).numpy()


class ClassicIndex:
    """Exhaustive top-n of a whole library under a sparse-product score (``cosine``, ``cosine_sqrt``, ``wcs``).

    The ranking retrieves candidates by the embedding *and* by the classic score it fuses with (a weak
    embedding alone misses fused top hits deep in a large library); this is the classic side: the library's
    weight vectors as one CSR matrix, queries streamed through it in blocks (the same vectors `score_matrix`
    uses; the product is `CsrProduct`'s, so the scores agree with `score_matrix` to float32 rounding).
    """

    def __init__(self, name: str, spectra: Iterable[Spectrum], max_mz: int = MAX_MZ) -> None:
        """`spectra` is read once, so a generator keeps a million-spectrum library out of memory as objects."""
        if not self.supports(name):
            raise ConfigError(f"classic retrieval needs one of {', '.join(PRESETS)}, not {name!r}")
        self.name, self.max_mz = name, max_mz
        self.weighting = PRESETS[name]
        self.matrix = weighted_matrix(spectra, self.weighting[0], self.weighting[1], max_mz)
        self._row_parts: tuple[Any, list[Any]] = (None, [])  # (matrix id and bounds, their row parts)

    @classmethod
    def from_matrix(cls, name: str, matrix: Any, max_mz: int = MAX_MZ) -> "ClassicIndex":
        """An index over a `weighted_matrix` already built for score `name` (e.g. from a library's stored peaks)."""
        index = cls(name, [], max_mz)
        index.matrix = matrix
        return index

    @staticmethod
    def supports(name: str) -> bool:
        return name in PRESETS

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def scores(self, query: Spectrum, idx: np.ndarray) -> np.ndarray:
        """Scores (len(idx),) float32 of one query against library rows `idx` (equal to `scores`)."""
        mz_power, intensity_power, square = self.weighting
        rows = self.matrix[np.asarray(idx, dtype=np.int64)]
        out = cosine_block(rows, weighted_matrix([query], mz_power, intensity_power, self.max_mz))[0]
        return out * out if square else out

    #: query rows x library spectra scored at once (a dense float32 block of at most ~256 MB)
    BLOCK_CELLS = 1 << 26

    #: libraries at least this large are scored in row parts on `threads` threads (the sparse product and numpy's
    #: selection release the GIL: 1.4x on 2 cores at 500k rows, measured with scipy's product)
    THREADED_ROWS = 200_000

    def top(self, queries: Sequence[Spectrum], n: int, block: Optional[int] = None,
            threads: Optional[int] = None, select: Optional[Select] = None) -> np.ndarray:
        """(len(queries), min(n, library size)) library indices, best first, ties by the lower index.

        By default the best by the score itself. With `select`, the best by what it makes of each block of scores
        (the ranking selects by its whole fused score this way, `llm4ms.ranking.FusedSelection`), in the same pass.
        """
        n = min(n, len(self))
        block = block or max(1, min(256, self.BLOCK_CELLS // max(len(self), 1)))
        threads = threads or (min(4, os.cpu_count() or 1) if len(self) >= self.THREADED_ROWS else 1)
        bounds = np.linspace(0, len(self), threads + 1).astype(np.int64)
        out = np.zeros((len(queries), n), dtype=np.int64)
        mz_power, intensity_power, _ = self.weighting
        pieces = self._pieces(bounds)
        # the parts are the parallelism: a BLAS product inside one (a selection's) on its own threads too
        # oversubscribes the cores (U in `FusedSelection`: 5.6 vs 3.6 ms a query at 1 M on 2 cores)
        with ThreadPoolExecutor(threads) as pool, threadpool_limits(1 if threads > 1 else None, user_api="blas"):
            for start in range(0, len(queries), block):
                chunk = list(queries[start:start + block])
                q = np.ascontiguousarray(weighted_matrix(chunk, mz_power, intensity_power, self.max_mz).toarray().T,
                                         dtype=np.float32)
                part = partial(self._part_top, q, n, select=select, columns=(start, start + len(chunk)))
                parts = list(pool.map(lambda b: part(*b), zip(pieces, bounds[:-1], bounds[1:])))
                cand = np.concatenate([p[0] for p in parts], axis=1)
                sims = np.concatenate([p[1] for p in parts], axis=1)
                for row in range(len(chunk)):
                    out[start + row] = cand[row][np.lexsort((cand[row], -sims[row]))[:n]]
        return out

    def _pieces(self, bounds: np.ndarray) -> list[Any]:
        """The library's row parts between `bounds` as `CsrProduct`s, made once per index and part layout."""
        key = (id(self.matrix), tuple(int(b) for b in bounds))
        if self._row_parts[0] != key:
            self._row_parts = (key, [CsrProduct(self.matrix, int(lo), int(hi))
                                     for lo, hi in zip(bounds[:-1], bounds[1:])])
        return self._row_parts[1]

    def _part_top(self, q: np.ndarray, n: int, rows: Any, lo: int, hi: int, select: Optional[Select] = None,
                  columns: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
        """The best min(n, len(rows)) of `rows` (library rows lo..hi) per query column of dense `q`, and their
        selection scores."""
        sims = rows @ q  # (rows, queries) cosines >= 0: the squared ones' order
        if select is None:
            idx, values = top_per_column(sims, n)
        else:
            if self.weighting[2]:
                sims *= sims
            idx, values = select(sims, lo, hi, *columns, min(n, hi - lo))
        return idx + lo, values
