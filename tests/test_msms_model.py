"""The shipped MS/MS model (`--model msms`): loads by name, carries its fitted ranking and card, and a search
through the CLI ranks another spectrum of the query's compound first inside the precursor window."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llm4ms import defaults
from llm4ms.io import write_mgf
from tests.test_msms_training import msms_compounds

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = defaults.MSMS_MODEL_DIR
pytestmark = pytest.mark.skipif(not (SHIPPED / "llm4ms_config.json").exists(),
                                reason="this build ships no MS/MS model (llm4ms/resources/msms_model)")


def test_bundled_msms_model_loads_by_name_with_its_ranking_and_card():
    from llm4ms.ranking import model_ranking

    encoder = defaults.load_encoder("msms")
    ranking = model_ranking(encoder)
    assert ranking.classic == "entropy_hr" and 0.0 < ranking.fusion < 1.0
    card = (SHIPPED / "README.md").read_text(encoding="utf-8")
    result = json.loads((ROOT / "benchmarks" / "results" / "msms_recall_test.json").read_text())
    llm4ms_r1 = 100 * result["all_queries"]["llm4ms"]["recall"]["inchikey14"]["1"]
    assert f"MassBank MS/MS test, open search: R@1 {llm4ms_r1:.1f}" in card


def test_replicates_of_a_compound_embed_closer_than_other_compounds():
    encoder = defaults.load_encoder("msms")
    spectra = [s for s in msms_compounds(n_compounds=12) if s.metadata["ion_mode"] == "positive"]
    keys = np.array([s.metadata["inchikey"] for s in spectra])
    vectors = np.asarray(encoder.encode(spectra), dtype=np.float32)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest_same = keys[sims.argmax(axis=1)] == keys
    assert nearest_same.mean() >= 0.9, nearest_same


def test_cli_embed_and_search_with_the_msms_model(tmp_path):
    spectra = [s for s in msms_compounds(n_compounds=8) if s.metadata["ion_mode"] == "positive"]
    queries = [s for s in spectra if s.metadata["id"].endswith("-E0")]
    library = [s for s in spectra if not s.metadata["id"].endswith("-E0")]
    write_mgf(queries, tmp_path / "q.mgf")
    write_mgf(library, tmp_path / "lib.mgf")
    run = [sys.executable, "-m", "llm4ms.cli"]
    done = subprocess.run(run + ["embed", "--spectra", str(tmp_path / "lib.mgf"), "--model", "msms",
                                 "--out", str(tmp_path / "lib")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(run + ["search", "--query", str(tmp_path / "q.mgf"), "--library", str(tmp_path / "lib"),
                                 "--precursor-tolerance", "10ppm", "-k", "3",
                                 "--out", str(tmp_path / "hits.json")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "entropy_hr" in done.stderr  # the model's fitted ranking was applied
    hits = json.loads((tmp_path / "hits.json").read_text())["hits"]
    top = {h["query_id"]: h for h in hits if h["rank"] == 1}
    assert len(top) == len(queries)
    key_of = {q.metadata["id"]: q.metadata["inchikey"] for q in queries}
    assert sum(h["inchikey"] == key_of[q] for q, h in top.items()) >= len(queries) - 1
    assert all(h["adduct"] == "[M+H]+" and h["precursor_mz"] is not None for h in hits)
    query_precursor = {q.metadata["id"]: q.metadata["precursor_mz"] for q in queries}
    assert all(abs(h["precursor_mz"] - query_precursor[h["query_id"]]) <= 1e-5 * h["precursor_mz"] for h in hits)
