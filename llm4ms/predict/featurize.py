"""Structures -> model inputs: parse a SMILES with RDKit, refuse what the predictor cannot know, featurise.

The accepted chemistry is FastEI's in-silico library filter (one fragment, elements C H O N S P F Cl Br I Si,
exact mass <= 1000), so a library we predict matches the one the published systems searched. Features are a
folded Morgan (ECFP4) count fingerprint, as NEIMS used, plus a few cheap descriptors that tell the network
the size and composition the fingerprint only implies.
"""
from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

#: Elements FastEI kept in its in-silico library.
ALLOWED_ELEMENTS = ("C", "H", "O", "N", "S", "P", "F", "Cl", "Br", "I", "Si")
#: Element counts given to the network as descriptors (H included: implicit hydrogens count).
DESCRIPTOR_ELEMENTS = ("C", "H", "O", "N", "S", "P", "F", "Cl", "Br", "I", "Si")

# Rejection reasons (stable strings: the CLI counts by them).
INVALID_SMILES = "invalid_smiles"
EMPTY = "empty_smiles"
MULTIPLE_FRAGMENTS = "multiple_fragments"
UNSUPPORTED_ELEMENT = "unsupported_element"
MASS_TOO_HIGH = "mass_too_high"
REASONS = (EMPTY, INVALID_SMILES, MULTIPLE_FRAGMENTS, UNSUPPORTED_ELEMENT, MASS_TOO_HIGH)


@dataclass(frozen=True)
class FeaturizerSettings:
    """What a molecule must satisfy and how it becomes a vector (saved with the model weights)."""

    n_bits: int = 4096
    radius: int = 2
    max_mass: float = 1000.0
    allowed_elements: tuple[str, ...] = ALLOWED_ELEMENTS
    #: Extra feature blocks appended after the descriptors, in this order (see EXTRA_BLOCKS):
    #: "maccs", "atompair", "chem". Empty for predictors saved before the option existed.
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [e for e in self.extra if e not in EXTRA_BLOCKS]
        if unknown:
            raise ValueError(f"unknown feature block(s) {unknown}; known: {sorted(EXTRA_BLOCKS)}")

    @property
    def n_descriptors(self) -> int:
        return len(DESCRIPTOR_ELEMENTS) + 6 + sum(EXTRA_BLOCKS[e] for e in self.extra)

    @property
    def n_features(self) -> int:
        return self.n_bits + self.n_descriptors

    def to_dict(self) -> dict:
        d = asdict(self)
        d["allowed_elements"] = list(self.allowed_elements)
        d["extra"] = list(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeaturizerSettings":
        d = dict(d)
        if "allowed_elements" in d:
            d["allowed_elements"] = tuple(d["allowed_elements"])
        d["extra"] = tuple(d.get("extra", ()))
        return cls(**d)


@dataclass
class Featurized:
    """One molecule's features and identity, or the reason it was refused (`features is None`)."""

    smiles_in: str
    features: Optional[np.ndarray] = None
    reason: Optional[str] = None
    detail: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.features is not None

    @property
    def nominal_mass(self) -> int:
        """Integer mass used to align the reverse head (rounded half up like nominal m/z)."""
        return int(math.floor(float(self.metadata["exact_mass"]) + 0.5))


def _reject(smiles: str, reason: str, detail: str) -> Featurized:
    return Featurized(smiles_in=smiles, reason=reason, detail=detail)


def featurize(smiles: str, settings: FeaturizerSettings = FeaturizerSettings()) -> Featurized:
    """Parse, check and featurise one SMILES; never raises for bad chemistry (the reason says why)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Descriptors, rdMolDescriptors

    RDLogger.DisableLog("rdApp.*")
    text = (smiles or "").strip()
    if not text:
        return _reject(text, EMPTY, "no SMILES given")
    mol = Chem.MolFromSmiles(text)  # sanitises
    if mol is None or mol.GetNumAtoms() == 0:
        return _reject(text, INVALID_SMILES, "RDKit cannot parse or sanitise it")
    if len(Chem.GetMolFrags(mol)) > 1:
        return _reject(text, MULTIPLE_FRAGMENTS, "salt or mixture (more than one fragment)")
    allowed = set(settings.allowed_elements)
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms()} - allowed)
    if bad:
        return _reject(text, UNSUPPORTED_ELEMENT, "element(s) " + ",".join(bad))
    exact_mass = float(Descriptors.ExactMolWt(mol))
    if exact_mass > settings.max_mass:
        return _reject(text, MASS_TOO_HIGH, f"exact mass {exact_mass:.2f} > {settings.max_mass:g}")

    counts = _element_counts(mol)
    features = np.zeros(settings.n_features, dtype=np.float32)
    features[: settings.n_bits] = np.log1p(_morgan_counts(mol, settings))
    desc = [math.log1p(counts.get(el, 0)) for el in DESCRIPTOR_ELEMENTS]
    desc += [
        exact_mass / 500.0,
        math.log1p(mol.GetNumHeavyAtoms()),
        math.log1p(rdMolDescriptors.CalcNumRings(mol)),
        math.log1p(sum(a.GetIsAromatic() for a in mol.GetAtoms())),
        math.log1p(rdMolDescriptors.CalcNumRotatableBonds(mol)),
        float(sum(abs(a.GetFormalCharge()) for a in mol.GetAtoms()) > 0),
    ]
    formula = rdMolDescriptors.CalcMolFormula(mol)
    for name in settings.extra:
        desc += list(_EXTRA_FUNCS[name](mol, formula))
    features[settings.n_bits:] = np.asarray(desc, dtype=np.float32)
    metadata = {
        "smiles": Chem.MolToSmiles(mol),
        "inchikey": Chem.MolToInchiKey(mol) or None,
        "formula": formula,
        "exact_mass": round(exact_mass, 5),
    }
    return Featurized(smiles_in=text, features=features, metadata=metadata)


def _morgan_counts(mol, settings: FeaturizerSettings) -> np.ndarray:
    gen = _generator(settings.radius, settings.n_bits)
    return gen.GetCountFingerprintAsNumPy(mol).astype(np.float32)


_GENERATORS: dict[tuple[int, int], object] = {}


def _generator(radius: int, n_bits: int):
    """Morgan generators are cheap but not free; keep one per setting per process."""
    from rdkit.Chem import rdFingerprintGenerator

    key = (radius, n_bits)
    if key not in _GENERATORS:
        _GENERATORS[key] = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    return _GENERATORS[key]


# ---- extra feature blocks (fragment-aware chemistry the count fingerprint only implies) -------------
#: Functional groups whose EI chemistry is distinctive (alpha cleavage, McLafferty, halogen loss ...).
FUNCTIONAL_GROUPS = (
    ("alcohol", "[CX4][OX2H]"), ("phenol", "c[OX2H]"), ("ether", "[OD2]([#6])[#6]"),
    ("aldehyde", "[CX3H1](=O)[#6]"), ("ketone", "[#6][CX3](=O)[#6]"), ("acid", "[CX3](=O)[OX2H1]"),
    ("ester", "[#6][CX3](=O)[OX2][#6]"), ("amide", "[NX3][CX3]=[OX1]"), ("amine_prim", "[NX3;H2][CX4]"),
    ("amine_sec", "[NX3;H1]([CX4])[CX4]"), ("amine_tert", "[NX3;H0]([CX4])([CX4])[CX4]"),
    ("aniline", "c[NX3;!$(N=*)]"), ("nitrile", "C#N"), ("nitro", "[N+](=O)[O-]"), ("pyridine_n", "n"),
    ("thiol", "[SX2H]"), ("thioether", "[SX2]([#6])[#6]"), ("sulfonyl", "[SX4](=O)(=O)"),
    ("phosphate", "P(=O)(O)O"), ("alkene", "C=C"), ("alkyne", "C#C"), ("carbonyl", "[CX3]=[OX1]"),
    ("methyl", "[CH3]"), ("benzyl_c", "c[CX4;H2,H3]"), ("gamma_h_carbonyl", "[CX3](=O)[CX4][CX4][CX4;!H0]"),
    ("aryl_halide", "c[F,Cl,Br,I]"), ("alkyl_halide", "[CX4][F,Cl,Br,I]"), ("cf3", "C(F)(F)F"),
    ("silyl", "[Si]"), ("tert_butyl", "[CX4]([CH3])([CH3])[CH3]"), ("isopropyl", "[CH1]([CH3])[CH3]"),
    ("epoxide", "C1OC1"),
)
_PATTERNS: list = []


def _patterns():
    if not _PATTERNS:
        from rdkit import Chem

        _PATTERNS.extend(Chem.MolFromSmarts(smarts) for _, smarts in FUNCTIONAL_GROUPS)
    return _PATTERNS


def _maccs(mol, formula):
    from rdkit.Chem import MACCSkeys

    return np.frombuffer(MACCSkeys.GenMACCSKeys(mol).ToBitString().encode(), dtype=np.uint8) - 48


def _atompair(mol, formula):
    from rdkit.Chem import rdFingerprintGenerator

    key = ("ap", 1024)
    if key not in _GENERATORS:
        _GENERATORS[key] = rdFingerprintGenerator.GetAtomPairGenerator(fpSize=1024)
    return np.log1p(_GENERATORS[key].GetCountFingerprintAsNumPy(mol).astype(np.float32))


def _chem(mol, formula):
    """Bond orders, ring sizes, hybridisation, heteroatoms in rings, functional groups, isotope pattern."""
    from rdkit.Chem import rdMolDescriptors

    from llm4ms.predict.isotopes import isotope_envelope

    bonds = {"SINGLE": 0, "DOUBLE": 0, "TRIPLE": 0, "AROMATIC": 0}
    for b in mol.GetBonds():
        name = str(b.GetBondType())
        if name in bonds:
            bonds[name] += 1
    ring_sizes = [0] * 6  # sizes 3..8+
    info = mol.GetRingInfo()
    for ring in info.AtomRings():
        ring_sizes[min(len(ring), 8) - 3] += 1
    hetero_ring = sum(1 for a in mol.GetAtoms() if a.IsInRing() and a.GetSymbol() not in ("C", "H"))
    sp3 = rdMolDescriptors.CalcFractionCSP3(mol)
    groups = [len(mol.GetSubstructMatches(p)) for p in _patterns()]
    env = isotope_envelope(formula)[1:6]
    values = [math.log1p(v) for v in bonds.values()] + [math.log1p(v) for v in ring_sizes]
    values += [math.log1p(hetero_ring), sp3, math.log1p(rdMolDescriptors.CalcNumAromaticRings(mol)),
               math.log1p(rdMolDescriptors.CalcNumHBD(mol)), math.log1p(rdMolDescriptors.CalcNumHBA(mol))]
    values += [math.log1p(g) for g in groups]
    values += [math.log1p(float(e)) for e in env]
    return values


#: name -> number of features it adds.
EXTRA_BLOCKS = {"maccs": 167, "atompair": 1024, "chem": 4 + 6 + 5 + len(FUNCTIONAL_GROUPS) + 5}
_EXTRA_FUNCS = {"maccs": _maccs, "atompair": _atompair, "chem": _chem}


def _element_counts(mol) -> dict[str, int]:
    counts: dict[str, int] = {}
    for atom in mol.GetAtoms():
        counts[atom.GetSymbol()] = counts.get(atom.GetSymbol(), 0) + 1
        counts["H"] = counts.get("H", 0) + atom.GetTotalNumHs()
    return counts


def _featurize_star(args: tuple[str, FeaturizerSettings]) -> Featurized:
    return featurize(*args)


def featurize_many(smiles: Sequence[str], settings: FeaturizerSettings = FeaturizerSettings(),
                   n_jobs: int = 1) -> list[Featurized]:
    """Featurise in order; `n_jobs > 1` spreads RDKit (the slow part) over worker processes."""
    smiles = list(smiles)
    if n_jobs <= 1 or len(smiles) < 64:
        return [featurize(s, settings) for s in smiles]
    chunksize = max(16, len(smiles) // (n_jobs * 8))
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(_featurize_star, ((s, settings) for s in smiles), chunksize=chunksize))

