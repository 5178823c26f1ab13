"""MS/MS library search: stored precursor/adduct/ion mode, precursor and ion-mode filters, hit rows, CLI and web."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from llm4ms.errors import ConfigError
from llm4ms.io import read_spectra, write_mgf
from llm4ms.library import Library
from llm4ms.query_checks import InvalidSetting
from llm4ms.spectrum import Spectrum

from _fakes import FakeEncoder, random_spectra

ADDUCTS = ("[M+H]+", "[M-H]-", "[M+Na]+", None)


def msms_spectra(n: int = 80, seed: int = 5) -> list[Spectrum]:
    """Random spectra with high-resolution m/z; 3 of 4 are MS/MS (precursor, adduct), every 4th EI-like."""
    out = []
    for i, s in enumerate(random_spectra(n, seed=seed)):
        mz = s.mz + np.round(np.linspace(0.0012, 0.0987, s.n_peaks), 5)
        meta = dict(s.metadata)
        adduct = ADDUCTS[i % 4]
        if adduct is not None:
            meta.update(precursor_mz=round(200.0 + 3.1 * i + 0.00137 * i, 5), precursor_type=adduct,
                        collision_energy=20.0)
        out.append(Spectrum(mz, s.intensities, meta))
    return out


@pytest.fixture(scope="module")
def spectra():
    return msms_spectra()


@pytest.fixture(scope="module")
def library(spectra, tmp_path_factory):
    return Library.build(spectra, tmp_path_factory.mktemp("msmslib") / "lib", FakeEncoder(), show_progress=False)


def test_library_stores_precursor_adduct_and_ion_mode(library, spectra):
    row = library.metadata_row(1)
    assert row["precursor_mz"] == spectra[1].precursor_mz and row["precursor_type"] == "[M-H]-"
    assert row["ion_mode"] == "negative"  # implied by the adduct: the record gave none
    assert library.metadata_row(3)["precursor_type"] is None and library.metadata_row(3)["ion_mode"] is None
    s = library.spectrum(2)
    assert np.allclose(s.mz, spectra[2].mz, rtol=1e-7, atol=0)  # stored float32: ~0.1 ppm, never nominal
    assert not np.allclose(s.mz, np.round(s.mz))


def test_precursor_filter_ppm_and_da(library, spectra):
    query = spectra[8]  # [M+H]+, precursor 224.81096
    hits = library.search([query], k=10, encoder=FakeEncoder(), precursor_tolerance="10ppm")[0]
    assert [h.library_index for h in hits] == [8]
    assert hits[0].precursor_mz == query.precursor_mz and hits[0].adduct == "[M+H]+"
    wide = library.search([query], k=10, encoder=FakeEncoder(), precursor_tolerance="3.2Da")[0]
    assert sorted(h.library_index for h in wide) == [8, 9]  # 9 is 3.10137 Da away; 7 is EI, 10 farther
    assert all(abs(h.precursor_mz - query.precursor_mz) <= 3.2 for h in wide)
    narrow = library.search([query], k=10, encoder=FakeEncoder(), precursor_tolerance=(3.0, "Da"))[0]
    assert [h.library_index for h in narrow] == [8]
    # a query without a precursor is not filtered; analogue search (default) finds every kind of spectrum
    ei_query = spectra[3]
    assert len(library.search([ei_query], k=10, encoder=FakeEncoder(), precursor_tolerance="10ppm")[0]) == 10
    analogue = library.search([query], k=20, encoder=FakeEncoder())[0]
    assert analogue[0].library_index == 8 and {h.adduct for h in analogue} > {"[M+H]+"}


def test_ion_mode_filter_and_combination(library, spectra):
    queries = spectra[:6]
    results = library.search(queries, k=15, encoder=FakeEncoder(), ion_mode="negative")
    for hits in results:
        assert len(hits) == 15 and {h.adduct for h in hits} == {"[M-H]-"}
    positive = library.search(queries, k=100, encoder=FakeEncoder(), ion_mode="Positive")
    assert all({h.adduct for h in hits} == {"[M+H]+", "[M+Na]+"} for hits in positive)
    assert len(positive[0]) == 40
    both = library.search([spectra[9]], k=10, encoder=FakeEncoder(), precursor_tolerance="3.2Da", ion_mode="positive")
    assert sorted(h.library_index for h in both[0]) == [8, 10]
    assert library.search([spectra[1]], k=5, encoder=FakeEncoder(), precursor_tolerance="10ppm",
                          ion_mode="positive")[0] == []
    # the exact search among filtered candidates orders as the index does
    plain = library.search(queries[:1], k=5, encoder=FakeEncoder())[0]
    assert plain[0].score == pytest.approx(positive[0][0].score, abs=1e-6)


def test_bad_msms_settings_are_one_line(library, spectra):
    with pytest.raises(InvalidSetting, match="precursor_tolerance must be a number >= 0 with its unit"):
        library.search(spectra[:1], encoder=FakeEncoder(), precursor_tolerance=10)
    with pytest.raises(InvalidSetting, match="ion_mode must be positive or negative"):
        library.search(spectra[:1], encoder=FakeEncoder(), ion_mode="both")


def test_ei_hits_have_empty_precursor_and_adduct(tmp_path):
    spectra = random_spectra(20, seed=9)
    library = Library.build(spectra, tmp_path / "ei", FakeEncoder(), show_progress=False)
    hit = library.search(spectra[:1], k=1, encoder=FakeEncoder())[0][0]
    assert hit.precursor_mz is None and hit.adduct is None
    from llm4ms.report import format_hit_table, write_hits

    write_hits([[hit]], tmp_path / "h.csv")
    row = next(csv.DictReader(open(tmp_path / "h.csv")))
    assert row["precursor_mz"] == "" and row["adduct"] == ""
    assert "adduct" not in format_hit_table([[hit]])


def test_library_written_before_the_msms_columns_still_loads(spectra, tmp_path):
    import pyarrow.parquet as pq

    from llm4ms.library.manifest import Manifest, file_record

    folder = tmp_path / "old"
    Library.build(spectra[:12], folder, FakeEncoder(), show_progress=False)
    table = pq.read_table(folder / "metadata.parquet").drop_columns(["precursor_type", "ion_mode"])
    pq.write_table(table, folder / "metadata.parquet")
    manifest = Manifest.load(folder)
    manifest.files["metadata.parquet"] = file_record(folder / "metadata.parquet")
    manifest.save(folder)
    old = Library.load(folder)
    row = old.metadata_row(1)
    assert row["precursor_type"] is None and row["ion_mode"] is None and row["precursor_mz"] is not None
    hits = old.search(spectra[1:2], k=3, encoder=FakeEncoder(), precursor_tolerance="10ppm")[0]
    assert [h.library_index for h in hits] == [1] and hits[0].adduct is None
    assert old.search(spectra[1:2], k=3, encoder=FakeEncoder(), ion_mode="negative")[0] == []


# ---- command line ------------------------------------------------------------------------------------------
@pytest.fixture()
def cli_setup(spectra, tmp_path, monkeypatch):
    import llm4ms.defaults as defaults

    write_mgf(spectra, tmp_path / "lib.mgf")
    write_mgf(spectra[8:10], tmp_path / "q.mgf")
    monkeypatch.setattr(defaults, "load_encoder", lambda *args, **kwargs: FakeEncoder())
    monkeypatch.setattr(defaults, "open_library", lambda library, model: (Library.load(library), FakeEncoder()))
    return tmp_path


def test_cli_embed_mgf_and_search_with_precursor_and_ion_mode(cli_setup, spectra, capsys):
    from llm4ms.cli import main

    root = cli_setup
    assert main(["embed", "--spectra", str(root / "lib.mgf"), "--out", str(root / "lib"), "--no-progress"]) == 0
    library = Library.load(root / "lib")
    assert len(library) == 80 and library.metadata_row(9)["precursor_type"] == "[M-H]-"
    assert library.spectrum(9).mz.tolist() == pytest.approx(spectra[9].mz.tolist(), rel=1e-7, abs=0)
    for tolerance in ("10ppm", "0.01Da"):
        assert main(["search", "--query", str(root / "q.mgf"), "--library", str(root / "lib"), "-k", "5",
                     "--precursor-tolerance", tolerance, "--out", str(root / "h.csv")]) == 0
        rows = list(csv.DictReader(open(root / "h.csv")))
        assert [(r["query_index"], r["library_index"]) for r in rows] == [("0", "8"), ("1", "9")]
        assert rows[0]["adduct"] == "[M+H]+" and float(rows[1]["precursor_mz"]) == spectra[9].precursor_mz
    assert main(["search", "--query", str(root / "q.mgf"), "--library", str(root / "lib"), "-k", "4",
                 "--ion-mode", "negative", "--out", str(root / "h.json")]) == 0
    hits = json.loads((root / "h.json").read_text())["hits"]
    assert len(hits) == 8 and {h["adduct"] for h in hits} == {"[M-H]-"}
    capsys.readouterr()
    assert main(["search", "--query", str(root / "q.mgf"), "--library", str(root / "lib"), "-k", "2",
                 "--precursor-tolerance", "5 ppm"]) == 0
    table = capsys.readouterr().out
    assert "precursor" in table and "[M+H]+" in table


@pytest.mark.parametrize("flags, message", [
    (["--precursor-tolerance", "10"], "--precursor-tolerance must be a number >= 0 with its unit, e.g. 10ppm or "
                                      "0.01Da (got '10')"),
    (["--precursor-tolerance", "ten ppm"], "--precursor-tolerance must be a number >= 0 with its unit"),
    (["--precursor-tolerance", "5mDa"], "unknown unit 'mDa'"),
    (["--ion-mode", "pos"], "--ion-mode must be positive or negative (got 'pos')"),
])
def test_cli_bad_msms_flags_are_one_line_exit_2(cli_setup, capsys, flags, message):
    from llm4ms.cli import main

    root = cli_setup
    assert main(["search", "--query", str(root / "q.mgf"), "--library", str(root / "nowhere")] + flags) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("llm4ms search: error: ") and message in err and "\n" not in err


# ---- web ---------------------------------------------------------------------------------------------------
def test_web_hits_show_precursor_and_adduct(library, spectra):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from llm4ms.web import create_app
    from tests._web_helpers import ServerThread

    app = create_app(library, FakeEncoder(), max_spectra=5, max_k=20)
    query = spectra[8]
    body = {"spectra": [{"peaks": [[float(m), float(i)] for m, i in zip(query.mz, query.intensities)],
                         "name": "q", "metadata": {"precursor_mz": query.precursor_mz, "precursor_type": "[M+H]+"}}],
            "k": 5}
    with ServerThread(app) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        answer = client.post("/api/search", json=body).json()
        top = answer["queries"][0]["hits"][0]
        assert top["library_index"] == 8 and top["precursor_mz"] == query.precursor_mz and top["adduct"] == "[M+H]+"
        assert answer["queries"][0]["precursor_mz"] == query.precursor_mz and answer["queries"][0]["adduct"] == "[M+H]+"
        filtered = client.post("/api/search", json={**body, "precursor_tolerance": "10ppm"}).json()
        assert [h["library_index"] for h in filtered["queries"][0]["hits"]] == [8]
        assert filtered["precursor_tolerance"] == "10ppm"
        form = client.post("/api/search", data={"text": "BEGIN IONS\nPEPMASS=224.81096\n100.5 10\nEND IONS\n",
                                                "precursor_tolerance": "10ppm", "ion_mode": "positive"})
        assert form.status_code == 200 and [h["library_index"] for h in form.json()["queries"][0]["hits"]] == [8]
        bad = client.post("/api/search", json={**body, "precursor_tolerance": "10"})
        assert bad.status_code == 422 and "precursor_tolerance must be" in bad.json()["error"]
        csv_text = client.post("/api/search.csv", json=body).text
        assert csv_text.splitlines()[0].endswith(",mass,precursor_mz,adduct")
        js = client.get("/static/app.js").text
        assert "precursor m/z" in js and "adduct" in js


# ---- the shared MassBank MS/MS sample ---------------------------------------------------------------------
def test_massbank_msms_sample_read_clean_and_search(shared_data, tmp_path):
    pytest.importorskip("matchms")
    from llm4ms.msms import clean_msms

    path = shared_data / "massbank_msms" / "massbank_msms_ccby_sample.msp"
    if not path.is_file():
        pytest.skip(f"{path} not in the shared data folder")
    spectra = list(read_spectra(path))[:200]
    assert all(s.get("ms_level") == 2 and s.precursor_mz is not None and s.ion_mode for s in spectra)
    assert any(not float(m).is_integer() for s in spectra for m in s.mz)
    cleaned = [c for c in (clean_msms(s) for s in spectra) if c is not None]
    assert len(cleaned) > 150
    assert all(c.mz.max() <= c.precursor_mz - 1.6 for c in cleaned)
    library = Library.build(cleaned, tmp_path / "lib", FakeEncoder(max_mz=2000), show_progress=False)
    hits = library.search(cleaned[:20], k=3, encoder=FakeEncoder(max_mz=2000), precursor_tolerance="5ppm")
    assert [h[0].library_index for h in hits] == list(range(20))
    assert all(h[0].adduct in ("[M+H]+", "[M-H]-") for h in hits)
    with pytest.raises(ConfigError):
        library.search(cleaned[:1], k=3, encoder=FakeEncoder(max_mz=2000), query_masses=[100.0])
