"""Recall@k, the molecular-mass filter, the runner and the `llm4ms evaluate` command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from llm4ms.evaluate import evaluate, hit_keys_for, markdown_table, mass_candidates, recall_at_k
from llm4ms.spectrum import Spectrum

K = ["AAAAAAAAAAAAAA-UHFFFAOYSA-N", "BBBBBBBBBBBBBB-UHFFFAOYSA-N", "CCCCCCCCCCCCCC-UHFFFAOYSA-N"]


def test_recall_first_block_and_full_key():
    query_keys = [K[0], K[1], "CCCCCCCCCCCCCC-ZZZZZZZZZZ-N", None]
    hits = np.array([
        [K[0], K[1], K[2]],                       # rank 1
        [K[2], K[0], K[1]],                       # rank 3
        [K[2], None, None],                       # first block at rank 1, full key never
        [K[0], K[1], K[2]],                       # no key: not counted
    ], dtype=object)
    r = recall_at_k(query_keys, hits, ks=(1, 2, 3))
    assert r["n_queries"] == 3 and r["n_skipped"] == 1
    assert r["inchikey14"] == pytest.approx({"1": 2 / 3, "2": 2 / 3, "3": 1.0})
    assert r["inchikey"] == pytest.approx({"1": 1 / 3, "2": 1 / 3, "3": 2 / 3})


def test_recall_rejects_k_beyond_hits():
    with pytest.raises(ValueError):
        recall_at_k([K[0]], np.array([[K[0]]], dtype=object), ks=(1, 5))


def test_hit_keys_maps_padding_to_none():
    keys = hit_keys_for(np.array([[1, -1]]), ["a", "b"])
    assert keys.tolist() == [["b", None]]


def _spec(mass, key, peaks=((41, 10.0), (57, 100.0))):
    meta = {"inchikey": key}
    if mass is not None:
        meta["exact_mass"] = mass
    mz, inten = zip(*peaks)
    return Spectrum(np.array(mz, float), np.array(inten, float), meta)


def test_mass_candidates_restricts_to_window():
    library = [_spec(100.0, K[0]), _spec(100.4, K[1]), _spec(101.0, K[2]), _spec(None, K[0]), _spec(99.6, K[1])]
    queries = [_spec(100.1, K[0]), _spec(None, K[1]), _spec(300.0, K[2])]
    cands = mass_candidates(queries, library, tolerance=0.5)
    assert cands[0].tolist() == [0, 1, 4]
    assert cands[1] is None
    assert cands[2].size == 0


def test_runner_mass_filter_rescues_a_lookalike():
    # The query's spectrum is identical to a wrong compound of another mass; the filter removes it.
    peaks = ((41, 10.0), (57, 100.0), (71, 30.0))
    library = [_spec(150.0, K[1], peaks), _spec(120.0, K[0], ((41, 10.0), (57, 100.0), (85, 30.0)))]
    query = _spec(120.0, K[0], peaks)
    result = evaluate([query], library, ["cosine", "wcs"], ks=(1, 2), mass_tolerance=0.5, name="t")
    for method in ("cosine", "wcs"):
        entry = result["methods"][method]
        assert entry["recall"]["inchikey14"]["1"] == 0.0
        assert entry["recall"]["inchikey14"]["2"] == 1.0
        assert entry["recall_mass_filtered"]["inchikey14"]["1"] == 1.0
        assert entry["seconds"]["fit"] >= 0 and entry["queries_per_second"] > 0
    assert result["counts"] == {"queries": 1, "library": 2, "queries_with_inchikey": 1,
                                "queries_whose_compound_is_in_library": 1, "isomer_subset": 0}
    table = markdown_table(result)
    assert "| cosine | 0.0 | 100.0 | 100.0 |" in table
    json.dumps(result, default=str)


MSP = """NAME: alpha
DB#: Q1
INCHIKEY: {k0}
EXACTMASS: 100.0
NUM PEAKS: 3
41 100
57 40
100 10

NAME: beta
DB#: Q2
INCHIKEY: {k1}
EXACTMASS: 128.0
NUM PEAKS: 3
43 100
85 60
128 5

"""

LIB_EXTRA = """NAME: gamma
DB#: L3
INCHIKEY: {k2}
EXACTMASS: 142.0
NUM PEAKS: 3
55 100
99 50
142 20

"""


def test_cli_evaluate_on_tiny_msp(tmp_path, capsys):
    from llm4ms.cli import main

    queries = tmp_path / "q.msp"
    library = tmp_path / "lib.msp"
    queries.write_text(MSP.format(k0=K[0], k1=K[1]), encoding="utf-8")
    library.write_text(MSP.format(k0=K[0], k1=K[1]) + LIB_EXTRA.format(k2=K[2]), encoding="utf-8")
    out = tmp_path / "res.json"
    code = main(["evaluate", "--queries", str(queries), "--library", str(library), "--methods", "cosine,wcs",
                 "--k", "1,2", "--mass-tolerance", "0.5", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| cosine | 100.0 | 100.0 |" in printed
    result = json.loads(out.read_text())
    assert result["methods"]["cosine"]["recall"]["inchikey14"]["1"] == 1.0
    assert result["counts"]["library"] == 3
    assert result["methods"]["cosine"]["per_query"]["first_hit_rank"] == [0, 0]
    assert result["paired"]["reference"] == "cosine" and "Paired with **cosine**" in printed


def test_cli_evaluate_bad_input_is_one_line(tmp_path, capsys):
    from llm4ms.cli import main

    queries = tmp_path / "q.msp"
    queries.write_text(MSP.format(k0=K[0], k1=K[1]), encoding="utf-8")
    code = main(["evaluate", "--queries", str(queries), "--library", str(tmp_path / "missing.msp")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "missing.msp" in err and len(err.splitlines()) == 1
    code = main(["evaluate", "--queries", str(queries), "--library", str(queries), "--methods", "llm4ms",
                 "--model", str(tmp_path / "no-model-here")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no-model-here" in err and len(err.splitlines()) == 1
    code = main(["evaluate", "--queries", str(queries), "--library", str(queries), "--methods", "cosine,wcs",
                 "--reference", "entropy"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--reference entropy" in err and len(err.splitlines()) == 1


def test_build_measured_benchmark_invariants(tmp_path):
    import importlib.util
    from pathlib import Path

    from llm4ms.data.split import compound_split
    from llm4ms.evaluate.loading import load_spectra

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("build_benchmark", root / "data_prep" / "build_benchmark.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)  # never needs the shared data at import
    from llm4ms.data.shared import shared_file

    if shared_file("massbank_ei", "massbank_ei_nominal.msp") is None:
        pytest.skip("shared MassBank data not present (set LLM4MS_SHARED_DATA or put it at ../shared/data)")
    folder = builder.build_measured(tmp_path, "test")
    queries = load_spectra(folder / "queries.msp")
    library = load_spectra(folder / "library.msp")
    assert queries and library
    assert {compound_split(s.inchikey14) for s in queries + library} == {"test"}
    lib_ids = {s.id for s in library}
    assert not lib_ids & {q.id for q in queries}
    lib_blocks = {s.inchikey14 for s in library}
    assert all(q.inchikey14 in lib_blocks for q in queries)
    # the query is the smallest accession of its compound
    for q in queries:
        assert all(str(q.id) < str(s.id) for s in library if s.inchikey14 == q.inchikey14)
    info = json.loads((folder / "info.json").read_text())
    assert info["queries"] == len(queries) and info["library"] == len(library)
    assert info["source"] == "shared:massbank_ei/massbank_ei_nominal.msp"  # no machine's absolute folder
