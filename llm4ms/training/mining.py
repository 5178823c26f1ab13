"""Positives and hard negatives for supervised contrastive training.

Identity is the InChIKey first block. Positives are other spectra of the same compound (replicates, or
an in-silico spectrum when a predicted library is given); compounds measured once get an augmented
view. Hard negatives are the nearest *other* compounds, by binned sqrt-intensity cosine of the spectra
(what a classic search confuses) and/or Morgan-fingerprint Tanimoto of the structures (look-alike
molecules, the isomer problem). Both are vectorised as chunked matrix products.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

from llm4ms.spectrum import Spectrum, binned_vector
from llm4ms.training.augment import AugmentSettings, random_view

NEGATIVE_METHODS = ("cosine", "tanimoto", "both", "none")


def compound_groups(keys: Sequence[str]) -> dict[str, list[int]]:
    """{key: [indices]} in first-seen order."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return dict(groups)


def binned_matrix(spectra: Sequence[Spectrum], max_mz: int = 1000, power: float = 0.5) -> np.ndarray:
    """Rows = L2-normalised nominal-mass vectors of intensity**power (sqrt by default)."""
    matrix = np.stack([binned_vector(s, max_mz=max_mz, power=power) for s in spectra]).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def nearest_other(vectors: np.ndarray, keys: Sequence[str], k: int, query_rows: Sequence[int] | None = None,
                  chunk: int = 1024, distinct: bool = True) -> np.ndarray:
    """For each query row, the `k` most similar rows of a different key (by dot product).

    With `distinct`, at most one row per other key is kept (so the negatives are k different compounds).
    Rows with fewer candidates are padded with -1.
    """
    keys_arr = np.asarray(keys)
    rows = np.arange(len(vectors)) if query_rows is None else np.asarray(query_rows)
    pool = min(len(vectors), max(4 * k, k + 8))
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for start in range(0, len(rows), chunk):
        block = rows[start:start + chunk]
        sims = vectors[block] @ vectors.T
        sims[keys_arr[block][:, None] == keys_arr[None, :]] = -np.inf
        top = np.argpartition(-sims, pool - 1, axis=1)[:, :pool] if pool < sims.shape[1] else np.tile(
            np.arange(sims.shape[1]), (len(block), 1))
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        top = np.take_along_axis(top, order, axis=1)
        for r, candidates in enumerate(top):
            chosen, seen = [], set()
            for c in candidates:
                if not np.isfinite(sims[r, c]):
                    break
                if distinct and keys_arr[c] in seen:
                    continue
                seen.add(keys_arr[c])
                chosen.append(c)
                if len(chosen) == k:
                    break
            out[start + r, :len(chosen)] = chosen
    return out


def morgan_matrix(smiles: Sequence[str | None], radius: int = 2, n_bits: int = 2048) -> np.ndarray:
    """Morgan fingerprints as a float32 0/1 matrix; unparsable SMILES give an all-zero row."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    matrix = np.zeros((len(smiles), n_bits), dtype=np.float32)
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi) if smi else None
        if mol is not None:
            matrix[i] = generator.GetFingerprintAsNumPy(mol)
    return matrix


def tanimoto_neighbors(fingerprints: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """For each row, the `k` other rows with highest Tanimoto similarity (-1 where none)."""
    counts = fingerprints.sum(axis=1)
    n = len(fingerprints)
    out = np.full((n, k), -1, dtype=np.int64)
    kk = min(k, n - 1)
    if kk <= 0:
        return out
    for start in range(0, n, chunk):
        block = fingerprints[start:start + chunk]
        inter = block @ fingerprints.T
        union = counts[start:start + chunk, None] + counts[None, :] - inter
        sims = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        sims[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        out[start:start + len(block), :kk] = np.take_along_axis(top, order, axis=1)
    return out


def _negatives_by_tanimoto(spectra: Sequence[Spectrum], keys: list[str], groups: dict[str, list[int]],
                           k: int) -> np.ndarray:
    """Per spectrum, spectra of the k most Tanimoto-similar other compounds (first spectrum of each)."""
    compound_keys = list(groups)
    smiles = [spectra[groups[c][0]].smiles for c in compound_keys]
    neighbors = tanimoto_neighbors(morgan_matrix(smiles), k)
    first = np.array([groups[c][0] for c in compound_keys])
    per_compound = np.where(neighbors >= 0, first[np.maximum(neighbors, 0)], -1)
    where = {c: i for i, c in enumerate(compound_keys)}
    return np.stack([per_compound[where[key]] for key in keys])


def mine_negatives(spectra: Sequence[Spectrum], k: int, method: str = "cosine",
                   keys: Sequence[str] | None = None) -> np.ndarray:
    """(n, k) indices of hard-negative spectra for each spectrum (-1 = none); see module doc."""
    if method not in NEGATIVE_METHODS:
        raise ValueError(f"negative method must be one of {NEGATIVE_METHODS}, got {method!r}")
    keys = list(keys) if keys is not None else [s.inchikey14 for s in spectra]
    if method == "none" or k == 0:
        return np.full((len(spectra), k), -1, dtype=np.int64)
    groups = compound_groups(keys)
    if method == "cosine":
        return nearest_other(binned_matrix(spectra), keys, k)
    if method == "tanimoto":
        return _negatives_by_tanimoto(spectra, keys, groups, k)
    k_cos = (k + 1) // 2
    by_cos = nearest_other(binned_matrix(spectra), keys, k_cos)
    by_tan = _negatives_by_tanimoto(spectra, keys, groups, k - k_cos)
    return np.concatenate([by_cos, by_tan], axis=1)


def build_triples(spectra: Sequence[Spectrum], num_negatives: int = 1, negative_method: str = "cosine",
                  predicted: Iterable[Spectrum] | None = None, augment_singletons: bool = True,
                  augment: AugmentSettings = AugmentSettings(), seed: int = 0,
                  predicted_negatives: bool = False) -> list[dict]:
    """One triple per anchor spectrum: ``{anchor, positive, negatives, anchor_key}`` (Spectrum objects).

    The positive is a random other spectrum of the same compound, else (if `augment_singletons`) an
    augmented view of the anchor; anchors without either are skipped. With `predicted` (in-silico
    spectra, keyed by InChIKey first block) every anchor whose compound was predicted gets one more
    triple with the predicted spectrum as positive (measured vs in-silico). Negatives come from
    `mine_negatives`; rows short of negatives are filled with random other-compound spectra. With
    `predicted_negatives`, the negatives of a measured-vs-predicted triple are instead the predicted
    spectra of other compounds closest to the anchor (`nearest_predicted`): the look-alikes an
    in-silico library search confuses.
    """
    spectra = [s for s in spectra if s.inchikey14]
    keys = [s.inchikey14 for s in spectra]
    rng = np.random.default_rng(seed)
    groups = compound_groups(keys)
    negatives = mine_negatives(spectra, num_negatives, negative_method, keys)
    predicted_by_key = {p.inchikey14: p for p in (predicted or []) if p.inchikey14}
    pool = list(predicted_by_key.values())
    near_predicted = None
    if predicted_negatives and pool and num_negatives:
        near_predicted = nearest_predicted(spectra, keys, pool, num_negatives)
    triples = []
    for i, anchor in enumerate(spectra):
        positives = []
        mates = [j for j in groups[keys[i]] if j != i]
        if mates:
            positives.append(spectra[int(rng.choice(mates))])
        elif augment_singletons:
            positives.append(random_view(anchor, rng, augment))
        for positive in positives:
            negs = _fill_negatives(negatives[i], keys, keys[i], rng)
            triples.append({"anchor": anchor, "positive": positive,
                            "negatives": [spectra[j] for j in negs], "anchor_key": keys[i]})
        if keys[i] in predicted_by_key:
            if near_predicted is not None:
                negs = _fill_negatives(near_predicted[i], [p.inchikey14 for p in pool], keys[i], rng)
                chosen = [pool[j] for j in negs]
            else:
                chosen = [spectra[j] for j in _fill_negatives(negatives[i], keys, keys[i], rng)]
            triples.append({"anchor": anchor, "positive": predicted_by_key[keys[i]], "negatives": chosen,
                            "anchor_key": keys[i]})
    return triples


def nearest_predicted(spectra: Sequence[Spectrum], keys: Sequence[str], predicted: Sequence[Spectrum], k: int,
                      chunk: int = 1024) -> np.ndarray:
    """(n, k) indices into `predicted`: for each measured spectrum, the k most cosine-similar predicted
    spectra of *other* compounds (one per compound; -1 where there are fewer)."""
    pred_keys = np.asarray([p.inchikey14 for p in predicted])
    both = binned_matrix(list(spectra) + list(predicted))
    queries, library = both[:len(spectra)], both[len(spectra):]
    keys_arr = np.asarray(keys)
    out = np.full((len(spectra), k), -1, dtype=np.int64)
    for start in range(0, len(spectra), chunk):
        sims = queries[start:start + chunk] @ library.T
        sims[keys_arr[start:start + chunk, None] == pred_keys[None, :]] = -np.inf
        order = np.argsort(-sims, axis=1)[:, :k]
        finite = np.isfinite(np.take_along_axis(sims, order, axis=1))
        out[start:start + len(order)] = np.where(finite, order, -1)
    return out


def _fill_negatives(row: np.ndarray, keys: list[str], own: str, rng: np.random.Generator) -> list[int]:
    """Keep mined negatives, top up with random other-compound spectra (bounded attempts)."""
    chosen = [int(j) for j in row if j >= 0]
    for _ in range(50 * len(row)):
        if len(chosen) >= len(row):
            break
        j = int(rng.integers(len(keys)))
        if keys[j] != own and j not in chosen:
            chosen.append(j)
    return chosen
