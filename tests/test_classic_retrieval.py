"""Classic scores from a library's stored arrays, the approximate classic index of large libraries and its cache,
and the structure fingerprints a library keeps for the re-ranker."""
from __future__ import annotations

import json

import numpy as np
import pytest

from llm4ms.library.classic_retrieval import ApproximateClassicIndex, cache_key, peak_matrix
from llm4ms.similarity.classic import weighted_matrix, weighted_matrix_from_peaks
from llm4ms.similarity.named import ClassicIndex, scores
from llm4ms.spectrum import Spectrum


def _reference_row(mz: np.ndarray, inten: np.ndarray, mz_power: float, intensity_power: float) -> dict[int, float]:
    """The classic weight vector written the slow, obvious way: a dict of nominal bins."""
    best: dict[int, float] = {}
    for m, i in zip(mz, inten):
        if np.isfinite(m) and np.isfinite(i) and i > 0 and 0 <= np.floor(m + 0.5) <= 1000:
            b = int(np.floor(m + 0.5))
            best[b] = max(best.get(b, 0.0), float(i))
    if not best:
        return {}
    top = max(best.values())
    w = {b: (b ** mz_power if b or mz_power == 0 else 0.0) * (i / top) ** intensity_power for b, i in best.items()}
    norm = np.sqrt(sum(v * v for v in w.values()))
    return {b: v / norm for b, v in w.items()} if norm > 0 else w


def _messy(n: int, seed: int = 0) -> list[Spectrum]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 30))
        mz = np.round(rng.uniform(-2, 1003, k), int(rng.integers(0, 3)))
        inten = rng.uniform(0, 100, k)
        if k > 4:
            inten[0], mz[2] = 0.0, mz[1]  # a zero peak and two peaks in one bin
            if i % 5 == 0:
                mz[3] = np.nan
        out.append(Spectrum(mz, inten, {}))
    return out


@pytest.mark.parametrize("powers", [(0.0, 0.5), (3.0, 0.6), (0.0, 1.0)])
def test_vectorised_weights_match_the_obvious_definition(powers):
    spectra = _messy(120)
    matrix = weighted_matrix(spectra, *powers).toarray()
    for row, s in zip(matrix, spectra):
        expected = _reference_row(s.mz, s.intensities, *powers)
        assert sorted(np.flatnonzero(row).tolist()) == sorted(b for b, v in expected.items() if v != 0)
        for b, v in expected.items():
            assert row[b] == pytest.approx(v, rel=1e-6, abs=1e-7)
    offsets = np.concatenate([[0], np.cumsum([len(s.mz) for s in spectra])])
    again = weighted_matrix_from_peaks(offsets, np.concatenate([s.mz for s in spectra]),
                                       np.concatenate([s.intensities for s in spectra]), *powers)
    assert (again != weighted_matrix(spectra, *powers)).nnz == 0


def _peaky(n: int, seed: int) -> list[Spectrum]:
    """Spectra built from a few shared fragment patterns, so neighbours exist (m/z <= 200)."""
    rng = np.random.default_rng(seed)
    patterns = [rng.choice(np.arange(20, 200), 12, replace=False) for _ in range(40)]
    out = []
    for _ in range(n):
        mz = np.unique(np.concatenate([patterns[rng.integers(40)][:8], rng.integers(20, 200, 4)])).astype(float)
        out.append(Spectrum(mz, rng.uniform(1, 100, mz.size), {}))
    return out


def test_exhaustive_top_in_threaded_row_parts_equals_one_part():
    library, queries = _peaky(900, 5), _peaky(30, 6)
    for name in ("cosine_sqrt", "wcs"):
        index = ClassicIndex(name, library)
        single = index.top(queries, 40, threads=1)
        assert (index.top(queries, 40, threads=3, block=7) == single).all()
        assert (index.top(queries, 500, threads=4)[:, :40] == single).all()  # parts smaller than n
        for query, row in zip(queries[:5], single):
            s = scores(name, query, library)
            assert np.allclose(s[row], np.sort(s)[::-1][:40], atol=1e-7)


def test_approximate_index_finds_the_exact_top_and_orders_by_the_exact_score(tmp_path):
    library, queries = _peaky(3000, 0), _peaky(40, 1)
    exact = ClassicIndex("cosine_sqrt", library)
    assert ApproximateClassicIndex.build(exact, dim=32, sample=2000).nprobe == 32  # default: >= 32 lists
    approx = ApproximateClassicIndex.build(exact, dim=192, sample=3000, nprobe=1000)  # every direction and list
    assert len(approx) == 3000
    got, want = approx.top(queries, 50), exact.top(queries, 10)
    recall = np.mean([len(set(w) & set(g)) / 10 for w, g in zip(want, got)])
    assert recall >= 0.98  # only the 8-bit codes approximate here
    for query, row in zip(queries, got):  # candidates ordered by the exact score
        s = scores("cosine_sqrt", query, [library[i] for i in row])
        assert np.all(np.diff(s) <= 1e-7)
    key = "k1"
    approx.save(tmp_path / "cache", key)
    again = ApproximateClassicIndex.load(exact, tmp_path / "cache", key)
    assert again is not None and (again.top(queries, 50) == got).all()
    assert ApproximateClassicIndex.load(exact, tmp_path / "cache", "another library") is None
    (tmp_path / "cache" / "index.faiss").write_bytes(b"garbled")
    assert ApproximateClassicIndex.load(exact, tmp_path / "cache", key) is None


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    from llm4ms.library import Library
    from llm4ms.model import SpectrumEncoder
    from llm4ms.model.peak_model import build_peak_model

    root = tmp_path_factory.mktemp("classic")
    build_peak_model(root / "model", max_mz=300, hidden_size=32, num_layers=1, heads=2, intermediate_size=64, seed=1)
    encoder = SpectrumEncoder.from_pretrained(root / "model")
    smiles = ["CCO", "c1ccccc1", "CC(=O)O", "not a smiles", "CCN"]
    spectra = [s.copy(metadata={"smiles": smiles[i % 5], "prediction_confidence": 0.9})
               for i, s in enumerate(_peaky(1200, 2))]
    return Library.build(spectra, root / "lib", encoder, show_progress=False), encoder, spectra


def test_library_scores_candidates_from_its_stored_arrays(small_library):
    library, _, spectra = small_library
    query = _peaky(1, 3)[0]
    idx = np.array([5, 0, 1199, 5, 17])
    offsets, mz, inten = library._files.gathered_peaks(idx)
    for j, i in enumerate(idx):
        np.testing.assert_array_equal(mz[offsets[j]:offsets[j + 1]], library.peaks(i)[0])
    for name in ("cosine_sqrt", "wcs", "entropy"):
        np.testing.assert_allclose(library._classic_fn(name)(query, idx),
                                   scores(name, query, [library._stored(i) for i in idx]), rtol=1e-6)
    matrix = peak_matrix(library._files, "cosine_sqrt", block=500).matrix
    assert (matrix != weighted_matrix([library._stored(i) for i in range(len(library))], 0.0, 0.5)).nnz == 0


def test_approximate_classic_retrieval_on_request_kept_beside_the_library(small_library):
    from dataclasses import replace

    from llm4ms.evaluate.embedding_scorer import EncoderScorer
    from llm4ms.ranking import Ranking, resolve_ranking

    library, encoder, spectra = small_library
    queries = _peaky(12, 4)
    ranking = Ranking(fusion=0.3, depth=20, classic_depth=100)
    exhaustive = library.search(queries, k=5, encoder=encoder, ranking=ranking)
    assert isinstance(library.classic_index("cosine_sqrt"), ClassicIndex)  # the default: exhaustive
    assert not (library.folder / "classic_cosine_sqrt").exists()
    fast = resolve_ranking(ranking, classic_approximate=True)
    assert fast.classic_approximate and "(approximate)" in fast.describe()
    assert Ranking.from_dict(fast.to_dict()) == fast
    searched = library.search(queries, k=5, encoder=encoder, ranking=fast)
    approx = library.classic_index("cosine_sqrt", approximate=True)
    assert isinstance(approx, ApproximateClassicIndex)
    assert approx.exact is library.classic_index("cosine_sqrt")  # one exact matrix for both
    cache = library.folder / "classic_cosine_sqrt"
    assert json.loads((cache / "key.json").read_text())["key"] == cache_key(library.manifest, "cosine_sqrt")
    same = np.mean([[h.library_index for h in a] == [h.library_index for h in b]
                    for a, b in zip(searched, exhaustive)])
    assert same >= 0.9  # approximate retrieval; on this small library nearly always the same list
    built_at = (cache / "index.faiss").stat().st_mtime_ns
    library._classic_indexes.clear()
    assert isinstance(library.classic_index("cosine_sqrt", approximate=True), ApproximateClassicIndex)
    assert (cache / "index.faiss").stat().st_mtime_ns == built_at  # read back, not rebuilt
    scorer = EncoderScorer(encoder=encoder, ranking=replace(fast, depth=20)).fit(spectra)
    idx, _ = scorer.search(queries, k=5)  # evaluation builds its own approximate index the same way
    assert np.mean([row[row >= 0].tolist() == [h.library_index for h in hits]
                    for row, hits in zip(idx, searched)]) >= 0.9


def _mapped(array) -> bool:
    """True when `array` is a view of a memory-mapped file (not a copy in memory)."""
    import mmap

    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


def test_exact_matrix_kept_beside_a_large_library_is_mapped_not_rebuilt(small_library, monkeypatch):
    import shutil

    import llm4ms.library.classic_retrieval as classic_retrieval_module
    from llm4ms.library import structure_cache
    from llm4ms.ranking import Ranking
    from llm4ms.library.classic_retrieval import (EXACT_RECORD, classic_retrieval, load_exact, prepare_exact,
                                                  save_exact)
    from llm4ms.similarity.named import CsrProduct

    library, encoder, _ = small_library
    cache, key = library.folder / "classic_cosine_sqrt", cache_key(library.manifest, "cosine_sqrt")
    built = peak_matrix(library._files, "cosine_sqrt")
    try:
        assert load_exact(cache, key, "cosine_sqrt") is None
        assert prepare_exact(library.folder, library.manifest, library._files, "cosine_sqrt")
        written = (cache / "exact_data.npy").stat().st_mtime_ns
        assert prepare_exact(library.folder, library.manifest, library._files, "cosine_sqrt")
        assert (cache / "exact_data.npy").stat().st_mtime_ns == written  # kept: found, not rebuilt
        mapped = classic_retrieval(library.folder, library.manifest, library._files, "cosine_sqrt")
        assert _mapped(mapped.matrix.data) and (mapped.matrix != built.matrix).nnz == 0
        queries = _peaky(9, 7)
        expected = built.top(queries, 30, threads=1)
        assert (mapped.top(queries, 30, threads=3) == expected).all()  # row parts are views of the mapped arrays
        part = CsrProduct(mapped.matrix, 400, 900)
        assert _mapped(part.data) and _mapped(part.indices)  # a view of the mapped arrays, not a copy
        q = np.random.default_rng(0).random((built.matrix.shape[1], 3)).astype(np.float32)
        np.testing.assert_allclose(part @ q, built.matrix[400:900] @ q, rtol=1e-5, atol=1e-6)
        assert load_exact(cache, "another library", "cosine_sqrt") is None
        record = json.loads((cache / EXACT_RECORD).read_text())
        (cache / EXACT_RECORD).write_text(json.dumps({**record, "nnz": record["nnz"] - 1}))
        assert load_exact(cache, key, "cosine_sqrt") is None  # arrays that do not match their record: not used
        (cache / EXACT_RECORD).unlink()
        assert load_exact(cache, key, "cosine_sqrt") is None  # no record = an unfinished cache
        save_exact(built, cache, key)
        assert load_exact(cache, key, "cosine_sqrt") is not None
        # through `llm4ms index`'s door: a large library whose model retrieves by the classic score
        encoder.config["ranking"] = Ranking(fusion=0.3, depth=20, classic_depth=100).to_dict()
        monkeypatch.setattr(structure_cache, "KEEP_ABOVE", 1000)
        monkeypatch.setattr(classic_retrieval_module, "MATRIX_KEEP_ABOVE", 1000)
        shutil.rmtree(cache)
        assert library.prepare_search(encoder) == ["exact cosine_sqrt matrix"]
        assert load_exact(cache, key, "cosine_sqrt") is not None
        shutil.rmtree(cache)

        def full_disk(*args):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(classic_retrieval_module, "save_exact", full_disk)
        assert library.prepare_search(encoder) == []  # logged, not kept; searches build the matrix as before
        assert not prepare_exact(library.folder, library.manifest, library._files, "cosine_sqrt")
    finally:
        encoder.config.pop("ranking", None)
        shutil.rmtree(cache, ignore_errors=True)


@pytest.mark.parametrize("processes", [1, 2])
def test_structure_fingerprints_kept_beside_the_library(small_library, processes, monkeypatch):
    from llm4ms.fingerprint_model import FingerprintConfig, FingerprintModel
    from llm4ms.library import structure_cache
    from llm4ms.library.structure_cache import build_structure_bits, load_structure_bits

    library, _, spectra = small_library
    config = FingerprintConfig(max_mz=300, max_loss=50, morgan_bits=128, hidden=8)
    assert load_structure_bits(library.folder, library.manifest, config) is None
    monkeypatch.setattr(structure_cache, "PART", 500)
    smiles = [s.get("smiles") for s in spectra]
    parts = library.folder / "structures" / f"parts-{structure_cache.cache_key(library.manifest, config)[:16]}"
    parts.mkdir(parents=True, exist_ok=True)
    width = (config.n_outputs + 7) // 8
    np.savez(parts / f"{500:012d}.npz", bits=np.full((500, width), 255, np.uint8), parsed=np.ones(500, bool))
    build_structure_bits(library.folder, library.manifest, smiles, config, processes=processes)
    kept = load_structure_bits(library.folder, library.manifest, config)
    assert not parts.exists()
    idx = np.array([0, 3, 7, 700, 1199])
    bits, parsed = kept(idx)
    assert bits[3].all()  # the part an "interrupted run" left was kept, not recomputed
    model = FingerprintModel(config, None)
    want, ok = model.fingerprints([smiles[i] for i in idx])
    assert parsed.tolist() == ok.tolist() == [True, False, True, True, True]
    np.testing.assert_array_equal(bits[[0, 1, 2, 4]], want[[0, 1, 2, 4]])
    other = FingerprintConfig(max_mz=300, max_loss=50, morgan_bits=256, hidden=8)
    assert load_structure_bits(library.folder, library.manifest, other) is None  # other settings: not these bits
    import shutil

    shutil.rmtree(library.folder / "structures")


def test_embed_keeps_the_structure_fingerprints_a_reranking_model_reads(tmp_path, monkeypatch):
    """``llm4ms embed`` prepares the searches of a library above `structure_cache.KEEP_ABOVE` (the re-ranker's
    structure bits, read instead of asking RDKit per candidate); ``--no-prepare`` leaves that to ``llm4ms index``."""
    from llm4ms.cli import main
    from llm4ms.fingerprint_model import FingerprintConfig
    from llm4ms.io.msp import write_msp
    from llm4ms.library import Library, structure_cache
    from llm4ms.model import SpectrumEncoder
    from llm4ms.model.peak_model import build_peak_model
    from llm4ms.ranking import Ranking, store_ranking

    build_peak_model(tmp_path / "model", max_mz=300, hidden_size=32, num_layers=1, heads=2, intermediate_size=64,
                     seed=1)
    encoder = SpectrumEncoder.from_pretrained(tmp_path / "model")
    store_ranking(encoder, tmp_path / "model", Ranking(fusion=0.3, classic_depth=20, reranker="bundled"), "t", "-")
    smiles = ["CCO", "c1ccccc1", "CC(=O)O", "not a smiles", "CCN"]
    write_msp([s.copy(metadata={"smiles": smiles[i % 5], "name": f"s{i}", "inchikey": f"{i:014d}-UHFFFAOYSA-N"})
               for i, s in enumerate(_peaky(60, 4))], tmp_path / "lib.msp")
    monkeypatch.setattr(structure_cache, "KEEP_ABOVE", 50)
    config = FingerprintConfig()  # the bundled re-ranker's
    for name, extra in (("plain", ["--no-prepare"]), ("prepared", [])):
        args = ["embed", "--spectra", str(tmp_path / "lib.msp"), "--out", str(tmp_path / name), "--model",
                str(tmp_path / "model"), "--no-progress"]
        assert main(args + extra) == 0
        library = Library.load(tmp_path / name)
        kept = structure_cache.load_structure_bits(library.folder, library.manifest, config)
        assert (kept is None) == (name == "plain")
    bits, parsed = kept(np.arange(5))
    assert parsed.tolist() == [True, True, True, False, True] and bits[0].any() and not bits[3].any()


def test_top_per_column_is_exact_with_ties_and_zeros():
    from llm4ms.similarity.named import top_per_column

    rng = np.random.default_rng(3)
    scores = np.round(rng.random((5000, 9)), 2).astype(np.float32)  # many ties
    scores[:, 1] = 0.0                                              # a query sharing no peak with the library
    scores[rng.random(5000) < 0.995, 2] = 0.0                       # few non-zero rows: the n-th best is a tie at 0
    scores[:, 3] = 0.5                                              # all tied
    for n, step in ((40, 64), (300, 16), (1, 64), (5000, 64), (7000, 8)):
        idx, values = top_per_column(scores, n, step=step)
        for j in range(scores.shape[1]):
            ref = np.lexsort((np.arange(len(scores)), -scores[:, j]))[:n]
            assert np.array_equal(idx[j], ref), (n, step, j)
            assert np.array_equal(values[j], scores[ref, j])


def test_csr_product_agrees_with_scipys_and_falls_back_without_float32():
    from scipy import sparse

    from llm4ms.similarity.named import CsrProduct

    rng = np.random.default_rng(4)
    matrix = sparse.random(3000, 400, density=0.05, format="csr", random_state=5, dtype=np.float32)
    q = rng.random((400, 7)).astype(np.float32)
    np.testing.assert_allclose(CsrProduct(matrix) @ q, matrix @ q, rtol=1e-5, atol=1e-6)
    assert (CsrProduct(matrix) @ q).dtype == np.float32
    np.testing.assert_allclose(CsrProduct(matrix, 1000, 2500) @ q, matrix[1000:2500] @ q, rtol=1e-5, atol=1e-6)
    doubles = matrix.astype(np.float64)
    fallback = CsrProduct(doubles)
    assert fallback._torch is None  # MKL's path is float32 only: scipy's product, to the last digit
    assert np.array_equal(fallback @ q, np.asarray(doubles @ q, dtype=np.float32))
    assert np.array_equal(CsrProduct(doubles, 7, 2000) @ q, np.asarray(doubles[7:2000] @ q, dtype=np.float32))
    empty = sparse.csr_matrix((5, 400), dtype=np.float32)
    assert (CsrProduct(empty) @ q).shape == (5, 7) and not (CsrProduct(empty) @ q).any()


def test_high_rows_hold_the_highest_values_with_ties_and_short_arrays():
    from llm4ms.ranking import high_rows

    rng = np.random.default_rng(6)
    for values in (rng.random(100_000).astype(np.float32),
                   np.round(rng.random(50_000), 2),                          # many ties
                   np.where(rng.random(50_000) < 0.999, 0.0, rng.random(50_000))):  # nearly all zero
        for count, least in ((2000, 200), (640, 64), (64, 64)):
            rows = high_rows(values, count, least)
            assert rows.size >= least and np.unique(rows).size == rows.size
            # a threshold's rows: every row at least as high as the lowest kept one is kept
            assert rows.size == np.count_nonzero(values >= values[rows].min())
    assert high_rows(np.arange(10.0), 2000, 200).tolist() == list(range(10))  # short: every row
