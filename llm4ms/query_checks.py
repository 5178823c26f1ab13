"""The one place that decides which search settings are valid: k, the query mass and the mass tolerance, and
the MS/MS filters (precursor tolerance, ion mode).

Every door into a search asks here: ``llm4ms search`` (option names such as ``-k``), the web app (its
request field names, and its server limits `max_k` / `max_rerank_depth`) and `Library.search` (Python).
A value that no search accepts raises `InvalidSetting` (the web answers HTTP 422); a value over a server
limit (``k`` above `max_k`) and a query mass without a tolerance raise `ConfigError` (HTTP 400).

The rules: ``k`` is a whole number >= 1 (and <= `max_k` when given); a query mass (`mass`, or each known
one of `masses`) is a positive finite number of Da and needs a mass tolerance; the tolerance is a finite
number >= 0 Da; `min_score` is finite; `rerank_depth` is a whole number >= 1 (and <= `max_rerank_depth`);
a precursor tolerance is a finite number >= 0 with its unit, ``10ppm`` / ``0.01 Da`` (text) or ``(10, "ppm")``
(`check_tolerance`); an ion mode is ``positive`` or ``negative`` (`check_ion_mode`).
This module imports nothing from llm4ms but `llm4ms.errors`.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Any, Mapping, Optional, Sequence

from llm4ms.errors import ConfigError

__all__ = ["InvalidSetting", "check_search_settings", "check_mass", "check_tolerance", "check_ion_mode",
           "CLI_NAMES", "ION_MODES", "TOLERANCE_UNITS"]

#: How ``llm4ms search`` spells the settings (messages name the option the user typed).
CLI_NAMES = {"k": "-k", "mass": "--mass", "mass_tolerance": "--mass-tolerance", "min_score": "--min-score",
             "rerank_depth": "--rerank-depth", "precursor_tolerance": "--precursor-tolerance",
             "ion_mode": "--ion-mode"}

#: ion modes the ion-mode filter takes
ION_MODES = ("positive", "negative")
#: units of a precursor tolerance (as written, case-insensitive)
TOLERANCE_UNITS = {"ppm": "ppm", "da": "Da"}
_TOLERANCE = re.compile(r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]+)\s*")


class InvalidSetting(ConfigError):
    """A search setting no search accepts: k < 1, a mass that is not a positive number, a negative tolerance."""


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _number(value: Any) -> Optional[float]:
    """`value` as a float when it is a real number (not a bool), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def _shown(value: Any) -> str:
    number = _number(value)
    return f"{number:g}" if number is not None else repr(value)


def check_mass(mass: Any, name: str = "mass") -> float:
    """`mass` as a float when it is a positive finite number of Da, else `InvalidSetting` naming `name`."""
    number = _number(mass)
    if number is None or not (math.isfinite(number) and number > 0):
        raise InvalidSetting(f"{name} must be a positive finite number of Da (got {_shown(mass)})")
    return number


def check_tolerance(value: Any, name: str = "precursor_tolerance") -> tuple[float, str]:
    """``(number, unit)`` of a tolerance given as ``"10ppm"``, ``"0.01 Da"`` or ``(10, "ppm")``; unit "ppm" or
    "Da", number finite and >= 0. Anything else is `InvalidSetting` naming `name` (a bare number too: the
    unit decides the window, so it must be said)."""
    expected = f"{name} must be a number >= 0 with its unit, e.g. 10ppm or 0.01Da"
    if isinstance(value, str):
        match = _TOLERANCE.fullmatch(value)
        if match is None:
            raise InvalidSetting(f"{expected} (got {value[:40]!r})")
        number, unit = float(match.group(1)), match.group(2)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], str):
        number, unit = _number(value[0]), value[1]
        if number is None:
            raise InvalidSetting(f"{expected} (got {value!r})")
    else:
        raise InvalidSetting(f"{expected} (got {_shown(value)})")
    if unit.lower() not in TOLERANCE_UNITS:
        raise InvalidSetting(f"{expected}: unknown unit {unit[:20]!r}")
    if not (math.isfinite(number) and number >= 0):
        raise InvalidSetting(f"{expected} (got {number:g})")
    return number, TOLERANCE_UNITS[unit.lower()]


def check_ion_mode(value: Any, name: str = "ion_mode") -> str:
    """`value` as "positive" or "negative" (any case), else `InvalidSetting` naming `name`."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in ION_MODES:
        raise InvalidSetting(f"{name} must be {' or '.join(ION_MODES)} (got {_shown(value)})")
    return text


def _range(value: Any, name: str, limit: Optional[int], over_limit: type) -> None:
    between = f"between 1 and {limit}" if limit is not None else "at least 1"
    if not _whole(value):
        raise InvalidSetting(f"{name} must be a whole number, {between} (got {_shown(value)})")
    if value < 1:
        raise InvalidSetting(f"{name} must be {between} (got {value})")
    if limit is not None and value > limit:
        raise over_limit(f"{name} must be {between} (got {value})")


def check_search_settings(k: Any, *, mass: Any = None, mass_tolerance: Any = None, min_score: Any = None,
                          rerank_depth: Any = None, masses: Optional[Sequence[Any]] = None,
                          max_k: Optional[int] = None, max_rerank_depth: Optional[int] = None,
                          names: Optional[Mapping[str, str]] = None, precursor_tolerance: Any = None,
                          ion_mode: Any = None) -> None:
    """Check one search's settings; raise `InvalidSetting` / `ConfigError` with a one-line message.

    `mass` is one mass for every query (the CLI's ``--mass``, the web's ``mass``); `masses` one per query
    (None where unknown; `Library.search`'s ``query_masses``). `names` maps the setting names (``k``,
    ``mass``, ``masses``, ``mass_tolerance``, ``min_score``, ``rerank_depth``, ``precursor_tolerance``,
    ``ion_mode``) to what the user typed (`CLI_NAMES` for the command line); messages use the Python names
    otherwise. `precursor_tolerance` (`check_tolerance`) and `ion_mode` (`check_ion_mode`) are the MS/MS
    filters; None means no filter (analogue search).
    """
    name = {"k": "k", "mass": "mass", "masses": "query_masses", "mass_tolerance": "mass_tolerance",
            "min_score": "min_score", "rerank_depth": "rerank_depth", "precursor_tolerance": "precursor_tolerance",
            "ion_mode": "ion_mode", **(names or {})}
    _range(k, name["k"], max_k, ConfigError)
    if precursor_tolerance is not None:
        check_tolerance(precursor_tolerance, name["precursor_tolerance"])
    if ion_mode is not None:
        check_ion_mode(ion_mode, name["ion_mode"])
    if rerank_depth is not None:
        _range(rerank_depth, name["rerank_depth"], max_rerank_depth, InvalidSetting)
    if mass_tolerance is not None:
        tolerance = _number(mass_tolerance)
        if tolerance is None or not (math.isfinite(tolerance) and tolerance >= 0):
            raise InvalidSetting(f"{name['mass_tolerance']} must be a finite number >= 0 Da "
                                 f"(got {_shown(mass_tolerance)})")
    if min_score is not None:
        score = _number(min_score)
        if score is None or not math.isfinite(score):
            raise InvalidSetting(f"{name['min_score']} must be a finite number (got {_shown(min_score)})")
    given = None
    if mass is not None:
        check_mass(mass, name["mass"])
        given = name["mass"]
    for i, value in enumerate(masses or ()):
        if value is not None:
            check_mass(value, f"{name['masses']}[{i}]")
            given = given or name["masses"]
    if given is not None and mass_tolerance is None:
        raise ConfigError(f"a query mass ({given}) needs a mass tolerance ({name['mass_tolerance']}, in Da)")
