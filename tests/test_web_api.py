"""The web app's JSON API against a real uvicorn server on a loopback port (library + FakeEncoder)."""
from __future__ import annotations

import csv
import io
import re

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tests._fakes import FakeEncoder  # noqa: E402
from tests._web_helpers import SMILES, ServerThread, build_library, library_spectra, msp_text  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from llm4ms.web import create_app

    library = build_library(tmp_path_factory.mktemp("weblib") / "lib")
    app = create_app(library, FakeEncoder(), max_upload_mb=0.05, max_spectra=5, max_k=20)
    with ServerThread(app) as running:
        with httpx.Client(base_url=running.url, timeout=30) as client:
            yield client


def test_health_library_and_offline_docs(server):
    health = server.get("/api/health").json()
    assert health["status"] == "ok" and health["spectra"] == 60
    info = server.get("/api/library").json()
    assert info["library"]["spectra"] == 60
    assert info["library"]["model"]["identity"] == FakeEncoder().identity
    assert info["limits"] == {"max_upload_mb": 0.05, "max_spectra": 5, "max_k": 20}
    docs = server.get("/docs")
    assert docs.status_code == 200 and "/static/docs.js" in docs.text
    assert "cdn" not in docs.text.lower()
    spec = server.get("/openapi.json").json()
    assert {"/api/search", "/api/search.csv", "/api/mirror", "/api/structure/{library_index}.svg"} <= set(spec["paths"])
    content = spec["paths"]["/api/search"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    assert "SpectrumIn" in spec["components"]["schemas"]
    page = server.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text


def test_page_and_scripts_load_nothing_from_other_hosts(server):
    for path in ("/", "/docs", "/static/app.js", "/static/docs.js", "/static/style.css"):
        text = server.get(path).text
        hosts = set(re.findall(r"(?:https?:)?//([\w-]+(?:\.[\w-]+)+)", text))
        assert hosts <= {"www.w3.org"}, (path, hosts)  # the SVG namespace string is not a request


def test_search_upload_finds_each_query_itself(server):
    queries = library_spectra(60)[10:13]
    files = [("files", ("a.msp", msp_text(queries[:2]))), ("files", ("b.msp", msp_text(queries[2:])))]
    body = server.post("/api/search", files=files, data={"k": "4"}).json()
    assert [q["name"] for q in body["queries"]] == ["compound 10", "compound 11", "compound 12"]
    for q, expected in zip(body["queries"], (10, 11, 12)):
        assert len(q["hits"]) == 4
        top = q["hits"][0]
        assert top["library_index"] == expected and top["rank"] == 1
        assert top["score"] == pytest.approx(1.0, abs=1e-4)
        assert [h["rank"] for h in q["hits"]] == [1, 2, 3, 4]
        assert q["hits"][1]["score"] <= top["score"]
        assert len(q["peaks"]) == q["n_peaks"] == queries[expected - 10].n_peaks


def test_search_json_peaks_text_and_mass_filter(server):
    lib = library_spectra(60)
    target = lib[7]
    peaks = [[float(m), float(i)] for m, i in zip(target.mz, target.intensities)]
    body = server.post("/api/search", json={"spectra": [{"peaks": peaks, "name": "mine"}], "k": 3}).json()
    assert body["queries"][0]["name"] == "mine"
    assert body["queries"][0]["hits"][0]["library_index"] == 7
    pasted = "\n".join(f"{m:g}\t{i:.2f}" for m, i in peaks)
    body = server.post("/api/search", data={"text": pasted, "k": "2"}).json()
    assert body["queries"][0]["hits"][0]["library_index"] == 7
    # the mass filter keeps only hits within the tolerance of the given mass
    mass = lib[30].molecular_mass
    body = server.post("/api/search", json={"spectra": [{"peaks": peaks}], "k": 20, "mass": mass,
                                            "mass_tolerance": 0.01}).json()
    hits = body["queries"][0]["hits"]
    assert hits and all(abs(h["mass"] - mass) <= 0.01 for h in hits)
    assert 30 in [h["library_index"] for h in hits]


def test_mirror_and_mirror_svg(server):
    lib = library_spectra(60)
    query = lib[5]
    peaks = [[float(m), float(i)] for m, i in zip(query.mz, query.intensities)]
    data = server.post("/api/mirror", json={"query": {"peaks": peaks, "name": "q"}, "library_index": 5,
                                            "score": 0.99}).json()
    assert data["matched_peaks"] == query.n_peaks  # identical spectra: every peak matches
    assert all(data["reference"]["matched"]) and max(data["query"]["intensity"]) == 100.0
    assert data["reference"]["library_index"] == 5 and data["reference"]["name"] == "compound 5"
    other = server.post("/api/mirror", json={"query": {"peaks": peaks}, "library_index": 6}).json()
    assert other["matched_peaks"] < query.n_peaks
    svg = server.post("/api/mirror.svg", json={"query": {"peaks": peaks}, "library_index": 6})
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text


def test_structure_svg(server):
    ok = server.get("/api/structure/1.svg")
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in ok.text and ok.text.count("<path") > 3
    assert server.get("/api/structure/2.svg").text != ok.text
    missing = server.get(f"/api/structure/{len(SMILES) + 1}.svg")
    assert missing.status_code == 404 and "no SMILES" in missing.json()["error"]
    out = server.get("/api/structure/999.svg")
    assert out.status_code == 404 and "out of range" in out.json()["error"]


def test_csv_download_matches_json_hits(server):
    queries = library_spectra(60)[20:22]
    spectra = [{"peaks": [[float(m), float(i)] for m, i in zip(q.mz, q.intensities)], "name": q.name}
               for q in queries]
    response = server.post("/api/search.csv", json={"spectra": spectra, "k": 3})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 6
    assert [(r["query_name"], r["rank"], r["library_index"]) for r in rows if r["rank"] == "1"] == [
        ("compound 20", "1", "20"), ("compound 21", "1", "21")]
    as_json = server.post("/api/search", json={"spectra": spectra, "k": 3}).json()
    assert [r["library_index"] for r in rows] == [str(h["library_index"]) for q in as_json["queries"] for h in q["hits"]]


def test_uploads_pasted_text_and_csv_make_no_temporary_files(server, monkeypatch):
    """Uploads, pasted text and the CSV download are read and written in memory (`read_spectra_text`)."""
    import gzip
    import tempfile

    made = []

    def refuse(name):
        def call(*args, **kwargs):
            made.append(name)
            raise AssertionError(f"tempfile.{name} called")
        return call

    for name in ("TemporaryDirectory", "mkdtemp", "mkstemp", "NamedTemporaryFile", "TemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse(name))
    queries = library_spectra(60)[30:32]
    pasted = "\n".join(f"{m:g}\t{i:.3f}" for m, i in zip(queries[0].mz, queries[0].intensities))
    files = [("files", ("a.msp", msp_text(queries[:1]))),
             ("files", ("b.msp.gz", gzip.compress(msp_text(queries[1:]).encode("utf-16"))))]
    body = server.post("/api/search", files=files, data={"text": pasted, "k": "1"})
    assert body.status_code == 200, body.text
    assert [(q["name"], q["hits"][0]["library_index"]) for q in body.json()["queries"]] == [
        ("pasted", 30), ("compound 30", 30), ("compound 31", 31)]
    assert server.post("/api/search", json={"text": pasted, "k": 1}).json()["queries"][0]["name"] == "pasted"
    table = server.post("/api/search.csv", files=files, data={"k": "2"})
    assert table.status_code == 200 and len(list(csv.DictReader(io.StringIO(table.text)))) == 4
    bad = server.post("/api/search", files=[("files", ("bad.msp", "Name: x\nNum Peaks: 2\n41 10\n43 abc\n"))])
    assert bad.status_code == 400 and bad.json()["error"].startswith("bad.msp, record 1, line 4: ")
    assert made == []


def test_csv_download_is_what_the_cli_writes(server, tmp_path):
    from llm4ms.io import read_spectra_text
    from llm4ms.report import write_hits

    text = msp_text(library_spectra(60)[40:42])
    downloaded = server.post("/api/search.csv", files=[("files", ("q.msp", text))], data={"k": "3"}).text
    library = build_library(tmp_path / "lib")
    results = library.search(list(read_spectra_text(text, "msp")), k=3, encoder=FakeEncoder())
    write_hits(results, tmp_path / "hits.csv")
    assert downloaded == (tmp_path / "hits.csv").read_text(encoding="utf-8")


def test_openapi_request_bodies_are_the_validating_models(server):
    from llm4ms.io.formats import EXTENSIONS
    from llm4ms.web.app import MirrorRequest, SearchRequest, SearchUpload

    spec = server.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, expected in (("/api/search", {"application/json": SearchRequest, "multipart/form-data": SearchUpload}),
                           ("/api/search.csv", {"application/json": SearchRequest,
                                                "multipart/form-data": SearchUpload}),
                           ("/api/mirror", {"application/json": MirrorRequest})):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == set(expected)
        for ctype, model in expected.items():
            name = content[ctype]["schema"]["$ref"].rsplit("/", 1)[-1]
            own = model.model_json_schema(ref_template="#/components/schemas/{model}")
            own.pop("$defs", None)
            assert schemas[name] == own
    upload = schemas["SearchUpload"]["properties"]
    assert set(upload) == set(SearchUpload.model_fields) >= {"files", "text", "k", "mass", "mass_tolerance"}
    assert upload["files"]["type"] == "array" and ".jcamp" in upload["files"]["description"]
    assert server.get("/api/library").json()["formats"] == {k: list(v) for k, v in EXTENSIONS.items()}


@pytest.mark.parametrize("kwargs, status, fragment", [
    (dict(files=[("files", ("bad.msp", "Name: x\nNum Peaks: 2\n41 10\n43 abc\n"))]), 400,
     "bad.msp, record 1, line 4"),
    (dict(files=[("files", ("x.xyz", "41 10"))]), 400, "x.xyz: unknown spectrum file extension"),
    (dict(json={"spectra": [{"peaks": [[41, "a"]]}]}), 422, "spectra.0.peaks"),
    (dict(json={"spectra": [{"peaks": [[41, -3]]}]}), 400, "negative"),
    (dict(json={"spectra": [{"peaks": [[41, 0], [42, 0]]}]}), 400, "all intensities are zero"),
    (dict(json={"spectra": []}), 400, "no query spectra"),
    (dict(json={"spectra": [{"peaks": [[41, 1]]}], "k": 21}), 400, "k must be between 1 and 20"),
    (dict(json={"spectra": [{"peaks": [[41, 1]]}], "mass": 100}), 400, "mass tolerance"),
    (dict(json={"spectra": [{"peaks": [[41, 1]]}], "surprise": 1}), 422, "surprise"),
    (dict(content=b"{oops", headers={"content-type": "application/json"}), 400, "not valid JSON"),
    (dict(content=b"41 10", headers={"content-type": "text/plain"}), 400, "application/json or multipart"),
])
def test_bad_input_gives_4xx_json_error(server, kwargs, status, fragment):
    response = server.post("/api/search", **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error
    assert "Traceback" not in response.text


def test_limits_413(server):
    big = "41 10\n" * 20000  # about 120 kB > 0.05 MB
    too_large = server.post("/api/search", files=[("files", ("big.txt", big))])
    assert too_large.status_code == 413 and "too large" in too_large.json()["error"]

    def chunks():  # no Content-Length: the streamed bytes are counted
        for _ in range(20):
            yield b"x" * 8192

    streamed = server.post("/api/search", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    many = server.post("/api/search", files=[("files", ("many.msp", msp_text(library_spectra(6))))])
    assert many.status_code == 413 and "at most 5" in many.json()["error"]
    many_json = server.post("/api/search", json={"spectra": [{"peaks": [[41, 1]]}] * 6})
    assert many_json.status_code == 413
    assert server.get("/api/health").status_code == 200  # still serving


def test_mirror_bad_input(server):
    r = server.post("/api/mirror", json={"query": {"peaks": [[41, 1]]}, "library_index": 60})
    assert r.status_code == 404 and "out of range" in r.json()["error"]
    r = server.post("/api/mirror", json={"query": {"peaks": []}, "library_index": 0})
    assert r.status_code == 400 and "no peaks" in r.json()["error"]
    r = server.post("/api/mirror", json={"library_index": 0})
    assert r.status_code == 422 and "query" in r.json()["error"]


def test_encoder_mismatch_is_refused_at_start(tmp_path):
    from llm4ms.errors import ModelMismatchError
    from llm4ms.web import create_app

    library = build_library(tmp_path / "lib", n=10)
    with pytest.raises(ModelMismatchError):
        create_app(library, FakeEncoder(seed=1))
