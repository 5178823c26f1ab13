"""Scores by name: one query (or many) against a list of candidate spectra, e.g. to re-rank search hits.

``cosine``, ``cosine_sqrt`` and ``wcs`` are one sparse matrix product (`PRESETS`); ``composite`` adds the NIST
peak-ratio term per pair; ``entropy`` scores pair by pair with ms-entropy (the extra ``llm4ms[baselines]``).
``cosine_hr``, ``modified_cosine`` and ``entropy_hr`` compare MS/MS peaks at their recorded (accurate) m/z, pair by
pair with matchms and ms-entropy (`llm4ms.similarity.accurate`); `max_mz` does not apply to them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.similarity.accurate import ACCURATE_SCORES, accurate_matrix
from llm4ms.similarity.classic import (COMPOSITE_WEIGHTING, MAX_MZ, PRESETS, composite_score, cosine_block,
                                       weighted_matrix, weighted_peaks)
from llm4ms.similarity.entropy import entropy_matrix
from llm4ms.spectrum import Spectrum

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
