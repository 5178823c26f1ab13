"""Nominal-mass isotope envelope of a molecular formula (abundances from RDKit's periodic table).

The molecular-ion cluster of an EI spectrum is pure arithmetic once the formula is known: CH3Cl has
M+2/M = 24.22/75.78 = 0.32, a Br2 compound M+2 about twice M. The network has to guess it from a
fingerprint; `apply_envelope` writes the exact pattern into a prediction around M instead.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from llm4ms.spectrum import formula_counts

#: Mass numbers of the stable isotopes of the elements the featuriser accepts (lightest first).
ISOTOPES: dict[str, tuple[int, ...]] = {
    "H": (1, 2), "C": (12, 13), "N": (14, 15), "O": (16, 17, 18), "F": (19,), "Si": (28, 29, 30),
    "P": (31,), "S": (32, 33, 34, 36), "Cl": (35, 37), "Br": (79, 81), "I": (127,),
}


@lru_cache(maxsize=None)
def _element_pattern(symbol: str) -> np.ndarray:
    """Abundance by nominal offset from the lightest isotope (sums to 1)."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    z = table.GetAtomicNumber(symbol)
    masses = ISOTOPES.get(symbol) or (table.GetMostCommonIsotope(z),)
    pattern = np.zeros(masses[-1] - masses[0] + 1)
    for a in masses:
        pattern[a - masses[0]] = table.GetAbundanceForIsotope(z, a)
    return pattern / pattern.sum()


def _power(pattern: np.ndarray, n: int, length: int) -> np.ndarray:
    """pattern convolved with itself n times, truncated to `length` (binary exponentiation)."""
    result = np.zeros(length)
    result[0] = 1.0
    base = pattern[:length]
    while n:
        if n & 1:
            result = np.convolve(result, base)[:length]
        n >>= 1
        if n:
            base = np.convolve(base, base)[:length]
    return result


@lru_cache(maxsize=65536)
def isotope_envelope(formula: str, length: int = 6) -> np.ndarray:
    """Relative abundance of M, M+1, ... M+(length-1) (nominal offsets), scaled so that M = 1.

    M is the all-lightest-isotope (monoisotopic) molecule. Returns a read-only array.
    """
    env = np.zeros(length)
    env[0] = 1.0
    for symbol, n in (formula_counts((formula or "").rstrip("+-")) or {}).items():  # RDKit: 'C4H12N+'
        if n > 0:
            env = np.convolve(env, _power(_element_pattern(symbol), n, length))[:length]
    env = env / env[0] if env[0] > 0 else env
    env.setflags(write=False)
    return env


def apply_envelope(linear: np.ndarray, mass: int, envelope: np.ndarray, mode: str = "fit") -> np.ndarray:
    """Write the envelope into one linear-intensity prediction row at m/z mass .. mass+len-1 (in place).

    mode "fit": the cluster's height is the least-squares fit of the envelope to the predicted bins
    (uses every predicted cluster peak, so a strong M+2 of a Br compound still counts);
    "anchor": keep the predicted M and put M+k = M * envelope[k].
    """
    n = min(len(envelope), linear.shape[-1] - mass)
    if n <= 0 or mass < 0:
        return linear
    env = envelope[:n]
    window = linear[mass:mass + n]
    if mode == "anchor":
        scale = window[0]
    elif mode == "fit":
        scale = float(np.dot(window, env) / np.dot(env, env))
    else:
        raise ValueError(f"unknown envelope mode {mode!r}")
    linear[mass:mass + n] = max(scale, 0.0) * env
    return linear
