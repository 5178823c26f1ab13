"""The MS/MS benchmark: accurate-mass scores, the precursor window, the query/library builder, the runner, the CLI."""
from __future__ import annotations

import numpy as np
import pytest

from llm4ms.errors import ConfigError
from llm4ms.mass import Tolerance
from llm4ms.spectrum import Spectrum

pytest.importorskip("matchms")
pytest.importorskip("ms_entropy")

KA = "AAAAAAAAAAAAAA-UHFFFAOYSA-N"
KB = "BBBBBBBBBBBBBB-UHFFFAOYSA-N"
KC = "CCCCCCCCCCCCCC-UHFFFAOYSA-N"
KD = "DDDDDDDDDDDDDD-UHFFFAOYSA-N"


def _ms2(peaks, precursor=None, key=KA, mode="positive", formula=None, **meta):
    mz, inten = zip(*peaks)
    metadata = {"inchikey": key, "ion_mode": mode, **meta}
    if precursor is not None:
        metadata["precursor_mz"] = precursor
    if formula is not None:
        metadata["formula"] = formula
    return Spectrum(np.array(mz, float), np.array(inten, float), metadata)


BASE = ((61.0284, 20.0), (85.0648, 100.0), (119.0491, 45.0), (147.0441, 70.0), (175.0754, 30.0))


def _moved(peaks, delta):
    return tuple((mz + delta, i) for mz, i in peaks)


# ---- accurate-mass pair scores ---------------------------------------------------------------------------
def test_accurate_scores_are_registered_with_the_nominal_ones():
    from llm4ms.similarity import SCORES, check_score

    for name in ("cosine_hr", "modified_cosine", "entropy_hr"):
        assert check_score(name) == name
    assert {"cosine", "cosine_sqrt", "wcs", "composite", "entropy"} <= set(SCORES)


@pytest.mark.parametrize("name", ["cosine_hr", "modified_cosine", "entropy_hr"])
def test_exact_mz_matters(name):
    from llm4ms.similarity import scores

    query = _ms2(BASE, precursor=200.0)
    same = _ms2(BASE, precursor=200.0)
    off = _ms2(_moved(BASE, 0.05), precursor=200.0)  # every fragment 0.05 Da away: other ions at high resolution
    result = scores(name, query, [same, off])
    assert result.dtype == np.float32 and result.shape == (2,)
    assert result[0] == pytest.approx(1.0, abs=1e-5)
    assert result[1] < 0.05
    # the nominal cosine cannot tell them apart: that is what the accurate scores are for
    assert scores("cosine", query, [off])[0] == pytest.approx(1.0, abs=1e-5)


def test_within_tolerance_still_matches():
    from llm4ms.similarity import scores

    query = _ms2(BASE, precursor=200.0)
    near = _ms2(_moved(BASE, 0.004), precursor=200.0)
    assert scores("cosine_hr", query, [near])[0] == pytest.approx(1.0, abs=1e-5)
    assert scores("entropy_hr", query, [near])[0] > 0.99


def test_modified_cosine_matches_fragments_shifted_by_the_precursor_difference():
    from llm4ms.similarity import score_matrix

    shift = 14.01565  # a methyl group on the part of the molecule the fragments keep
    query = _ms2(BASE, precursor=200.0)
    analogue = _ms2(((61.0284, 20.0),) + _moved(BASE[1:], shift), precursor=200.0 + shift, key=KB)
    no_precursor = _ms2(((61.0284, 20.0),) + _moved(BASE[1:], shift), key=KB)
    cosine = score_matrix("cosine_hr", [query], [analogue, no_precursor])[0]
    modified = score_matrix("modified_cosine", [query], [analogue, no_precursor])[0]
    assert cosine[0] < 0.2
    assert modified[0] == pytest.approx(1.0, abs=1e-5)
    # without a precursor m/z there is no shift to apply: the modified cosine is the cosine
    assert modified[1] == pytest.approx(cosine[1], abs=1e-6) and modified[1] < 0.2


def test_entropy_hr_removes_the_precursor_region():
    from llm4ms.similarity import scores

    query = _ms2(BASE + ((199.5, 100.0),), precursor=200.0)   # 199.5 > 200 - 1.6: removed before scoring
    other = _ms2(BASE, precursor=200.0)
    assert scores("entropy_hr", query, [other])[0] == pytest.approx(1.0, abs=1e-5)
    assert scores("cosine_hr", query, [other])[0] < 0.95  # the cosine keeps every recorded peak


# ---- the open-search (Flash) path and the candidate path agree ------------------------------------------
def _random_library(n=40, seed=3):
    rng = np.random.default_rng(seed)
    pool = np.sort(rng.uniform(50, 400, 60))
    library = []
    for i in range(n):
        mz = np.sort(rng.choice(pool, size=8, replace=False) + rng.normal(0, 0.002, 8))
        inten = rng.uniform(1, 100, 8)
        library.append(_ms2(list(zip(mz, inten)), precursor=float(mz.max() + rng.uniform(5, 60)),
                            key=f"{chr(65 + i % 26) * 14}-UHFFFAOYSA-N"))
    return library


@pytest.mark.parametrize("name", ["cosine_hr", "modified_cosine", "entropy_hr"])
def test_open_search_scores_equal_the_pair_scores(name):
    from llm4ms.evaluate import get_scorer
    from llm4ms.similarity import score_matrix

    library = _random_library()
    queries = library[:5]
    scorer = get_scorer(name).fit(library)
    dense = scorer.score_chunk(queries)
    exact = score_matrix(name, queries, library)
    assert dense.shape == exact.shape == (5, len(library))
    np.testing.assert_allclose(dense, exact, atol=2e-3)
    for row, query in enumerate(queries):
        cand = np.arange(len(library))
        np.testing.assert_allclose(scorer.candidate_scores(query, cand), exact[row], atol=1e-5)


def test_flash_agreement_report():
    from llm4ms.evaluate import get_scorer
    from llm4ms.evaluate.accurate_scorers import flash_agreement

    library = _random_library()
    scorer = get_scorer("modified_cosine").fit(library)
    report = flash_agreement(scorer, library[:4], n_top=10, n_random=10)
    assert report["queries"] == 4 and report["pairs"] > 0
    assert report["max_abs_diff"] < 2e-3 and report["top1_same"] == 1.0


def test_candidates_restrict_the_search():
    from llm4ms.evaluate import get_scorer

    library = _random_library()
    for name in ("cosine_hr", "entropy_hr"):
        scorer = get_scorer(name).fit(library)
        idx, sc = scorer.search(library[:3], k=4, candidates=[np.array([7, 2]), None, np.array([], dtype=np.int64)])
        assert set(idx[0][:2]) == {2, 7} and idx[0][2:].tolist() == [-1, -1]
        assert idx[1][0] == 1  # no restriction: the query finds itself
        assert idx[2].tolist() == [-1] * 4 and np.all(np.isneginf(sc[2]))


def test_spec2vec_hr_words_keep_two_decimals():
    pytest.importorskip("spec2vec")
    from llm4ms.evaluate import get_scorer
    from llm4ms.evaluate.spec2vec_scorer import _documents

    assert _documents([_ms2(BASE)], 2)[0].words[:2] == ["peak@61.03", "peak@85.06"]
    assert _documents([_ms2(BASE)], 0)[0].words[:2] == ["peak@61", "peak@85"]
    library = _random_library(12)
    scorer = get_scorer("spec2vec_hr", iterations=2, vector_size=16).fit(library)
    assert scorer.settings()["words"] == "peak@{mz:.2f}"
    idx, _ = scorer.search(library[:3], k=1)
    assert idx[:, 0].tolist() == [0, 1, 2]


# ---- the precursor window ---------------------------------------------------------------------------------
def test_precursor_candidates_in_ppm():
    from llm4ms.evaluate.runner import precursor_candidates

    library = [_ms2(BASE, 500.004), _ms2(BASE, 500.006), _ms2(BASE, None), _ms2(BASE, 499.996), _ms2(BASE, 100.0)]
    queries = [_ms2(BASE, 500.0), _ms2(BASE, None), _ms2(BASE, 800.0), _ms2(BASE, 100.0005)]
    cands = precursor_candidates(queries, library, Tolerance(10, "ppm"))  # +-0.005 Da at m/z 500
    assert cands[0].tolist() == [0, 3]
    assert cands[1] is None                  # no precursor: searched unrestricted
    assert cands[2].size == 0
    assert cands[3].tolist() == [4]          # 10 ppm of 100 is 0.001 Da
    assert precursor_candidates(queries, library, Tolerance(0.01, "Da"))[0].tolist() == [0, 1, 3]


def _window_case():
    """The query's twin compound C (different formula, another precursor) has an identical spectrum; its own
    compound A (another spectrum, 3 ppm away) and an isomer B (same formula) lie in the 10 ppm window."""
    query = _ms2(BASE, 300.1000, key=KA, formula="C15H13NO4")
    library = [
        _ms2(BASE, 310.2000, key=KC, formula="C16H27N3O2"),                                  # lookalike
        _ms2(BASE[:4] + ((175.0754, 5.0), (190.0, 40.0)), 300.1010, key=KA, formula="C15H13NO4"),  # same compound
        _ms2(((61.0284, 20.0), (99.0, 100.0), (133.0, 50.0), (150.0, 10.0)), 300.1005, key=KB,
             formula="C15H13NO4"),                                                            # isomer
    ]
    return query, library


@pytest.mark.parametrize("method", ["cosine_hr", "modified_cosine", "entropy_hr"])
def test_runner_precursor_window_recall(method):
    from llm4ms.evaluate import evaluate, markdown_table

    query, library = _window_case()
    result = evaluate([query], library, [method], ks=(1, 2), name="t", precursor_tolerance=Tolerance(10, "ppm"))
    entry = result["methods"][method]
    assert entry["recall"]["inchikey14"] == {"1": 0.0, "2": 1.0}          # open search: the lookalike first
    assert entry["recall_precursor_window"]["inchikey14"]["1"] == 1.0      # the window removes it
    assert result["counts"]["isomer_subset"] == 1
    assert entry["recall_precursor_window_isomer_subset"]["inchikey14"]["1"] == 1.0
    window = result["settings"]["precursor_window"]
    assert window["median_candidates"] == 2.0 and window["queries_without_precursor"] == 0
    table = markdown_table(result)
    assert "R@1 ±10 ppm" in table and f"| {method} | 0.0 | 100.0 |" in table


def test_runner_without_window_is_unchanged():
    from llm4ms.evaluate import evaluate

    query, library = _window_case()
    result = evaluate([query], library, ["cosine_hr"], ks=(1,), name="t")
    assert "precursor_window" not in result["settings"]
    assert "recall_precursor_window" not in result["methods"]["cosine_hr"]


# ---- the query / library builder -------------------------------------------------------------------------
def _sets():
    def s(key, mode, ident, precursor=150.0, **meta):
        return _ms2(BASE, precursor, key=key, mode=mode, id=ident, **meta)

    return {
        "train": [s(KD, "positive", "t1"), s(KD, "positive", "t2"), s(KD, "negative", "t3")],
        "validation": [s(KA, "positive", "v1"), s(KA, "positive", "v2"), s(KA, "positive", "v3"),
                       s(KB, "positive", "v4"),                                  # one spectrum only: not queried
                       s(KC, "negative", "v5", smiles="CCO"), s(KC, "negative", "v6"),
                       s(KC, "positive", "v7"),                                  # alone in positive mode
                       s(KA, "negative", "v8", precursor=None), s(KA, "negative", "v9")],
        "test": [s("EEEEEEEEEEEEEE-UHFFFAOYSA-N", "positive", "x1"),
                 s("EEEEEEEEEEEEEE-UHFFFAOYSA-N", "positive", "x2")],
    }


def test_msms_builder_queries_and_library():
    from llm4ms.evaluate.msms import build_msms_benchmark

    bench = build_msms_benchmark(_sets(), split="validation", seed=0)
    assert set(bench) == {"positive", "negative"}
    pos, neg = bench["positive"], bench["negative"]
    assert sorted(q.inchikey14 for q in pos.queries) == [KA[:14]]           # B and C have one positive spectrum
    assert sorted(q.inchikey14 for q in neg.queries) == [KA[:14], KC[:14]]
    for part in (pos, neg):
        lib_ids = [s.id for s in part.library]
        assert not {q.id for q in part.queries} & set(lib_ids)              # queries never in the library
        assert {s.ion_mode for s in part.library} == {part.ion_mode}        # ion modes apart
        assert len(lib_ids) + len(part.queries) == sum(
            1 for split in _sets().values() for s in split if s.ion_mode == part.ion_mode)
    assert {"t1", "t2", "x1", "x2", "v4", "v7"} <= {s.id for s in pos.library}   # every other spectrum stays
    assert pos.counts["compounds_with_one_spectrum_not_queried"] == 2
    # the negative query of A is drawn among its spectra with a precursor m/z
    assert [q.id for q in neg.queries if q.inchikey14 == KA[:14]] == ["v9"]
    # seeded: the same draw every time; formulas filled from SMILES where missing
    again = build_msms_benchmark(_sets(), split="validation", seed=0)
    assert [q.id for q in again["positive"].queries] == [q.id for q in pos.queries]
    v5 = next(s for s in neg.library + neg.queries if s.id == "v5")
    assert v5.formula == "C2H6O"
    with pytest.raises(ConfigError):
        build_msms_benchmark(_sets(), split="train")


def test_msms_builder_max_queries_and_seed():
    from llm4ms.evaluate.msms import build_msms_benchmark

    sets = _sets()
    sets["validation"] += [_ms2(BASE, 150.0, key=f"{c * 14}-UHFFFAOYSA-N", id=f"{c}{i}")
                           for c in "FGHIJ" for i in range(2)]
    bench = build_msms_benchmark(sets, split="validation", seed=0, max_queries=2)["positive"]
    assert len(bench.queries) == 2 and bench.counts["compounds_left_out_by_max_queries"] == 4
    ids = {s.id for s in bench.library}
    assert all(q.id not in ids for q in bench.queries)


# ---- the command line and the optional MS2DeepScore scorer ----------------------------------------------
def test_cli_bad_precursor_tolerance_is_one_line(tmp_path, capsys):
    from llm4ms.cli import main
    from llm4ms.io import write_mgf

    path = tmp_path / "q.mgf"
    write_mgf([_ms2(BASE, 200.0)], path)
    code = main(["evaluate", "--queries", str(path), "--library", str(path), "--methods", "cosine_hr",
                 "--precursor-tolerance", "10 parsecs"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--precursor-tolerance" in err and "parsecs" in err


def test_cli_precursor_window_column(tmp_path, capsys):
    from llm4ms.cli import main
    from llm4ms.io import write_mgf

    query, library = _window_case()
    q, lib = tmp_path / "q.mgf", tmp_path / "lib.mgf"
    write_mgf([query], q)
    write_mgf(library, lib)
    code = main(["evaluate", "--queries", str(q), "--library", str(lib), "--methods", "cosine_hr",
                 "--k", "1,2", "--precursor-tolerance", "10ppm"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "R@1 ±10 ppm" in printed and "| cosine_hr | 0.0 | 100.0 |" in printed


def test_ms2deepscore_missing_package_or_model_is_a_config_error(tmp_path):
    from importlib.util import find_spec

    from llm4ms.evaluate import get_scorer

    with pytest.raises(ConfigError) as info:
        get_scorer("ms2deepscore", model_path=str(tmp_path / "missing.pt"))
    message = str(info.value)
    assert len(message.splitlines()) == 1
    if find_spec("ms2deepscore") is None:
        assert "ms2deepscore package" in message
    else:
        assert "missing.pt" in message


def test_benchmark_script_builds_the_sets_and_the_table(tmp_path):
    """One command from a (tiny, synthetic) MassBank-data checkout to the table."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from llm4ms.data.split import compound_split

    root = Path(__file__).resolve().parents[1]
    keys = [f"{a * 14}-UHFFFAOYSA-N" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    validation = [k for k in keys if compound_split(k[:14]) == "validation"][:2]
    train = [k for k in keys if compound_split(k[:14]) == "train"][:2]
    assert len(validation) == 2 and len(train) == 2
    checkout = tmp_path / "MassBank-data" / "Lab"
    checkout.mkdir(parents=True)
    for c, key in enumerate(validation + train):
        base = 150.0 + 20 * c
        for r in range(2):
            peaks = [(base - 60 + 7.0123 * j + 0.001 * r, 100 - 10 * j) for j in range(5)]
            accession = f"MSBNK-Lab-X{c}{r:06d}"
            lines = [f"ACCESSION: {accession}", "RECORD_TITLE: t; LC-ESI-QTOF; MS2", "LICENSE: CC BY",
                     f"CH$NAME: compound {c}", f"CH$FORMULA: C{c + 5}H8O2", f"CH$LINK: INCHIKEY {key}",
                     "AC$MASS_SPECTROMETRY: MS_TYPE MS2", "AC$MASS_SPECTROMETRY: ION_MODE POSITIVE",
                     f"MS$FOCUSED_ION: PRECURSOR_M/Z {base + 0.0001 * r:.4f}", "MS$FOCUSED_ION: PRECURSOR_TYPE [M+H]+",
                     f"PK$NUM_PEAK: {len(peaks)}", "PK$PEAK: m/z int. rel.int."]
            lines += [f"  {mz:.4f} {inten} {inten * 9}" for mz, inten in peaks]
            (checkout / f"{accession}.txt").write_text("\n".join(lines + ["//"]) + "\n")
    sets, out = tmp_path / "sets", tmp_path / "out"
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "msms_recall.py"), "--checkout",
                           str(tmp_path / "MassBank-data"), "--sets", str(sets), "--split", "validation",
                           "--methods", "cosine_hr,entropy_hr", "--agreement-queries", "0", "--out-dir", str(out),
                           "--name", "t"], capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (sets / "summary.json").is_file()
    result = json.loads((out / "msms_recall_t.json").read_text())
    positive = result["by_ion_mode"]["positive"]
    assert positive["counts"]["queries"] == 2 and positive["counts"]["library"] == 6
    for method in ("cosine_hr", "entropy_hr"):
        assert positive["methods"][method]["recall"]["inchikey14"]["1"] == 1.0
        assert result["all_queries"][method]["recall_precursor_window"]["inchikey14"]["1"] == 1.0
    assert "**all queries**: 2 queries" in done.stdout and "R@1 ±10 ppm" in done.stdout
