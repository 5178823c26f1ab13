"""The MS/MS library-search benchmark: queries and library from the compound-split sets of a MassBank checkout.

The sets are the ones `data_prep/build_msms_sets.py` writes (OUT/train.mgf, validation.mgf, test.mgf; one
compound's spectra are never in two splits). Per ion mode (positive and negative are never mixed):

- **queries**: one spectrum per compound (InChIKey first block) of the chosen split (``validation`` or
  ``test``), for each compound with at least two spectra of that ion mode; the spectrum is drawn with a seeded
  RNG (`numpy.random.default_rng(seed)`, seed 0) among the compound's spectra that have a precursor m/z (the
  precursor window needs one; a compound none of whose spectra has one is drawn among all of them);
- **library**: every spectrum of that ion mode from all three splits except the query spectra, so a query
  finds its own compound only through that compound's other spectra (other instruments, collision energies,
  adducts) and every other compound of the ion mode is a competitor.

Spectra whose ion mode is unknown are left out (counted). Formulas missing from a record are computed with
RDKit from its SMILES or InChI (`fill_formulas`), so the runner's isomer subset (queries whose compound has a
same-formula, different-structure neighbour in the library, `llm4ms.evaluate.runner.isomer_queries`) sees every
structure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum, structure_molecule

SPLITS = ("train", "validation", "test")
QUERY_SPLITS = ("validation", "test")
ION_MODES = ("positive", "negative")


@dataclass
class MSMSBenchmark:
    """One ion mode's queries and library, and how they were chosen (`counts`)."""

    ion_mode: str
    queries: list[Spectrum]
    library: list[Spectrum]
    counts: dict[str, Any] = field(default_factory=dict)


def read_sets(folder: str | Path) -> dict[str, list[Spectrum]]:
    """The spectra of FOLDER/{train,validation,test}.mgf (as `build_msms_sets.py` writes them)."""
    from llm4ms.io import read_spectra

    folder = Path(folder)
    missing = [name for name in SPLITS if not (folder / f"{name}.mgf").is_file()]
    if missing:
        raise ConfigError(f"{folder}: no {', '.join(f'{m}.mgf' for m in missing)} (build the sets with "
                          "data_prep/build_msms_sets.py CHECKOUT OUT)")
    # a split can be empty on a small checkout (build_msms_sets.py then writes an empty file)
    return {name: list(read_spectra(folder / f"{name}.mgf")) if (folder / f"{name}.mgf").stat().st_size else []
            for name in SPLITS}


def formula_of(spectrum: Spectrum) -> Optional[str]:
    """The recorded formula, else one computed with RDKit from the SMILES or InChI (None if neither reads)."""
    if spectrum.formula:
        return str(spectrum.formula)
    mol = structure_molecule(spectrum, prefer="smiles")
    if mol is None:
        return None
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    return CalcMolFormula(mol)


def fill_formulas(spectra: Sequence[Spectrum]) -> int:
    """Set the formula of each spectrum that has none (`formula_of`, in place); returns how many were filled."""
    filled = 0
    for spectrum in spectra:
        if not spectrum.formula:
            formula = formula_of(spectrum)
            if formula:
                spectrum.metadata["formula"] = formula
                filled += 1
    return filled


def build_msms_benchmark(sets: Mapping[str, Sequence[Spectrum]], split: str = "validation", seed: int = 0,
                         max_queries: Optional[int] = None,
                         ion_modes: Sequence[str] = ION_MODES) -> dict[str, MSMSBenchmark]:
    """Queries and library per ion mode (see the module docstring) from the spectra of each split.

    `max_queries` keeps that many query compounds per ion mode (drawn with the same seeded RNG, before the
    query spectra are drawn); the library still holds every other spectrum.
    """
    if split not in QUERY_SPLITS:
        raise ConfigError(f"split must be one of {', '.join(QUERY_SPLITS)}, not {split!r}")
    if split not in sets:
        raise ConfigError(f"no {split!r} spectra given")
    if max_queries is not None and max_queries < 1:
        raise ConfigError(f"max_queries must be >= 1, not {max_queries}")
    everything = [(name, s) for name in SPLITS for s in sets.get(name, ())]
    filled = fill_formulas([s for _, s in everything])
    no_mode = sum(1 for _, s in everything if s.ion_mode not in ION_MODES)
    no_key = sum(1 for _, s in everything if not s.inchikey14)
    out: dict[str, MSMSBenchmark] = {}
    for mode in ion_modes:
        rng = np.random.default_rng(seed)
        pool = [(name, s) for name, s in everything if s.ion_mode == mode and s.inchikey14]
        by_compound: dict[str, list[int]] = {}
        for i, (name, spectrum) in enumerate(pool):
            if name == split:
                by_compound.setdefault(spectrum.inchikey14, []).append(i)
        single = sorted(key for key, members in by_compound.items() if len(members) < 2)
        compounds = sorted(key for key, members in by_compound.items() if len(members) >= 2)
        if max_queries is not None and len(compounds) > max_queries:
            chosen = rng.choice(len(compounds), size=max_queries, replace=False)
            compounds = [compounds[i] for i in sorted(chosen)]
        query_positions = []
        drawn_without_precursor = 0
        for key in compounds:
            members = by_compound[key]
            with_precursor = [i for i in members if pool[i][1].precursor_mz is not None]
            eligible = with_precursor or members
            drawn_without_precursor += not with_precursor
            query_positions.append(eligible[int(rng.integers(len(eligible)))])
        taken = set(query_positions)
        queries = [pool[i][1] for i in query_positions]
        library = [s for i, (_, s) in enumerate(pool) if i not in taken]
        counts = {"ion_mode": mode, "split": split, "seed": seed, "queries": len(queries),
                  "library": len(library),
                  "library_by_split": {name: sum(1 for i, (n, _) in enumerate(pool) if n == name and i not in taken)
                                       for name in SPLITS},
                  "split_compounds": len(by_compound), "compounds_with_one_spectrum_not_queried": len(single),
                  "compounds_left_out_by_max_queries": (len(by_compound) - len(single) - len(compounds)),
                  "queries_without_precursor": drawn_without_precursor,
                  "library_without_precursor": sum(1 for s in library if s.precursor_mz is None)}
        out[mode] = MSMSBenchmark(mode, queries, library, counts)
    for bench in out.values():
        bench.counts.update({"spectra_without_ion_mode_left_out": no_mode, "spectra_without_inchikey_left_out": no_key,
                             "formulas_computed_with_rdkit": filled})
    return out


def load_msms_benchmark(folder: str | Path, split: str = "validation", seed: int = 0,
                        max_queries: Optional[int] = None) -> dict[str, MSMSBenchmark]:
    """`build_msms_benchmark` on the sets in `folder` (`read_sets`)."""
    return build_msms_benchmark(read_sets(folder), split=split, seed=seed, max_queries=max_queries)
