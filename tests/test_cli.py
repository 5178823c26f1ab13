"""The CLI end to end with a tiny local model: embed -> search -> hits file, info, index, clear errors."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from llm4ms.cli import main
from llm4ms.io import write_msp

from _fakes import random_spectra
from _model_helpers import build_tiny


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from llm4ms.model import SpectrumEncoder

    root = tmp_path_factory.mktemp("cli")
    base = build_tiny(root / "base")
    SpectrumEncoder.from_base(str(base)).save_pretrained(root / "model")
    spectra = random_spectra(120, seed=3)
    write_msp(spectra, root / "lib.msp")
    write_msp(spectra[10:13], root / "queries.msp")
    assert main(["embed", "--spectra", str(root / "lib.msp"), "--out", str(root / "lib"),
                 "--model", str(root / "model"), "--no-progress", "--chunk-size", "50"]) == 0
    return root, spectra


def test_embed_then_search_finds_query_at_rank_one(setup):
    root, spectra = setup
    out = root / "hits.csv"
    # no --model: the library remembers the model it was embedded with
    assert main(["search", "--query", str(root / "queries.msp"), "--library", str(root / "lib"),
                 "-k", "3", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 9
    firsts = [r for r in rows if r["rank"] == "1"]
    assert [r["id"] for r in firsts] == ["S10", "S11", "S12"]
    assert all(float(r["score"]) > 0.9999 for r in firsts)


def test_search_table_and_json(setup, capsys):
    root, _ = setup
    assert main(["search", "--query", str(root / "queries.msp"), "--library", str(root / "lib"), "-k", "2"]) == 0
    table = capsys.readouterr().out
    assert "Query 1: compound 10" in table and "compound 10" in table.split("\n")[2]
    assert main(["search", "--query", str(root / "queries.msp"), "--library", str(root / "lib"), "-k", "2",
                 "--out", str(root / "h.json"), "--mass-tolerance", "0.01"]) == 0
    hits = json.loads((root / "h.json").read_text())["hits"]
    assert all(abs(h["mass"] - next(x for x in hits if x["rank"] == 1 and x["query_index"] == h["query_index"])
                   ["mass"]) <= 0.02 for h in hits)


def test_info_and_reindex(setup, capsys):
    root, _ = setup
    assert main(["info", str(root / "lib"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["spectra"] == 120 and info["model"]["dim"] == 64
    assert main(["index", str(root / "lib"), "--type", "hnsw"]) == 0
    assert json.loads((root / "lib" / "manifest.json").read_text())["index"]["spec"]["kind"] == "hnsw"
    assert main(["search", "--query", str(root / "queries.msp"), "--library", str(root / "lib"), "-k", "1",
                 "--out", str(root / "h2.csv")]) == 0
    assert [r["id"] for r in csv.DictReader(open(root / "h2.csv"))] == ["S10", "S11", "S12"]


def test_bad_inputs_give_one_line_and_exit_2(setup, tmp_path, capsys):
    root, _ = setup
    bad = tmp_path / "bad.msp"
    bad.write_text("Name: x\nNum Peaks: 2\n41 100\n43 abc\n")
    assert main(["search", "--query", str(bad), "--library", str(root / "lib")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.msp, record 1, line 4" in err and "Traceback" not in err
    assert main(["search", "--query", str(root / "queries.msp"), "--library", str(tmp_path)]) == 2
    assert "not an llm4ms library" in capsys.readouterr().err
    assert main(["embed", "--spectra", str(tmp_path / "missing.msp"), "--out", str(tmp_path / "x"),
                 "--model", str(root / "model")]) == 2
    assert "missing.msp" in capsys.readouterr().err


def test_skip_invalid_counts_records(setup, tmp_path, capsys):
    root, spectra = setup
    text = (root / "lib.msp").read_text()
    broken = text.replace("Num Peaks:", "Num Peaks: x\nNum Peaks:", 1)  # first record now broken
    (tmp_path / "broken.msp").write_text(broken)
    assert main(["embed", "--spectra", str(tmp_path / "broken.msp"), "--out", str(tmp_path / "lib"),
                 "--model", str(root / "model"), "--no-progress"]) == 2
    assert main(["embed", "--spectra", str(tmp_path / "broken.msp"), "--out", str(tmp_path / "lib"),
                 "--model", str(root / "model"), "--no-progress", "--skip-invalid"]) == 0
    err = capsys.readouterr().err
    assert "119 spectra embedded" in err and "1 invalid records skipped" in err


def test_sharded_embed_in_two_processes_then_merge(setup, tmp_path):
    """Two real processes (as `accelerate launch`/torchrun would start) embed halves; merge restores order."""
    import os
    import subprocess
    import sys

    import numpy as np

    from llm4ms.library import Library

    root, spectra = setup
    out = tmp_path / "sharded"
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "llm4ms.cli", "embed", "--spectra", str(root / "lib.msp"), "--out", str(out),
             "--model", str(root / "model"), "--shard", "auto", "--no-progress", "--chunk-size", "16"],
            env=env, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["shard-000-of-002", "shard-001-of-002"]
    assert main(["merge", str(out)]) == 0
    merged, single = Library.load(out), Library.load(root / "lib")
    assert len(merged) == len(single) == 120
    assert [merged.metadata_row(i)["id"] for i in range(120)] == [s.id for s in spectra]
    assert np.allclose(np.asarray(merged.embeddings), np.asarray(single.embeddings), atol=1e-5)
    assert merged.manifest.index["spec"]["kind"] == "flat"
    assert not any(p.name.startswith("shard-") for p in out.iterdir())
    assert main(["embed", "--spectra", str(root / "lib.msp"), "--out", str(tmp_path / "x"),
                 "--model", str(root / "model"), "--shard", "3/2"]) == 2


def test_model_folder_is_a_sentence_transformer(setup):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from llm4ms.model import SpectrumEncoder

    root, spectra = setup
    encoder = SpectrumEncoder.from_pretrained(root / "model")
    texts = encoder.texts(spectra[:4])
    ours = encoder.encode(spectra[:4], show_progress=False)
    theirs = SentenceTransformer(str(root / "model"), device="cpu", trust_remote_code=True).encode(texts)
    assert np.allclose(ours, theirs, atol=1e-5)


def test_convert_format1_folder_gives_the_same_vectors(tmp_path, capsys):
    import numpy as np

    from _model_helpers import random_spectra
    from llm4ms.model import SpectrumEncoder

    old = Path(__file__).parent / "data" / "format1_model"
    assert main(["embed", "--spectra", str(Path(__file__).parent.parent / "examples" / "fastei_10_measured.msp"),
                 "--out", str(tmp_path / "lib"), "--model", str(old)]) == 2
    assert "llm4ms convert" in capsys.readouterr().err
    assert main(["convert", "--model", str(old), "--out", str(tmp_path / "new")]) == 0
    encoder = SpectrumEncoder.from_pretrained(tmp_path / "new")
    expected = np.load(old.parent / "format1_model_vectors.npy")  # written by the format-1 code itself
    assert np.allclose(encoder.encode(random_spectra(6, seed=7)), expected, atol=1e-5)
    assert main(["convert", "--model", str(tmp_path / "new"), "--out", str(tmp_path / "again")]) == 2
    assert "not a format-1" in capsys.readouterr().err


def test_search_ranking_overrides_classic_retrieval_and_mass_terms(setup, capsys, caplog):
    import logging

    root, _ = setup
    args = ["search", "--query", str(root / "queries.msp"), "--library", str(root / "lib"), "-k", "1",
            "--fusion", "0.5", "--mass-prior"]
    with caplog.at_level(logging.INFO, logger="llm4ms"):
        assert main(args + ["--classic-depth", "30", "--fused-depth", "0"]) == 0
        assert main(args + ["--classic-depth", "0"]) == 0
        assert main(args + ["--classic-depth", "30", "--approximate-classic"]) == 0
        assert main(args + ["--classic-depth", "30", "--fused-depth", "40"]) == 0
        assert main(args + ["--classic-depth", "30", "--approximate-classic", "--plausible-masses", "0"]) == 0
    described = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ranking:")]
    assert ("likeliest molecular masses" in described[2]) == ("molecular-ion" in described[2])
    assert "likeliest" not in described[4]
    assert "+ top 30 by cosine_sqrt" in described[0] and "by cosine_sqrt" not in described[1].split("(")[1]
    assert "+ top 30 by cosine_sqrt (approximate)" in described[2]
    assert "+ top 40 of the whole library by the fused score" in described[3]
    assert (root / "lib" / "classic_cosine_sqrt" / "key.json").is_file()  # kept beside the library
    assert main(args + ["--classic-depth", "-1"]) == 2
    assert "classic_depth must be >= 0" in capsys.readouterr().err
    with caplog.at_level(logging.WARNING, logger="llm4ms"):
        caplog.clear()
        assert main(args + ["--classic-depth", "30", "--plausible-masses", "3"]) == 0
    assert "applies to approximate classic retrieval" in caplog.text
    assert main(args + ["--plausible-masses", "-1"]) == 2
    assert "plausible_masses must be >= 0" in capsys.readouterr().err
    assert main(args + ["--fused-depth", "-1"]) == 2
    assert "fused_depth must be >= 0" in capsys.readouterr().err
