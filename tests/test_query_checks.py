"""One owner for which search settings are valid (`llm4ms.query_checks`), used by the CLI and the web app."""
from __future__ import annotations

import math

import numpy as np
import pytest

from llm4ms.errors import ConfigError
from llm4ms.query_checks import CLI_NAMES, InvalidSetting, check_mass, check_search_settings


@pytest.mark.parametrize("settings", [
    dict(k=1), dict(k=np.int64(5), max_k=5), dict(k=3, mass=100.0, mass_tolerance=0),
    dict(k=3, masses=[None, 120.5], mass_tolerance=0.5), dict(k=3, masses=[None, None]),
    dict(k=3, min_score=-1.0), dict(k=3, rerank_depth=1000, max_rerank_depth=1000),
])
def test_valid_settings_pass(settings):
    check_search_settings(**settings)


@pytest.mark.parametrize("settings, error, message", [
    (dict(k=0), InvalidSetting, "k must be at least 1 (got 0)"),
    (dict(k=0, max_k=20), InvalidSetting, "k must be between 1 and 20 (got 0)"),
    (dict(k=True), InvalidSetting, "k must be a whole number"),
    (dict(k=2.0), InvalidSetting, "k must be a whole number"),
    (dict(k=21, max_k=20), ConfigError, "k must be between 1 and 20 (got 21)"),
    (dict(k=3, mass=-5, mass_tolerance=1), InvalidSetting, "mass must be a positive finite number of Da (got -5)"),
    (dict(k=3, mass=math.nan, mass_tolerance=1), InvalidSetting, "mass must be a positive finite number"),
    (dict(k=3, mass=100), ConfigError, "a query mass (mass) needs a mass tolerance (mass_tolerance, in Da)"),
    (dict(k=3, masses=[None, 100.0]), ConfigError, "a query mass (query_masses) needs a mass tolerance"),
    (dict(k=3, masses=[0.0], mass_tolerance=1), InvalidSetting, "query_masses[0] must be a positive"),
    (dict(k=3, mass_tolerance=-1), InvalidSetting, "mass_tolerance must be a finite number >= 0 Da"),
    (dict(k=3, mass_tolerance=math.inf), InvalidSetting, "mass_tolerance must be a finite number"),
    (dict(k=3, min_score=math.nan), InvalidSetting, "min_score must be a finite number"),
    (dict(k=3, rerank_depth=0), InvalidSetting, "rerank_depth must be at least 1"),
    (dict(k=3, rerank_depth=5000, max_rerank_depth=1000), InvalidSetting, "rerank_depth must be between 1 and 1000"),
    (dict(k=0, names=CLI_NAMES), InvalidSetting, "-k must be at least 1 (got 0)"),
    (dict(k=3, mass=100, names=CLI_NAMES), ConfigError, "a query mass (--mass) needs a mass tolerance (--mass-tol"),
])
def test_invalid_settings_raise_one_line(settings, error, message):
    with pytest.raises(error) as raised:
        check_search_settings(**settings)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert isinstance(raised.value, ConfigError)  # the CLI prints it on one line and exits 2


def test_check_mass():
    assert check_mass(np.float32(58.5)) == pytest.approx(58.5)
    with pytest.raises(InvalidSetting, match="spectra.0.: mass must be a positive"):
        check_mass("58", "spectra[0]: mass")


@pytest.mark.parametrize("argv, message", [
    (["-k", "0"], "-k must be at least 1 (got 0)"),
    (["--mass", "58"], "a query mass (--mass) needs a mass tolerance (--mass-tolerance, in Da)"),
    (["--mass", "nan", "--mass-tolerance", "1"], "--mass must be a positive finite number of Da (got nan)"),
    (["--mass-tolerance", "-1"], "--mass-tolerance must be a finite number >= 0 Da"),
    (["--rerank-depth", "0"], "--rerank-depth must be at least 1"),
])
def test_search_command_checks_before_reading(argv, message, tmp_path, capsys):
    from llm4ms.cli import main

    assert main(["search", "--query", str(tmp_path / "missing.msp"), *argv]) == 2  # checked before reading
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0


@pytest.mark.parametrize("value, expected", [
    ("10ppm", (10.0, "ppm")), (" 0.01 Da ", (0.01, "Da")), ("5PPM", (5.0, "ppm")), ("0da", (0.0, "Da")),
    ((10, "ppm"), (10.0, "ppm")), ([0.5, "Da"], (0.5, "Da")),
])
def test_precursor_tolerance_values(value, expected):
    from llm4ms.mass import Tolerance
    from llm4ms.query_checks import check_tolerance

    assert check_tolerance(value) == expected
    check_search_settings(3, precursor_tolerance=value)
    assert Tolerance(*expected).half_width(500.0) == pytest.approx(expected[0] * (5e-4 if expected[1] == "ppm" else 1))


@pytest.mark.parametrize("settings, message", [
    (dict(precursor_tolerance="10"), "precursor_tolerance must be a number >= 0 with its unit, e.g. 10ppm or 0.01Da"),
    (dict(precursor_tolerance=10.0), "(got 10)"),
    (dict(precursor_tolerance="-1ppm"), "(got -1)"),
    (dict(precursor_tolerance="10 mDa"), "unknown unit 'mDa'"),
    (dict(precursor_tolerance=(math.inf, "ppm")), "(got inf)"),
    (dict(ion_mode="pos"), "ion_mode must be positive or negative (got 'pos')"),
    (dict(ion_mode=1), "ion_mode must be positive or negative (got 1)"),
    (dict(precursor_tolerance="x", names=CLI_NAMES), "--precursor-tolerance must be"),
    (dict(ion_mode="both", names=CLI_NAMES), "--ion-mode must be positive or negative"),
])
def test_invalid_msms_settings(settings, message):
    with pytest.raises(InvalidSetting) as raised:
        check_search_settings(3, **settings)
    assert message in str(raised.value) and "\n" not in str(raised.value)
