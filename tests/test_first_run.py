"""What a new user meets first: help with defaults, readable `info`, missing extras, query masses, progress."""
from __future__ import annotations

import gzip
import io
import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from llm4ms.cli import main
from llm4ms.io import write_msp
from llm4ms.spectrum import Spectrum, mass_from_formula, mass_from_smiles

from _fakes import FakeEncoder, random_spectra


# ---- help and info ----------------------------------------------------------------------------------
def _help(capsys, *command: str) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # unwrap argparse's line breaks


def test_subcommand_help_shows_defaults(capsys):
    search = _help(capsys, "search")
    assert "hits per query (default: 10)" in search
    assert "query spectra per forward pass (default: 64)" in search
    assert "(default: None)" not in search and "(default: False)" not in search
    assert "port to listen on (default: 8000)" in _help(capsys, "serve")
    embed = _help(capsys, "embed")
    assert "(default: 64)" in embed and "(default: 1024)" in embed and "(default: auto)" in embed


def test_info_is_readable_by_default_and_json_on_request(tmp_path, capsys):
    from llm4ms.library import Library

    Library.build(random_spectra(30, seed=1), tmp_path / "lib", FakeEncoder(), show_progress=False)
    assert main(["info", str(tmp_path / "lib")]) == 0
    text = capsys.readouterr().out
    assert text.lstrip()[0] != "{"
    assert "spectra     30 (30 with an InChIKey)" in text and "index       flat over 30 spectra" in text
    assert main(["info", str(tmp_path / "lib"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spectra"] == 30
    assert main(["info"]) == 0  # the bundled model
    text = capsys.readouterr().out
    assert text.startswith("model") and "dim 128" in text and "scores" in text
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dim"] == 128


# ---- evaluate without the [baselines] extra ---------------------------------------------------------
def test_evaluate_without_baselines_names_the_extra(tmp_path, capsys, monkeypatch):
    for module in ("spec2vec", "ms_entropy"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed: import fails, find_spec is None
    spectra = random_spectra(12, seed=2)
    write_msp(spectra, tmp_path / "lib.msp")
    write_msp(spectra[:3], tmp_path / "q.msp")
    args = ["evaluate", "--queries", str(tmp_path / "q.msp"), "--library", str(tmp_path / "lib.msp")]
    assert main(args + ["--methods", "cosine,spec2vec,entropy"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "pip install 'llm4ms[baselines]'" in err and "spec2vec" in err and "ms_entropy" in err
    # the default method list runs what is installed and says what it left out
    assert main(args + ["--k", "1"]) == 0
    captured = capsys.readouterr()
    assert "spec2vec, entropy left out" in captured.err and "llm4ms[baselines]" in captured.err
    assert "cosine" in captured.out and "spec2vec" not in captured.out


# ---- query molecular mass -----------------------------------------------------------------------------
def test_mass_from_formula_and_smiles():
    assert mass_from_formula("C18H30O2") == pytest.approx(278.2246, abs=1e-4)  # examples/unknown_A.csv
    assert mass_from_formula("C18H27Br3O") == pytest.approx(495.9612, abs=1e-4)
    assert mass_from_formula("C2H5(CH3)2N") == pytest.approx(mass_from_formula("C4H11N"))
    for bad in ("", "C6H12O6+", "Xx2", "C6H6.H2O", "(C2", "C2)", "c6h6"):
        assert mass_from_formula(bad) is None, bad
    assert mass_from_smiles("CCCCCCOc1ccc(OCCCCCC)cc1") == pytest.approx(278.2246, abs=1e-4)
    assert mass_from_smiles("not a smiles") is None


def test_molecular_mass_comes_from_record_then_formula_then_smiles():
    def spectrum(**meta):
        return Spectrum(np.array([41.0]), np.array([1.0]), meta)

    both = {"formula": "C18H30O2", "smiles": "CCO"}
    assert spectrum(exact_mass="278.5", **both).molecular_mass_with_source() == (278.5, "exact_mass")
    assert spectrum(mol_weight=278, **both).molecular_mass_with_source() == (278.0, "mol_weight")
    value, source = spectrum(**both).molecular_mass_with_source()
    assert source == "formula" and value == pytest.approx(278.2246, abs=1e-4)
    assert spectrum(smiles="CCO").molecular_mass_source == "smiles"
    assert spectrum(smiles="CCO").molecular_mass == pytest.approx(46.0419, abs=1e-4)
    assert spectrum(formula="C6H12O6+", smiles="CCO").molecular_mass_source == "smiles"  # unreadable formula
    assert spectrum(exact_mass="nan", formula="CH4").molecular_mass_source == "formula"
    assert spectrum(smiles="CCO").recorded_mass is None
    assert spectrum().molecular_mass_with_source() == (None, None)


def test_mass_filter_works_with_formula_only_queries(tmp_path):
    """--mass-tolerance alone: a query that states only its FORMULA is filtered by the computed mass."""
    from llm4ms.commands.search import mass_note
    from llm4ms.library import Library

    library_spectra = random_spectra(60, seed=4)
    rng = np.random.default_rng(0)
    for s, formula in zip(library_spectra, ("C18H30O2", "C8H9BrO2", "C20H14N4") * 20):
        s.metadata["exact_mass"] = mass_from_formula(formula) + float(rng.uniform(-2, 2))
    library = Library.build(library_spectra, tmp_path / "lib", FakeEncoder(), show_progress=False)
    query = Spectrum(library_spectra[0].mz, library_spectra[0].intensities, {"formula": "C8H9BrO2"})
    target = mass_from_formula("C8H9BrO2")
    hits = library.search([query], k=10, encoder=FakeEncoder(), mass_tolerance=0.5)[0]
    assert hits and all(abs(h.mass - target) <= 0.5 for h in hits)
    assert mass_note([query], None, 0.5) == "mass filter +/-0.5 Da: query mass 215.9786 from its FORMULA"
    assert mass_note([query, Spectrum(query.mz, query.intensities, {})], None, 0.5) == (
        "mass filter +/-0.5 Da: query masses 1 from FORMULA, 1 without one")
    assert mass_note([query], 230.0, 0.5) == "mass filter +/-0.5 Da: query mass 230 from --mass"


# ---- first-run messages and progress -----------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_writes_log_lines_with_total_and_eta_when_not_a_terminal(caplog):
    from llm4ms.progress import Progress

    clock = _Clock()
    caplog.set_level(logging.INFO, logger="llm4ms")
    with Progress(1000, desc="embed", unit="spectra", stream=io.StringIO(), interval=20, clock=clock) as bar:
        for _ in range(10):
            clock.now += 10
            bar.update(100)
    lines = [r.getMessage() for r in caplog.records if r.name == "llm4ms.progress"]
    assert lines[0] == "embed: 200/1,000 spectra (20 %), 20 s elapsed, about 1 min 20 s left"
    assert len(lines) == 5 and lines[-1] == "embed: 1,000 spectra in 1 min 40 s"  # no separate 100 % line
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_progress_shows_a_bar_with_total_and_eta_on_a_terminal():
    from llm4ms.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    with Progress(500, desc="predict", unit="molecules", stream=out) as bar:
        bar.update(250)
    text = out.getvalue()
    assert "/500 [" in text and "<" in text  # tqdm: done/total [elapsed<remaining]
    quiet = Terminal()
    with Progress(500, desc="predict", unit="molecules", stream=quiet, enabled=False) as bar:
        bar.update(250)
    assert quiet.getvalue() == ""


def test_first_run_default_library_logs_info_not_warnings(tmp_path, monkeypatch, caplog):
    import llm4ms.defaults as defaults

    folder = tmp_path / "resources"
    folder.mkdir()
    write_msp(random_spectra(20, seed=5), folder / "measured.msp")
    (folder / "candidates_insilico.csv.gz").write_bytes(gzip.compress(
        b"id,name,smiles\nc1,ethanol,CCO\nc2,benzene,c1ccccc1\nc3,toluene,Cc1ccccc1\n"))
    monkeypatch.setattr(defaults, "DEFAULT_LIBRARY_SPECTRA", folder)
    monkeypatch.setenv("LLM4MS_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="llm4ms")
    library = defaults.default_library(FakeEncoder())  # progress left to the default (not a terminal here)
    assert len(library) == 23
    ours = [r for r in caplog.records if r.name.startswith("llm4ms")]
    assert not [r for r in ours if r.levelno >= logging.WARNING]
    text = "\n".join(r.getMessage() for r in ours)
    assert "predicting EI spectra for 3 candidate structures" in text
    assert "embedding the bundled library (23 spectra)" in text
    assert "embed: 23 spectra in" in text and "predict: 3 molecules in" in text


def test_cli_shows_llm4ms_info_lines_and_hides_other_libraries_info():
    code = ("import logging; from llm4ms.cli import configure_logging; configure_logging(); "
            "logging.getLogger('llm4ms.defaults').info('first run note'); "
            "logging.getLogger('transformers').info('noise'); logging.getLogger('llm4ms.x').warning('careful')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["llm4ms: first run note", "WARNING llm4ms.x: careful"]
