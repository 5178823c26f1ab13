"""Spectrum similarity: the classic scores used by re-ranking and by evaluation alike.

One room owns the math and its constants (`PRESETS`): nominal-mass binning, weighted cosine matrices,
the NIST composite and entropy similarity. Production code (re-ranking in `llm4ms.library`) and the
evaluation baselines (`llm4ms.evaluate.classic`, `llm4ms.evaluate.entropy_scorer`) both import from here;
nothing here imports `llm4ms.evaluate`.

>>> scores("wcs", query, candidates)          # (n_candidates,) float32
>>> score_matrix("cosine_sqrt", queries, library)  # (n_queries, n_library) float32
>>> scores("entropy_hr", query, candidates)   # MS/MS at accurate m/z (also cosine_hr, modified_cosine)
"""
from __future__ import annotations

from llm4ms.similarity.accurate import (ACCURATE_SCORES, cosine_hr_matrix, entropy_hr_matrix,
                                        modified_cosine_matrix)
from llm4ms.similarity.classic import (COMPOSITE_WEIGHTING, MAX_MZ, PRESETS, Weighting, composite_score,
                                       cosine_block, nominal_peaks, weighted_matrix, weighted_peaks)
from llm4ms.similarity.entropy import entropy_matrix, entropy_pairs, entropy_peaks
from llm4ms.similarity.named import SCORES, check_score, score_matrix, scores

__all__ = ["ACCURATE_SCORES", "COMPOSITE_WEIGHTING", "MAX_MZ", "PRESETS", "SCORES", "Weighting", "check_score",
           "composite_score", "cosine_block", "cosine_hr_matrix", "entropy_hr_matrix", "entropy_matrix",
           "entropy_pairs", "entropy_peaks", "modified_cosine_matrix", "nominal_peaks", "score_matrix", "scores",
           "weighted_matrix", "weighted_peaks"]
