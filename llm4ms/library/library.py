"""`Library`: a searchable spectral library folder: build it from spectra, load it, and search it with query
spectra.

`Library` is the Python face of ``llm4ms embed`` / ``llm4ms index`` / ``llm4ms search``; notebooks use it
directly. Scores are cosine similarities of L2-normalised embeddings (FAISS inner product). The folder itself
(its layout, checks and writer) is `llm4ms.library.store`'s business.
"""
from __future__ import annotations

import logging
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError, Llm4msError, ModelMismatchError
from llm4ms.io.formats import estimate_record_count
from llm4ms.library.filters import CandidateFinder, SearchFilters
from llm4ms.library.hits import Hit, make_hits
from llm4ms.library.index import IndexSpec, search_index, to_gpu_if_available
from llm4ms.library.index_file import index_problem, open_index, write_index
from llm4ms.library.lock import writer_lock
from llm4ms.library.merge import check_shards, write_merged
from llm4ms.library.store import StoreWriter, chunked, open_complete, source_fingerprint
from llm4ms.ranking import (IonOdds, MassTable, Ranking, classic_candidates, model_ranking, rerank_all,
                            resolve_ranking, uses_fused_selection)
from llm4ms.spectrum import CONFIDENCE_KEY, Spectrum

log = logging.getLogger(__name__)


def model_info(encoder: Any, reference: Optional[str] = None) -> dict[str, Any]:
    """What a library records about the model that embedded it."""
    ref = reference or getattr(encoder, "name_or_path", None)
    return {"identity": encoder.identity, "reference": str(ref) if ref else None, "dim": int(encoder.dim)}


class Library:
    """An embedded spectral library folder (see `llm4ms.library.store` for its layout)."""

    def __init__(self, folder: str | Path, mmap: bool = True, trust_model: Optional[bool] = None) -> None:
        """Open a complete library folder, checking every file against its manifest (`open_complete`).

        `trust_model`: may `encoder()` load the model the manifest names when it is not a local folder (a Hub
        id)? Default: only when $LLM4MS_TRUST_LIBRARY_MODEL is set (a library folder is data; it must not
        make this machine download and run a model it chose).
        """
        from llm4ms.defaults import trusted_library_models

        self.folder = Path(folder)
        self.manifest, self._files = open_complete(self.folder, mmap=mmap)
        self.embeddings = self._files.embeddings
        self.masses = self._files.masses  # NaN where unknown
        self._finder = CandidateFinder(self.masses, self._files.precursors, self._files.ion_modes)
        self._index = None
        self._encoder = None
        self._classic_indexes: dict[tuple[str, bool], Any] = {}  # (score, approximate) -> its retrieval
        self._structures: dict[str, Any] = {}  # fingerprint settings -> the kept StructureBits (or None)
        self._mass_table: Optional[MassTable] = None  # the library's `MassTable`, made once
        self.trust_model = trusted_library_models() if trust_model is None else bool(trust_model)

    # ---- building --------------------------------------------------------------------------------
    @classmethod
    def build(cls, spectra: str | Path | Iterable[Spectrum], out_dir: str | Path, encoder: Any,
              batch_size: int = 64, index: IndexSpec | str = "auto", dtype: str = "float32",
              chunk_size: int = 1024, skip_invalid: bool = False, overwrite: bool = False,
              show_progress: Optional[bool] = None, model_reference: Optional[str] = None,
              keep_shards: bool = False, shard: Optional[tuple[int, int]] = None) -> "Library":
        """Embed `spectra` (a file path or an iterable) into `out_dir`, resumably, and build its index.

        With `shard=(i, n)` only every n-th usable spectrum starting at the i-th is embedded (no index is
        built): n processes or GPUs embed one input together, and `Library.merge` joins their folders.
        """
        if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
            raise ConfigError(f"shard must be (index, count) with 0 <= index < count, not {shard}")
        stream, source, report, total = _input(spectra, skip_invalid)
        with writer_lock(out_dir):  # one writer per folder; held until the index is written
            writer = StoreWriter(out_dir, model_info(encoder, model_reference), source=source, dtype=dtype,
                                 chunk_size=chunk_size, overwrite=overwrite, shard=shard)
            try:
                if writer.manifest.complete:
                    log.info("%s is already complete (%d spectra)", out_dir, writer.manifest.count)
                    return cls._repaired(out_dir, index if shard is None else None)
                cls._embed_into(writer, stream, encoder, report, total, batch_size, chunk_size, show_progress,
                                keep_shards, shard, index)
            finally:
                writer.close()
        return cls(out_dir)

    @classmethod
    def _repaired(cls, out_dir: str | Path, index: Optional[IndexSpec | str]) -> "Library":
        """A complete library, its index rebuilt first when missing or not the file the manifest records."""
        library = cls(out_dir)
        problem = index_problem(library.folder, library.manifest) if index is not None else None
        if problem:
            log.info("%s: %s; rebuilding the index", out_dir, problem)
            library.build_index(index)
        return library

    @staticmethod
    def _embed_into(writer: StoreWriter, stream: Iterable[Spectrum], encoder: Any, report: Any,
                    total: Optional[int], batch_size: int, chunk_size: int, show_progress: Optional[bool],
                    keep_shards: bool, shard: Optional[tuple[int, int]], index: IndexSpec | str) -> None:
        from tqdm.auto import tqdm

        done = writer.done
        if done:
            log.info("resuming %s after %d embedded spectra", writer.folder, done)
        if total is not None and shard is not None:
            total = -(-total // shard[1])
        disable = (not show_progress) if show_progress is not None else None
        bar = tqdm(total=total, initial=done, unit="spectra", desc="embed", disable=disable, dynamic_ncols=True)
        empty = _Counter()
        numbered = enumerate(_with_peaks(stream, empty), start=1)
        if shard is not None:
            numbered = ((r, s) for r, s in numbered if (r - 1) % shard[1] == shard[0])
        for chunk in chunked(islice(numbered, done, None), chunk_size):
            records = [r for r, _ in chunk]
            spectra_chunk = [s for _, s in chunk]
            embeddings = encoder.encode(spectra_chunk, batch_size=batch_size, show_progress=False)
            writer.add_chunk(np.asarray(embeddings, dtype=np.float32), spectra_chunk, records)
            bar.update(len(chunk))
        bar.close()
        writer.finish(skipped=report.skipped if report else 0, empty=empty.count,
                      keep_shards=keep_shards, index=index if shard is None else None)

    @classmethod
    def merge(cls, shard_dirs: Sequence[str | Path], out_dir: str | Path, index: IndexSpec | str = "auto",
              chunk_size: int = 4096, overwrite: bool = False) -> "Library":
        """Join the shard libraries of one distributed `build` into one library, in input order
        (`llm4ms.library.merge`)."""
        shards = [cls(d) for d in shard_dirs]
        check_shards(shards, shard_dirs)
        with writer_lock(out_dir):
            if not write_merged(shards, out_dir, index=index, chunk_size=chunk_size, overwrite=overwrite):
                return cls._repaired(out_dir, index)  # merged before
        return cls(out_dir)

    def build_index(self, spec: IndexSpec | str = "auto") -> IndexSpec:
        """(Re)build the FAISS index of this library and record it (with its checksum) in the manifest.

        Holds the folder's writer lock meanwhile: refused while another process writes the folder.
        """
        resolved = write_index(self.folder, self.manifest, spec)
        self._index = None
        return resolved

    # ---- loading and access -----------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> "Library":
        return cls(folder, mmap=mmap)

    def __len__(self) -> int:
        return int(self.manifest.count)

    @property
    def model_reference(self) -> Optional[str]:
        return self.manifest.model.get("reference")

    @property
    def index(self):
        """The FAISS index, read and checked (size, checksum, vector count, dimension) on first use."""
        if self._index is None:
            self._index = to_gpu_if_available(open_index(self.folder, self.manifest))
        return self._index

    def metadata_row(self, i: int) -> dict[str, Any]:
        """The stored metadata of library spectrum `i`: id, name, inchikey, smiles, formula, exact_mass, ..."""
        return self._files.row(i)

    def metadata_rows(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return self._files.rows(indices)

    def source_records(self) -> np.ndarray:
        """The 1-based position of each library spectrum in the input file it was embedded from."""
        return self._files.source_records()

    def peaks(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(m/z, intensities) of library spectrum `i` without touching the metadata table (fast)."""
        return self._files.peaks(i)

    def spectrum(self, i: int) -> Spectrum:
        """The stored peaks and metadata of library spectrum `i` (0-based)."""
        if not 0 <= int(i) < len(self):
            raise IndexError(f"library index {i} out of range (library holds {len(self)} spectra)")
        return self._stored(i, {k: v for k, v in self.metadata_row(i).items() if v is not None})

    def _stored(self, i: int, metadata: Optional[dict[str, Any]] = None) -> Spectrum:
        """Library spectrum `i` from its stored peaks (float64, as the scores take them) with `metadata`."""
        mz, intensities = self.peaks(int(i))
        return Spectrum(mz=mz.astype(np.float64), intensities=intensities.astype(np.float64), metadata=metadata or {})

    def info(self) -> dict[str, Any]:
        """A summary for `llm4ms info` and the web UI."""
        m = self.manifest
        return {"folder": str(self.folder), "spectra": m.count, "skipped_invalid": m.skipped,
                "empty_not_embedded": m.empty, "model": m.model, "dtype": m.dtype, "index": m.index,
                "source": m.source, "created": m.created, "llm4ms_version": m.llm4ms_version,
                "with_structure": self._files.with_structure()}

    # ---- searching --------------------------------------------------------------------------------
    def encoder(self, encoder: Any = None) -> Any:
        """The encoder to embed queries with: the given one (checked) or the library's own model.

        The library's own model is loaded only from a local folder unless `trust_model` allows what the
        manifest names (a Hub id); a model folder that cannot be loaded is one `ConfigError` line.
        """
        if encoder is None:
            encoder = self._own_encoder()
        if encoder.identity != self.manifest.model.get("identity"):
            raise ModelMismatchError(
                f"{self.folder}: library was embedded with {self.model_reference!r} "
                f"(identity {str(self.manifest.model.get('identity'))[:12]}), but the query model has identity "
                f"{str(encoder.identity)[:12]}; search with the same model or re-embed the library")
        return encoder

    def _own_encoder(self) -> Any:
        """The model the manifest names, loaded once."""
        if self._encoder is None:
            ref = self.model_reference
            if not ref:
                raise ConfigError(f"{self.folder}: the library does not record its model; pass --model")
            from llm4ms.defaults import load_library_model

            self._encoder = load_library_model(ref, self.folder, trusted=getattr(self, "trust_model", False))
        return self._encoder

    def search(self, queries: Sequence[Spectrum], k: int = 10, encoder: Any = None,
               mass_tolerance: Optional[float] = None, query_masses: Optional[Sequence[Optional[float]]] = None,
               min_score: Optional[float] = None, batch_size: int = 64,
               show_progress: Optional[bool] = False, ranking: Optional[Ranking] = None,
               rerank: Optional[str] = None, rerank_depth: Optional[int] = None,
               precursor_tolerance: Any = None, ion_mode: Optional[str] = None) -> list[list[Hit]]:
        """Top-`k` hits per query, ordered by `ranking` (default: the one fit for the library's model).

        The index proposes the ranking's ``depth`` best candidates by embedding; they are re-scored by the
        fused score and the mass prior (`llm4ms.ranking`). With `mass_tolerance` (Da), only library spectra
        whose molecular mass is within the tolerance of the query's mass are candidates (the query mass from
        `query_masses` or the query's metadata); queries without a known mass are searched unfiltered.
        MS/MS: with `precursor_tolerance` (``"10ppm"``, ``"0.01Da"`` or ``(10, "ppm")``) only library spectra
        whose precursor m/z lies within it of the query's precursor m/z are candidates (queries without one are
        not restricted); with `ion_mode` ("positive"/"negative") only library spectra of that ion mode. No
        precursor tolerance = analogue search. The filters combine (`llm4ms.library.filters`).
        `rerank` / `rerank_depth`: re-score candidates by that classic score alone (older option).
        """
        from llm4ms.io.validate import require_searchable
        from llm4ms.query_checks import check_search_settings

        check_search_settings(k, mass_tolerance=mass_tolerance, masses=query_masses, min_score=min_score,
                              rerank_depth=rerank_depth, precursor_tolerance=precursor_tolerance,
                              ion_mode=ion_mode)
        queries = [require_searchable(q, f"query {i}") for i, q in enumerate(queries, start=1)]
        if not queries:
            return []
        enc = self.encoder(encoder)
        base = ranking if ranking is not None else model_ranking(enc)
        ranking = resolve_ranking(base, rerank=rerank, depth=rerank_depth)
        q = np.asarray(enc.encode(queries, batch_size=batch_size, show_progress=show_progress), dtype=np.float32)
        depth = max(k, ranking.depth) if ranking.reranks else k
        unfiltered = mass_tolerance is None and precursor_tolerance is None and ion_mode is None
        retrieval = (self.classic_index(ranking.classic, ranking.classic_approximate)
                     if ranking.classic_retrieval else None)
        fused = unfiltered and retrieval is not None and uses_fused_selection(ranking, retrieval)
        if fused:
            depth = max(k, min(depth, ranking.fused_depth))  # the fused selection holds the list's top
        indices, scores = self.retrieve(q, queries, depth, mass_tolerance=mass_tolerance,
                                        query_masses=query_masses, precursor_tolerance=precursor_tolerance,
                                        ion_mode=ion_mode)
        if ranking.reranks:
            classic_fn = self._classic_fn(ranking.classic)
            extra = embedding_fn = None
            ion_odds = None
            if self.masses is not None and ranking.prior.ion_weight > 0:
                if self._mass_table is None:
                    self._mass_table = MassTable(self.masses)
                ion_odds = IonOdds.for_search(ranking, queries, self.masses, self._mass_table)
            if retrieval is not None:
                classic_fn = retrieval.scores
                if unfiltered:
                    # (a filter already searches its candidates exactly)
                    extra = classic_candidates(ranking, retrieval, queries, q, self.embeddings, self.masses,
                                               ion_odds)

                    def embedding_fn(row: int, idx: np.ndarray) -> np.ndarray:
                        order = np.argsort(idx)
                        rows = np.empty((idx.size, q.shape[1]), dtype=np.float32)
                        rows[order] = np.asarray(self.embeddings[idx[order]], dtype=np.float32)
                        return rows @ q[row]
            indices, scores = rerank_all(ranking, queries, indices, scores, classic_fn, self.masses, k,
                                         extra=extra, embedding_fn=embedding_fn, candidates_fn=self._candidates,
                                         structures_fn=self._structure_bits, ion_odds=ion_odds)
        return make_hits(queries, indices, scores, min_score, self.metadata_rows)

    def search_embeddings(self, q: np.ndarray, queries: Sequence[Spectrum], k: int = 10,
                          mass_tolerance: Optional[float] = None,
                          query_masses: Optional[Sequence[Optional[float]]] = None,
                          min_score: Optional[float] = None, precursor_tolerance: Any = None,
                          ion_mode: Optional[str] = None) -> list[list[Hit]]:
        """Hits by embedding alone, for queries already embedded with this library's model."""
        indices, scores = self.retrieve(q, queries, k, mass_tolerance=mass_tolerance, query_masses=query_masses,
                                        precursor_tolerance=precursor_tolerance, ion_mode=ion_mode)
        return make_hits(queries, indices, scores, min_score, self.metadata_rows)

    def retrieve(self, q: np.ndarray, queries: Sequence[Spectrum], k: int,
                 mass_tolerance: Optional[float] = None,
                 query_masses: Optional[Sequence[Optional[float]]] = None,
                 precursor_tolerance: Any = None, ion_mode: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, inner products) of the `k` nearest library embeddings per query, padded with -1 / -inf.

        Queries a filter restricts are searched exactly among their candidates; the others through the index.
        """
        filters = SearchFilters.checked(k, mass_tolerance=mass_tolerance, query_masses=query_masses,
                                        precursor_tolerance=precursor_tolerance, ion_mode=ion_mode)
        if query_masses is not None and len(query_masses) != len(queries):
            raise ConfigError("query_masses must give one mass (or None) per query")
        n = len(queries)
        indices = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        candidates = self._finder.for_queries(queries, filters) if filters.active else [None] * n
        unfiltered = [i for i, cand in enumerate(candidates) if cand is None]
        groups: dict[int, tuple[np.ndarray, list[int]]] = {}
        for i, cand in enumerate(candidates):
            if cand is not None:
                groups.setdefault(id(cand), (cand, []))[1].append(i)
        for cand, rows in groups.values():
            ix, s = self._exact_top_k(cand, q[rows], k)
            indices[rows, :ix.shape[1]] = ix
            scores[rows, :s.shape[1]] = s
        if unfiltered:
            s, ix = search_index(self.index, q[unfiltered], k)
            indices[unfiltered, :ix.shape[1]] = ix
            scores[unfiltered, :s.shape[1]] = s
        return indices, scores

    #: library rows scored at once by the exact search among a filter's candidates
    EXACT_BLOCK = 65536

    def _exact_top_k(self, cand: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` best of the library indices `cand` for each row of `q` by inner product, ties by lower index:
        ``(indices, scores)`` of shape (len(q), min(k, len(cand)))."""
        best_i = np.zeros((q.shape[0], 0), dtype=np.int64)
        best_s = np.zeros((q.shape[0], 0), dtype=np.float32)
        for start in range(0, cand.size, self.EXACT_BLOCK):
            block = cand[start:start + self.EXACT_BLOCK]
            s = q @ np.asarray(self.embeddings[block], dtype=np.float32).T
            all_i = np.concatenate([best_i, np.broadcast_to(block, s.shape)], axis=1)
            all_s = np.concatenate([best_s, s.astype(np.float32)], axis=1)
            top = np.stack([np.lexsort((all_i[r], -all_s[r]))[:k] for r in range(q.shape[0])])
            best_i = np.take_along_axis(all_i, top, axis=1)
            best_s = np.take_along_axis(all_s, top, axis=1)
        return best_i, best_s

    def classic_index(self, name: str, approximate: bool = False):
        """Retrieval by the classic score `name`: exhaustive, or through the approximate index kept beside the
        library (`llm4ms.library.classic_retrieval`); built on first use and kept with the library object."""
        from llm4ms.library.classic_retrieval import classic_retrieval

        if (name, approximate) not in self._classic_indexes:
            exact = self._classic_indexes.get((name, False))
            self._classic_indexes[name, approximate] = classic_retrieval(self.folder, self.manifest, self._files,
                                                                         name, approximate, exact)
        return self._classic_indexes[name, approximate]

    def _structure_bits(self, config: Any, idx: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """The candidates' structure bits if this library keeps them for `config` (`prepare_search`), else None."""
        from llm4ms.library.structure_cache import load_structure_bits

        key = repr(config)
        if key not in self._structures:
            self._structures[key] = load_structure_bits(self.folder, self.manifest, config)
        bits = self._structures[key]
        return None if bits is None else bits(idx)

    def prepare_search(self, encoder: Any = None, approximate_classic: bool = False, processes: Optional[int] = None,
                       show_progress: Optional[bool] = None) -> list[str]:
        """Build what the model's ranking needs to search a large library fast, kept beside it: above
        `classic_retrieval.MATRIX_KEEP_ABOVE` spectra the classic score's exhaustive matrix (mapped by the next
        process instead of rebuilt: ~1 s instead of ~20 s at 1 M) and, above `structure_cache.KEEP_ABOVE`, for a
        learned re-ranker, the candidates' structure fingerprints (neither changes the hits); with
        `approximate_classic` the approximate classic-score index (for ``--approximate-classic``). Returns what was
        built or found ready."""
        from llm4ms.library.classic_retrieval import MATRIX_KEEP_ABOVE, prepare_exact
        from llm4ms.library.structure_cache import KEEP_ABOVE, build_structure_bits, load_structure_bits
        from llm4ms.reranker import load_reranker
        from llm4ms.similarity.named import ClassicIndex

        if not approximate_classic and len(self) <= min(KEEP_ABOVE, MATRIX_KEEP_ABOVE):
            return []  # nothing to keep (and no need to open the model)
        ranking = model_ranking(self.encoder(encoder))
        done = []
        if (ranking.classic_retrieval and len(self) > MATRIX_KEEP_ABOVE
                and ClassicIndex.supports(ranking.classic)):
            if prepare_exact(self.folder, self.manifest, self._files, ranking.classic):
                done.append(f"exact {ranking.classic} matrix")
        if approximate_classic and ranking.fusion < 1.0:
            self.classic_index(ranking.classic, approximate=True)
            done.append(f"approximate {ranking.classic} index")
        if ranking.reranker and len(self) > KEEP_ABOVE and self._files.with_structure():
            config = load_reranker(ranking.reranker).fingerprint_model.config
            if load_structure_bits(self.folder, self.manifest, config) is None:
                smiles = self._files.table.column("smiles").to_pylist()
                build_structure_bits(self.folder, self.manifest, smiles, config, processes, show_progress)
            self._structures.pop(repr(config), None)
            done.append("structure fingerprints")
        return done

    def _candidates(self, idx: np.ndarray) -> list[Spectrum]:
        """Library rows `idx` as spectra with their SMILES and prediction confidence (what the learned
        re-ranker reads)."""
        rows = self.metadata_rows([int(i) for i in idx])
        offsets, mz, intensities = self._files.gathered_peaks(idx)
        mz, intensities = mz.astype(np.float64), intensities.astype(np.float64)
        return [Spectrum(mz[start:end], intensities[start:end],
                         {key: row.get(key) for key in ("smiles", CONFIDENCE_KEY)
                          if row.get(key) is not None and row.get(key) == row.get(key)})
                for start, end, row in zip(offsets[:-1], offsets[1:], rows)]

    def _classic_fn(self, name: str):
        """Classic scores of a query against stored library peaks (the same score evaluation uses); the
        sparse-product scores straight from the stored arrays, the others through spectra."""
        from llm4ms.similarity.classic import PRESETS, weighted_matrix_from_peaks
        from llm4ms.similarity.named import ClassicIndex, scores

        if not ClassicIndex.supports(name):
            return lambda query, idx: scores(name, query, [self._stored(i) for i in idx])
        mz_power, intensity_power, _ = PRESETS[name]

        def classic(query: Spectrum, idx: np.ndarray) -> np.ndarray:
            rows = weighted_matrix_from_peaks(*self._files.gathered_peaks(idx), mz_power, intensity_power)
            return ClassicIndex.from_matrix(name, rows).scores(query, np.arange(len(idx)))

        return classic

    def mass_candidates(self, mass: float, tolerance: float) -> np.ndarray:
        """Library indices whose molecular mass is within `tolerance` Da of `mass` (ascending order)."""
        return self._finder.mass(mass, tolerance)

    def precursor_candidates(self, mz: float, tolerance: Any) -> np.ndarray:
        """Library indices whose precursor m/z is within `tolerance` (``"10ppm"``, ``"0.01Da"``) of `mz`."""
        from llm4ms.mass import Tolerance
        from llm4ms.query_checks import check_tolerance

        return self._finder.precursor(mz, Tolerance(*check_tolerance(tolerance)))


def _input(spectra: str | Path | Iterable[Spectrum], skip_invalid: bool) -> tuple[Iterable[Spectrum], Any, Any,
                                                                                  Optional[int]]:
    """(stream, source fingerprint, read report, estimated count) of a build's input: a file or an iterable."""
    if not isinstance(spectra, (str, Path)):
        return spectra, None, None, None
    from llm4ms.io import ReadReport, read_spectra

    path = Path(spectra)
    if not path.exists():
        raise Llm4msError(f"{path}: no such file")
    source = source_fingerprint(path)
    report = ReadReport(path=str(path))
    total = estimate_record_count(path)
    return read_spectra(path, skip_invalid=skip_invalid, report=report), source, report, total


class _Counter:
    count = 0


def _with_peaks(stream: Iterable[Spectrum], empty: _Counter) -> Iterable[Spectrum]:
    """Pass spectra that have peaks; count (never silently drop) those without, which cannot be embedded."""
    for spectrum in stream:
        if spectrum.is_searchable:
            yield spectrum
        else:
            empty.count += 1
