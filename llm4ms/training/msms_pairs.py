"""Training triples for MS/MS: replicate pairs across energies and instruments, isomer-aware hard negatives.

Why not `llm4ms.training.mining.build_triples` as is: MS/MS spectra of one compound differ mostly by
collision energy and instrument, positive and negative ion mode are different spectra of different ions,
and the candidates a precursor-window search must tell apart are the spectra of *other compounds with the
same precursor m/z* (isomers, isobars). So here:

- spectra are grouped by ion mode (a pair never mixes modes);
- the positive of an anchor is another spectrum of the same compound (InChIKey first block) in the same
  mode, preferring one with a different collision energy or instrument (what a library search meets);
- the hard negatives are the spectra of other compounds closest to the anchor by binned sqrt-intensity
  cosine *within the precursor window* (``precursor_tolerance_da``), topped up by the closest other
  compounds overall when the window holds too few.

Compounds with a single spectrum in a mode are not anchors (no augmentation: MS/MS replicates are plenty).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional, Sequence

import numpy as np

from llm4ms.mass import mass_window, sort_by_mass
from llm4ms.spectrum import Spectrum
from llm4ms.training.mining import binned_matrix, nearest_other

#: m/z range of the binned vectors used to mine negatives (MS/MS fragments reach ~2,000)
MSMS_MAX_MZ = 2000


def _condition(spectrum: Spectrum) -> tuple[str, str]:
    """(collision energy, instrument) as recorded: what makes two replicate spectra differ."""
    return (str(spectrum.get("collision_energy") or ""), str(spectrum.get("instrument") or ""))


def ion_mode_groups(spectra: Sequence[Spectrum]) -> dict[str, list[int]]:
    """{ion mode: indices}; spectra without a mode form the group ``"unknown"``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, spectrum in enumerate(spectra):
        groups[spectrum.ion_mode or "unknown"].append(i)
    return dict(groups)


def window_negatives(spectra: Sequence[Spectrum], vectors: np.ndarray, keys: Sequence[str], k: int,
                     tolerance_da: float) -> np.ndarray:
    """(n, k) indices: per spectrum, the most similar spectra of other compounds (one per compound) whose
    precursor m/z lies within `tolerance_da`; -1 where the window holds fewer."""
    precursors = np.array([np.nan if s.precursor_mz is None else s.precursor_mz for s in spectra])
    sorted_mz, order = sort_by_mass(precursors)
    keys_arr = np.asarray(keys)
    out = np.full((len(spectra), k), -1, dtype=np.int64)
    for i, mz in enumerate(precursors):
        if not np.isfinite(mz):
            continue
        window = mass_window(sorted_mz, order, float(mz), tolerance_da)
        window = window[keys_arr[window] != keys_arr[i]]
        if window.size == 0:
            continue
        sims = vectors[window] @ vectors[i]
        chosen, seen = [], set()
        for j in window[np.argsort(-sims, kind="stable")]:
            if keys_arr[j] not in seen:
                seen.add(keys_arr[j])
                chosen.append(j)
            if len(chosen) == k:
                break
        out[i, :len(chosen)] = chosen
    return out


def build_msms_triples(spectra: Sequence[Spectrum], num_negatives: int = 1, precursor_tolerance_da: float = 0.01,
                       seed: int = 0) -> list[dict]:
    """One triple per anchor spectrum with a same-compound mate in its ion mode (see module doc):
    ``{anchor, positive, negatives, anchor_key}`` with Spectrum objects, as `build_triples` returns."""
    rng = np.random.default_rng(seed)
    triples: list[dict] = []
    for mode, members in ion_mode_groups(spectra).items():
        group = [spectra[i] for i in members if spectra[i].inchikey14]
        if len(group) < 2:
            continue
        keys = [s.inchikey14 for s in group]
        vectors = binned_matrix(group, max_mz=MSMS_MAX_MZ)
        near_window = window_negatives(group, vectors, keys, num_negatives, precursor_tolerance_da)
        near_any = nearest_other(vectors, keys, num_negatives) if num_negatives else near_window
        by_key: dict[str, list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            by_key[key].append(i)
        for i, anchor in enumerate(group):
            mates = [j for j in by_key[keys[i]] if j != i]
            if not mates:
                continue
            other_condition = [j for j in mates if _condition(group[j]) != _condition(anchor)]
            positive = group[int(rng.choice(other_condition or mates))]
            negatives = _merge(near_window[i], near_any[i], keys, keys[i], num_negatives)
            triples.append({"anchor": anchor, "positive": positive, "negatives": [group[j] for j in negatives],
                            "anchor_key": keys[i]})
    return triples


def _merge(first: np.ndarray, second: np.ndarray, keys: Sequence[str], own: str, k: int) -> list[int]:
    """Up to `k` indices from `first` then `second`, one per compound, never the anchor's compound."""
    chosen: list[int] = []
    seen = {own}
    for j in [*first.tolist(), *second.tolist()]:
        if j >= 0 and keys[j] not in seen:
            seen.add(keys[j])
            chosen.append(int(j))
        if len(chosen) == k:
            break
    return chosen


def msms_validation_sets(spectra: Sequence[Spectrum], seed: int = 0,
                         max_queries: Optional[int] = None) -> tuple[list[Spectrum], list[Spectrum]]:
    """(queries, library) for the training-time validation metric: one random spectrum per compound and
    ion mode that has another spectrum in that mode is a query; every other spectrum is in the library."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, spectrum in enumerate(spectra):
        if spectrum.inchikey14:
            groups[(spectrum.ion_mode or "unknown", spectrum.inchikey14)].append(i)
    query_rows = sorted(int(rng.choice(rows)) for rows in groups.values() if len(rows) >= 2)
    if max_queries is not None:
        query_rows = sorted(rng.permutation(query_rows)[:max_queries].tolist())
    taken = set(query_rows)
    return [spectra[i] for i in query_rows], [s for i, s in enumerate(spectra) if i not in taken]
