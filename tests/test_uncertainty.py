"""Intervals of recall figures and the paired comparison of two methods (`llm4ms.evaluate.uncertainty`)."""
from __future__ import annotations

import numpy as np
import pytest

from llm4ms.evaluate.uncertainty import hits_at, paired_difference, recall_interval
from llm4ms.metrics import first_hit_ranks


def test_first_hit_ranks_and_hits_at():
    keys = ["AAAAAAAAAAAAAA-X", "BBBBBBBBBBBBBB-X", None]
    hits = np.array([["AAAAAAAAAAAAAA-Y", "B"], ["A", "BBBBBBBBBBBBBB-Z"], ["A", "B"]], dtype=object)
    ranks = first_hit_ranks(keys, hits)
    assert ranks.tolist() == [0, 1, -1]
    assert first_hit_ranks(keys, hits, first_block=False).tolist() == [-1, -1, -1]
    assert hits_at(ranks, 1).tolist() == [True, False, False]
    assert hits_at(ranks, 2).tolist() == [True, True, False]


def test_wilson_interval_holds_the_estimate_and_narrows_with_more_queries():
    low, high = recall_interval(np.array([True] * 7 + [False] * 3))
    assert low < 0.7 < high and 0 <= low and high <= 1
    big_low, big_high = recall_interval(np.array([True] * 700 + [False] * 300))
    assert big_high - big_low < (high - low) / 5
    assert recall_interval(np.zeros(20, bool))[0] == 0.0  # Wilson: never below 0, unlike the normal interval
    assert recall_interval(np.zeros(20, bool))[1] == pytest.approx(0.161, abs=0.001)  # 1.96^2 / (20 + 1.96^2)


def test_paired_difference_of_identical_methods_is_exactly_zero():
    hits = np.array([True, False, True, True])
    out = paired_difference(hits, hits)
    assert out["difference"] == 0 and out["interval"] == [0, 0] and out["p_mcnemar"] == 1.0
    assert out["a_only"] == out["b_only"] == 0


def test_paired_difference_resolves_a_consistent_margin_and_is_antisymmetric():
    rng = np.random.default_rng(1)
    b = rng.random(700) < 0.5
    a = b.copy()
    a[np.flatnonzero(~b)[:40]] = True  # A is right on 40 queries B misses, B never beats A
    out = paired_difference(a, b)
    assert out["difference"] == pytest.approx(40 / 700)
    assert 0 < out["interval"][0] < out["difference"] < out["interval"][1]
    assert out["p_mcnemar"] == pytest.approx(2 * 0.5 ** 40)
    swapped = paired_difference(b, a)
    assert swapped["difference"] == -out["difference"] and swapped["a_only"] == 0 and swapped["b_only"] == 40
    assert paired_difference(a, b) == out  # seeded: a re-run gives the same interval


def test_paired_difference_of_a_coin_flip_keeps_zero_inside():
    a = np.array([True] * 10 + [False] * 10 + [True] * 50)
    b = np.array([False] * 10 + [True] * 10 + [True] * 50)
    out = paired_difference(a, b)
    assert out["difference"] == 0 and out["interval"][0] < 0 < out["interval"][1]
    assert out["p_mcnemar"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        paired_difference(a, b[:-1])


def test_runner_keeps_per_query_ranks_intervals_and_pairs_methods():
    from llm4ms.evaluate import evaluate, markdown_table
    from llm4ms.spectrum import Spectrum

    rng = np.random.default_rng(0)
    library, queries = [], []
    for i in range(40):  # 8 of 20 m/z values each, noisy intensities: cosine misses 8 that sqrt cosine finds
        key = f"{chr(65 + i // 26)}{chr(65 + i % 26)}" * 7 + "-UHFFFAOYSA-N"
        mz = np.sort(rng.choice(np.arange(30, 50), 8, replace=False)).astype(float)
        inten = rng.random(8) ** 3 * 100 + 1
        library.append(Spectrum(mz, inten, {"inchikey": key}))
        queries.append(Spectrum(mz, inten * np.exp(rng.normal(0, 1.0, 8)), {"inchikey": key}))
    result = evaluate(queries, library, ["cosine", "cosine_sqrt"], ks=(1, 10), name="t", reference="cosine_sqrt")
    for entry in result["methods"].values():
        ranks = np.array(entry["per_query"]["first_hit_rank"])
        assert np.mean(hits_at(ranks, 1)) == pytest.approx(entry["recall"]["inchikey14"]["1"])
        low, high = entry["interval95"]["1"]
        assert low <= entry["recall"]["inchikey14"]["1"] <= high
    paired = result["paired"]
    assert paired["reference"] == "cosine_sqrt" and set(paired["against"]) == {"cosine"}
    diff = paired["against"]["cosine"]["1"]
    r = {m: result["methods"][m]["recall"]["inchikey14"]["1"] for m in ("cosine", "cosine_sqrt")}
    assert diff["difference"] == pytest.approx(r["cosine_sqrt"] - r["cosine"])
    assert diff["a_only"] > 0 and (diff["a_only"] - diff["b_only"]) / 40 == pytest.approx(diff["difference"])
    assert diff["interval"][0] < diff["difference"] < diff["interval"][1]
    assert "Paired with **cosine_sqrt**" in markdown_table(result)
    assert len(result["query_inchikey14"]) == 40
    with pytest.raises(ValueError, match="was not evaluated"):
        evaluate(queries, library, ["cosine", "wcs"], ks=(1,), reference="entropy")
    assert evaluate(queries, library, ["cosine"], ks=(1,))["paired"] is None


def _run(name, ranks, keys):
    return {"name": name, "query_inchikey14": keys,
            "methods": {"m": {"per_query": {"variant": "recall", "first_hit_rank": ranks}}}}


def test_compare_runs_pairs_two_results_on_the_same_queries():
    from llm4ms.errors import ConfigError
    from llm4ms.evaluate.uncertainty import compare_runs

    keys = ["K1", "K2", "K3", None]
    new, old = _run("new", [0, 0, 3, 0], keys), _run("old", [1, 0, -1, -1], keys)
    out = compare_runs(new, "m", old, "m", ks=(1, 10))
    assert out["1"]["difference"] == pytest.approx(1 / 3)  # the query without a key is not counted
    assert (out["1"]["a_only"], out["1"]["b_only"]) == (1, 0)
    assert (out["10"]["a_only"], out["10"]["b_only"]) == (1, 0)
    with pytest.raises(ConfigError, match="different queries"):
        compare_runs(new, "m", _run("other", [0, 0, 0, 0], ["K2", "K1", "K3", None]), "m")
    with pytest.raises(ConfigError, match="not in"):
        compare_runs(new, "m", old, "entropy")
    with pytest.raises(ConfigError, match="per-query"):
        compare_runs({"methods": {}}, "m", old, "m")


def test_compare_runs_script_writes_the_table_and_bad_input_is_one_line(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_runs.py"
    keys = [f"K{i}" for i in range(50)]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_run("a", [0] * 50, keys)))
    b.write_text(json.dumps(_run("b", [0] * 30 + [-1] * 20, keys)))
    done = subprocess.run([sys.executable, str(script), str(a), str(b), "--method-a", "m", "--name", "t",
                           "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| R@1 | +40.0 |" in done.stdout and "20 / 0" in done.stdout
    assert json.loads((tmp_path / "compare_t.json").read_text())["paired"]["1"]["a_only"] == 20
    b.write_text("{not json")
    done = subprocess.run([sys.executable, str(script), str(a), str(b)], capture_output=True, text=True)
    assert done.returncode == 2 and "b.json" in done.stderr and len(done.stderr.strip().splitlines()) == 1
