"""Library store, FAISS index kinds and search, with a deterministic fake encoder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from llm4ms.errors import Llm4msError, ModelMismatchError
from llm4ms.library import IndexSpec
from llm4ms.report import format_hit_table, write_hits
from llm4ms.library import Library
from llm4ms.utils import atomic_open

from _fakes import FakeEncoder, random_spectra


@pytest.fixture(scope="module")
def spectra():
    return random_spectra(300, seed=1)


@pytest.fixture(scope="module")
def library(spectra, tmp_path_factory):
    out = tmp_path_factory.mktemp("lib")
    return Library.build(spectra, out, FakeEncoder(), chunk_size=64, show_progress=False)


def test_build_stores_everything(library, spectra):
    assert len(library) == 300
    assert library.embeddings.shape == (300, 32)
    assert np.allclose(np.linalg.norm(library.embeddings, axis=1), 1, atol=1e-5)
    s = library.spectrum(17)
    assert np.allclose(s.mz, spectra[17].mz)
    assert np.allclose(s.intensities, spectra[17].intensities, rtol=1e-6)
    row = library.metadata_row(17)
    assert row["name"] == "compound 17" and row["id"] == "S17" and row["source_record"] == 18
    assert not (library.folder / "shards").exists()
    assert library.manifest.complete and library.manifest.index["spec"]["kind"] == "flat"


def test_query_in_library_is_rank_one(library, spectra):
    queries = [spectra[i] for i in (0, 42, 299)]
    results = library.search(queries, k=5, encoder=FakeEncoder())
    for qi, hits in zip((0, 42, 299), results):
        assert hits[0].library_index == qi
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_model_mismatch_is_refused(library, spectra):
    with pytest.raises(ModelMismatchError, match="identity"):
        library.search(spectra[:1], encoder=FakeEncoder(seed=7))
    with pytest.raises(ModelMismatchError):
        Library.build(spectra, library.folder, FakeEncoder(seed=7), show_progress=False)


def test_mass_filter_restricts_candidates(library, spectra):
    query = spectra[5]
    mass = query.molecular_mass
    hits = library.search([query], k=50, encoder=FakeEncoder(), mass_tolerance=2.0)[0]
    assert hits and hits[0].library_index == 5
    assert all(abs(h.mass - mass) <= 2.0 for h in hits)
    expected = int(np.sum(np.abs(library.masses - mass) <= 2.0))
    assert len(hits) == min(50, expected)
    # an explicit mass far from everything leaves nothing
    assert library.search([query], k=5, encoder=FakeEncoder(), mass_tolerance=0.5,
                          query_masses=[5000.0])[0] == []


def test_min_score(library, spectra):
    hits = library.search([spectra[3]], k=20, encoder=FakeEncoder(), min_score=0.9)[0]
    assert hits and all(h.score >= 0.9 for h in hits)


def test_resume_after_interruption(spectra, tmp_path):
    out = tmp_path / "lib"
    failing = FakeEncoder(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        Library.build(spectra, out, failing, chunk_size=64, show_progress=False)
    partial = json.loads((out / "manifest.json").read_text())
    assert partial["count"] == 128 and not partial["complete"]
    with pytest.raises(Llm4msError, match="not complete"):
        Library.load(out)
    resumed_encoder = FakeEncoder()
    resumed = Library.build(spectra, out, resumed_encoder, chunk_size=64, show_progress=False)
    assert resumed_encoder.encoded == 300 - 128  # nothing embedded twice
    fresh = Library.build(spectra, tmp_path / "fresh", FakeEncoder(), chunk_size=64, show_progress=False)
    assert np.array_equal(np.asarray(resumed.embeddings), np.asarray(fresh.embeddings))
    assert [resumed.metadata_row(i)["id"] for i in range(300)] == [s.id for s in spectra]
    # a complete library is not rebuilt
    again = FakeEncoder()
    Library.build(spectra, out, again, show_progress=False)
    assert again.encoded == 0


@pytest.mark.parametrize("kind", ["flat", "flat16", "sq8", "ivf", "hnsw"])
def test_index_kinds_find_self(library, spectra, kind):
    spec = IndexSpec(kind=kind, nlist=4, nprobe=4) if kind == "ivf" else IndexSpec(kind=kind)
    library.build_index(spec)
    try:
        hits = library.search(spectra[:20], k=3, encoder=FakeEncoder())
        top1 = [h[0].library_index for h in hits]
        assert sum(t == i for i, t in enumerate(top1)) >= 19
    finally:
        library.build_index("flat")


def test_hit_writers(library, spectra, tmp_path):
    results = library.search(spectra[:2], k=3, encoder=FakeEncoder())
    assert write_hits(results, tmp_path / "h.csv") == 6
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].startswith("query_index,query_id,query_name,rank,score,library_index,id,name,inchikey")
    assert len(lines) == 7
    write_hits(results, tmp_path / "h.tsv")
    assert "\t" in (tmp_path / "h.tsv").read_text().splitlines()[1]
    write_hits(results, tmp_path / "h.json")
    data = json.loads((tmp_path / "h.json").read_text())
    assert len(data["hits"]) == 6 and data["hits"][0]["rank"] == 1
    with pytest.raises(Llm4msError, match="unknown output format"):
        write_hits(results, tmp_path / "h.xlsx")
    table = format_hit_table(results)
    assert "compound 0" in table and "Query 2" in table


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_rerank_orders_by_classic_score(library, spectra):
    from llm4ms.similarity import scores

    query = spectra[7]
    hits = library.search([query], k=5, encoder=FakeEncoder(), rerank="cosine_sqrt", rerank_depth=40)[0]
    assert hits[0].library_index == 7 and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    wide = library.search([query], k=40, encoder=FakeEncoder())[0]
    direct = scores("cosine_sqrt", query, [library.spectrum(h.library_index) for h in wide])
    assert [h.score for h in hits] == pytest.approx(sorted(direct, reverse=True)[:5], abs=1e-6)
    wcs = library.search([query], k=3, encoder=FakeEncoder(), rerank="wcs", min_score=0.999)[0]
    assert [h.library_index for h in wcs] == [7]
    with pytest.raises(Llm4msError, match="unknown similarity"):
        library.search([query], encoder=FakeEncoder(), rerank="nope")


def test_library_package_exports_its_public_names():
    import importlib

    import llm4ms.library as package

    assert sorted(package.__all__) == sorted(package._EXPORTS)
    for name in package.__all__:  # each name is its owner module's own object
        assert getattr(package, name) is getattr(importlib.import_module(package._EXPORTS[name]), name)
    assert package.Library is Library
