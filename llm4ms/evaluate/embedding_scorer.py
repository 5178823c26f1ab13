"""Our method as a scorer: embed library and queries with a `SpectrumEncoder`, rank by cosine.

Embeddings from `SpectrumEncoder.encode` are L2-normalised, so the inner product is the cosine and an
exact (brute-force) search is one matrix product per query chunk, like the published LLM4MS search.
Exact search keeps the comparison with the classic scores free of approximate-index recall loss.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.evaluate.scorers import Scorer
from llm4ms.spectrum import Spectrum


class EncoderScorer(Scorer):
    """Cosine search over `SpectrumEncoder` embeddings (`encoder` object, or `model` path/id)."""

    name = "llm4ms"

    def __init__(self, encoder: Any = None, model: Optional[str] = None, batch_size: int = 64,
                 library_embeddings: Optional[np.ndarray] = None, chunk_size: int = 1024,
                 ranking: Any = None) -> None:
        super().__init__(chunk_size)
        if encoder is None and model is None:
            from llm4ms.errors import ConfigError

            raise ConfigError("method 'llm4ms' needs a model: pass --model PATH")
        if encoder is None:
            from llm4ms.defaults import load_encoder

            encoder = load_encoder(model)  # a folder, Hub id or bundled name (`ei`, `msms`)
        self.encoder = encoder
        self.model_name = model
        from llm4ms.ranking import Ranking, model_ranking

        if ranking is None:
            ranking = model_ranking(encoder)
        elif not isinstance(ranking, Ranking):
            ranking = Ranking.from_dict(ranking)
        #: the same ranking `llm4ms search` applies with this model (exact retrieval: no index recall loss)
        self.ranking = ranking
        self._spectra: list = []
        self._masses: Optional[np.ndarray] = None
        self.batch_size = batch_size
        self._library = library_embeddings
        self._classic_index: Any = None
        self._approximate: Any = None  # the approximate index over `_classic_index`, when a ranking asks for it

    def settings(self) -> dict[str, Any]:
        from llm4ms.data.shared import portable_path

        model = portable_path(self.model_name) if self.model_name else None
        info: dict[str, Any] = {"model": model, "search": "exact inner product",
                                "ranking": self.ranking.to_dict(), "ranking_text": self.ranking.describe()}
        for attr in ("dim", "identity"):
            try:
                info[attr] = getattr(self.encoder, attr)
            except Exception:  # noqa: BLE001 - a stub encoder may lack these
                pass
        return info

    def _encode(self, spectra: Sequence[Spectrum]) -> np.ndarray:
        emb = np.asarray(self.encoder.encode(list(spectra), batch_size=self.batch_size), dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        np.divide(emb, norms, out=emb, where=norms > 0)
        return emb

    def fit(self, library: Sequence[Spectrum]) -> "EncoderScorer":
        if self._library is None or self._library.shape[0] != len(library):
            self._library = self._encode(library)
        self.n_library = self._library.shape[0]
        self._spectra = list(library)
        self._classic_index = self._approximate = None
        self._masses = np.array([np.nan if s.molecular_mass is None else s.molecular_mass for s in library],
                                dtype=np.float64)
        return self

    def search(self, queries: Sequence[Spectrum], k: int = 10, candidates=None,
               ranking: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Retrieve the ranking's depth by embedding, then re-score exactly as `Library.search` does.

        `ranking` replaces this scorer's ranking for one call (the runner's "without the prior" column).
        """
        from llm4ms.evaluate.scorers import search_by_chunks
        from llm4ms.ranking import IonOdds, classic_candidates, classic_from_spectra, rerank_all

        ranking = ranking if ranking is not None else self.ranking
        depth = max(k, ranking.depth) if ranking.reranks else k
        if self._library is None:
            raise RuntimeError("call fit(library) before searching")
        q = self._encode(queries)  # once: retrieval and the classic candidates' embedding scores share it
        idx, sc = search_by_chunks(lambda rows: q[np.asarray(rows)] @ self._library.T, np.arange(len(queries)),
                                   depth, self.n_library, candidates, self.chunk_size)
        if not ranking.reranks:
            return idx, sc
        classic_fn = classic_from_spectra(ranking.classic, self._spectra)
        extra = embedding_fn = None
        ion_odds = IonOdds.for_search(ranking, queries, self._masses)  # as `Library.search`
        if ranking.classic_retrieval:  # as `Library.search`
            from llm4ms.similarity.named import ClassicIndex

            if self._classic_index is None or self._classic_index.name != ranking.classic:
                self._classic_index = ClassicIndex(ranking.classic, self._spectra)
                self._approximate = None
            retrieval = self._classic_index
            if ranking.classic_approximate:
                from llm4ms.library.classic_retrieval import ApproximateClassicIndex

                if self._approximate is None:
                    self._approximate = ApproximateClassicIndex.build(self._classic_index)
                retrieval = self._approximate
            classic_fn = retrieval.scores
            if candidates is None:  # a filter already searches its candidates exactly
                extra = classic_candidates(ranking, retrieval, queries, q, self._library, self._masses, ion_odds)

                def embedding_fn(row: int, cand: np.ndarray) -> np.ndarray:
                    return self._library[cand] @ q[row]
        return rerank_all(ranking, queries, idx, sc, classic_fn, self._masses, k, extra=extra,
                          embedding_fn=embedding_fn, candidates_fn=lambda ix: [self._spectra[int(i)] for i in ix],
                          ion_odds=ion_odds)

    def score_chunk(self, queries: Sequence[Spectrum]) -> np.ndarray:
        if self._library is None:
            raise RuntimeError("call fit(library) before searching")
        return self._encode(queries) @ self._library.T


class EmbeddingOnlyScorer(EncoderScorer):
    """The model's embedding cosine alone (no fusion, no prior): what the learned part does by itself."""

    name = "llm4ms_embedding"

    def __init__(self, **options: Any) -> None:
        from llm4ms.ranking import Ranking

        options["ranking"] = Ranking()
        super().__init__(**options)
