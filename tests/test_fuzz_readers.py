"""Seeded mutation fuzzing of `read_spectra` (a few seconds): no traceback, no hang, no invalid spectrum accepted.

The longer run with per-family figures is ``python benchmarks/fuzz_readers.py`` (10,000 inputs).
"""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest

from llm4ms.spectrum import Spectrum

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_readers.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("_fuzz_readers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzzed_files_give_results_or_one_line_errors(fuzz):
    result = fuzz.run(400, seed=12, hang_seconds=10.0, time_budget=60.0)
    total = result["total"]
    assert total["tried"] >= 300, "the fuzz run was cut by its time budget"
    assert all(row["tried"] > 0 for row in result["families"].values())
    problems = [f"{e['family']} #{e['input']} ({e['seed_file']}): {e['outcome']}: {e['detail']}"
                for e in result["examples"]]
    assert (total["tracebacks"], total["hangs"], total["invalid_accepted"]) == (0, 0, 0), "\n".join(problems)
    assert total["clean_errors"] > 50 and total["accepted"] > 50  # the mutations reach both outcomes


def test_every_family_mutates_every_seed_without_failing(fuzz):
    rng = random.Random(3)
    pool = fuzz.seeds()
    assert {Path(name).suffix for name, _ in pool} >= {".msp", ".mgf", ".csv", ".txt", ".tsv", ".jdx", ".dx"}
    for family in fuzz.FAMILIES:
        for name, text in pool:
            data, suffix = fuzz.mutate(rng, family, name, text, pool)
            assert isinstance(data, bytes) and suffix.startswith(".")


def test_the_fuzzer_would_see_tracebacks_and_invalid_spectra(fuzz, tmp_path, monkeypatch):
    import llm4ms.io

    path = tmp_path / "a.msp"
    path.write_text("Name: A\n10 1\n")
    assert fuzz.read_one(path, skip_invalid=False, hang_seconds=5)[0] == "accepted"

    def overflow(*args, **kwargs):
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(llm4ms.io, "read_spectra", overflow)
    outcome, detail = fuzz.read_one(path, skip_invalid=False, hang_seconds=5)
    assert outcome == "traceback" and "OverflowError" in detail

    def invalid(*args, **kwargs):
        yield Spectrum(np.array([10.0, 10.0]), np.array([1.0, -1.0]))

    monkeypatch.setattr(llm4ms.io, "read_spectra", invalid)
    assert fuzz.read_one(path, skip_invalid=False, hang_seconds=5)[0] == "invalid"
