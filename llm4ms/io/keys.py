"""Metadata key synonyms: the only place where dialect names meet the canonical keys.

Readers pass the raw ``key -> value`` pairs of a record to `normalize_metadata`; writers use
`export_key` to turn canonical keys back into a dialect's spelling. Matching ignores case, spaces,
underscores and hyphens, so ``PrecursorMZ``, ``PRECURSOR_MZ`` and ``precursor mz`` are one key.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Any, Mapping, Optional

# canonical key -> synonyms (written loosely; they are squashed before lookup)
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "id": ("id", "db#", "accession", "spectrum_id", "spectrumid", "dbid"),
    "name": ("name", "compound_name", "compoundname", "title", "compound", "ch$name"),
    "inchikey": ("inchikey", "inchi_key", "ch$link:inchikey"),
    "inchi": ("inchi", "inchicode", "ch$iupac"),
    "smiles": ("smiles", "ch$smiles"),
    "formula": ("formula", "molecular_formula", "molform", "ch$formula"),
    # matchms harmonises EXACTMASS into parent_mass (the neutral mass), so it maps back here
    "exact_mass": ("exact_mass", "exactmass", "monoisotopic_mass", "parent_mass", "ch$exact_mass"),
    "mol_weight": ("mw", "mol_weight", "molecular_weight", "molweight"),
    # MS/MS: MassBank-style MSP (PRECURSORMZ, PRECURSORTYPE, IONMODE), NIST (PrecursorMZ, Precursor_type,
    # Ion_mode), GNPS and matchms MGF (PEPMASS, ADDUCT, IONMODE, SOURCE_INSTRUMENT), MassBank records (tags)
    "precursor_mz": ("precursor_mz", "precursormz", "pepmass", "ms$focused_ion:precursor_m/z"),
    "precursor_type": ("precursor_type", "precursortype", "adduct", "precursor_ion_type",
                       "ms$focused_ion:precursor_type"),
    "ion_mode": ("ion_mode", "ionmode", "polarity", "ionization_mode", "ac$mass_spectrometry:ion_mode"),
    "retention_index": ("ri", "retention_index", "retentionindex"),
    "retention_time": ("rt", "retention_time", "retentiontime", "ac$chromatography:retention_time"),
    "ms_level": ("ms_level", "mslevel", "spectrum_type", "ms_type", "ac$mass_spectrometry:ms_type"),
    "instrument_type": ("instrument_type", "instrumenttype", "ac$instrument_type"),
    "instrument": ("instrument", "source_instrument", "instrument_name", "ac$instrument"),
    "ionization": ("ionization", "ac$mass_spectrometry:ionization"),
    "collision_energy": ("collision_energy", "collisionenergy", "ac$mass_spectrometry:collision_energy"),
    "fragmentation_mode": ("fragmentation_mode", "fragmentation_method", "frag_mode",
                           "ac$mass_spectrometry:fragmentation_mode"),
    "cas": ("cas", "casno", "cas#", "cas_number", "cas_registry_no", "ch$link:cas"),
    "license": ("license", "licence"),
    # written by predictor ensembles (`llm4ms predict`): the members' agreement, 0..1
    "prediction_confidence": ("prediction_confidence", "predictionconfidence"),
    "authors": ("authors", "author"),
    "comment": ("comment", "comments"),
}

#: Canonical fields parsed to float when the value is a number (kept as text otherwise).
NUMERIC_KEYS = frozenset({"exact_mass", "mol_weight", "precursor_mz", "retention_index",
                          "retention_time", "collision_energy", "prediction_confidence"})

_SQUASH = str.maketrans("", "", " _-")


def _squash(key: str) -> str:
    return key.strip().lower().translate(_SQUASH)


_LOOKUP: dict[str, str] = {}
for _canonical, _names in _SYNONYMS.items():
    for _name in _names:
        _LOOKUP[_squash(_name)] = _canonical

#: Canonical metadata keys: readers normalise to these, writers export them per dialect.
CANONICAL_KEYS = tuple(_SYNONYMS)

#: Export spellings per dialect (canonical -> key written). Keys missing here are written as-is.
EXPORT_KEYS: dict[str, dict[str, str]] = {
    "nist": {
        "name": "Name", "id": "DB#", "inchikey": "InChIKey", "inchi": "InChI", "smiles": "SMILES",
        "formula": "Formula", "exact_mass": "ExactMass", "mol_weight": "MW", "precursor_mz": "PrecursorMZ",
        "precursor_type": "Precursor_type", "ion_mode": "Ion_mode", "retention_index": "RI",
        "retention_time": "RetentionTime", "ms_level": "Spectrum_type", "instrument_type": "Instrument_type",
        "instrument": "Instrument", "ionization": "Ionization", "collision_energy": "Collision_energy",
        "cas": "CAS#", "license": "License", "authors": "Authors", "comment": "Comments",
        "prediction_confidence": "PredictionConfidence",
    },
    "mgf": {
        "name": "TITLE", "id": "SPECTRUMID", "precursor_mz": "PEPMASS", "inchikey": "INCHIKEY",
        "inchi": "INCHI", "smiles": "SMILES", "formula": "FORMULA", "ion_mode": "IONMODE",
        "precursor_type": "ADDUCT", "ms_level": "MSLEVEL",
        # RTINSECONDS has a unit and our retention_time has none: keep the canonical spelling
        "retention_time": "RETENTION_TIME",
    },
    # matchms metadata (`Spectrum.to_matchms`): its own names for id and name, the canonical names otherwise
    "matchms": {"id": "spectrum_id", "name": "compound_name"},
}

_PARSED = NUMERIC_KEYS | {"ion_mode", "ms_level"}
_UNTRIMMED = frozenset('" \t\n')
# plain ASCII numbers only: float() would also take '4_3' and non-ASCII digits
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_COMMENT_PAIR = re.compile(r'"([^"=]+)=([^"]*)"')
_POSITIVE = {"p", "pos", "positive", "+"}
_NEGATIVE = {"n", "neg", "negative", "-"}


@functools.lru_cache(maxsize=4096)
def canonical_key(key: str) -> str:
    """Canonical name of `key`, or the key lower-cased with spaces -> '_' when it is unknown."""
    found = _LOOKUP.get(_squash(key))
    if found is not None:
        return found
    return "_".join(key.strip().lower().split())


def export_key(key: str, dialect: str = "nist") -> str:
    """The spelling of canonical `key` in `dialect` (unknown keys are returned unchanged)."""
    return EXPORT_KEYS[dialect].get(key, key)


def _to_float(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not _NUMBER.fullmatch(text):
        return text
    number = float(text)
    return number if math.isfinite(number) else text


def _first_number(value: Any) -> Any:
    """PEPMASS-like values carry an intensity after the m/z: keep the first number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    match = _NUMBER.match(text)
    if match is None or (match.end() < len(text) and not (text[match.end()].isspace()
                                                          or text[match.end()] in ",;/")):
        return text  # not a number, or a number glued to more text ('4_3', '12abc'): the caller decides
    return float(match.group())


def _ion_mode(value: Any) -> str:
    text = str(value).strip().lower()
    if text in _POSITIVE:
        return "positive"
    if text in _NEGATIVE:
        return "negative"
    return text


_ADDUCT_CHARGE = re.compile(r"\]\s*[0-9]*([+-])[0-9]*\*?$")  # the charge after the bracket: ]+ ]2- ]+* ]1+


def adduct_ion_mode(adduct: Any) -> Optional[str]:
    """The ion mode an adduct implies by the charge it ends with: ``[M+H]+`` and ``[M]+*`` -> "positive",
    ``[M-2H]2-`` -> "negative"; None when it states no charge (``M+H``). For records that give an adduct but
    no ion mode."""
    if not isinstance(adduct, str):
        return None
    match = _ADDUCT_CHARGE.search(adduct.strip())
    if match is None:
        return None
    return "positive" if match.group(1) == "+" else "negative"


def _ms_level(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().upper().replace(" ", "")
    if text in ("MS", "MS1"):
        return 1
    if text in ("MS/MS", "MSMS"):
        return 2
    match = re.fullmatch(r"(?:MS)?([0-9]{1,6})(?:\.0)?", text)
    return int(match.group(1)) if match else str(value).strip()


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"' and value.count('"') == 2:
            value = value[1:-1].strip()  # a single quoted value: the quotes are not data
    return value


def normalize_value(key: str, value: Any) -> Any:
    """Parse the value of canonical `key` (numbers, ion mode, MS level); other values pass through."""
    value = _clean_value(value)
    if value in ("", None):
        return value
    if key == "precursor_mz":
        return _first_number(value)
    if key in NUMERIC_KEYS:
        return _to_float(value)
    if key == "ion_mode":
        return _ion_mode(value)
    if key == "ms_level":
        return _ms_level(value)
    return value


def normalize_metadata(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Map a record's raw keys onto canonical keys and parse their values.

    When two raw keys map to one canonical key, the first non-empty value wins (records list the
    specific key first more often than not, e.g. NAME before a TITLE). ``"key=value"`` pairs quoted
    inside a comment (MoNA style) fill canonical keys the record itself does not give.
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = canonical_key(str(key))
        if name in _PARSED or (isinstance(value, str) and value[:1] in _UNTRIMMED):
            value = normalize_value(name, value)
        if out.get(name) in ("", None):
            out[name] = value
    comment = out.get("comment")
    if isinstance(comment, str) and '"' in comment:
        for key, value in _COMMENT_PAIR.findall(comment):
            name = canonical_key(key)
            if name in _SYNONYMS and out.get(name) in ("", None):
                out[name] = normalize_value(name, value)
    return out
