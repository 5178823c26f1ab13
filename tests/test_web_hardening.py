"""The web API against hostile requests: zip bombs, huge lines, deep JSON, odd parameters, huge mirror plots.

Every user error must be a 4xx JSON error on one line (never a 500), and no request may stall the server:
reading, searching and drawing run off the event loop, so `/api/health` keeps answering.
"""
from __future__ import annotations

import gzip
import threading
import time
import zlib

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tests._fakes import FakeEncoder  # noqa: E402
from tests._web_helpers import ServerThread, build_library, library_spectra, msp_text  # noqa: E402


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("weblib") / "lib")


def _serve(library, timeout: float, **limits):
    from llm4ms.web import create_app

    with ServerThread(create_app(library, FakeEncoder(), max_k=20, **limits)) as running:
        with httpx.Client(base_url=running.url, timeout=timeout) as client:
            yield client


@pytest.fixture(scope="module")
def server(library):
    """Small limits, as in test_web_api: 0.05 MB bodies, so 0.2 MB unpacked."""
    yield from _serve(library, 60, max_upload_mb=0.05, max_spectra=5)


@pytest.fixture(scope="module")
def roomy(library):
    """Larger limits (8 MB bodies, 32 MB unpacked), so the per-request line and unpack caps bind."""
    yield from _serve(library, 120, max_upload_mb=8, max_spectra=50)


def peaks_of(spectrum):
    return [[float(m), float(i)] for m, i in zip(spectrum.mz, spectrum.intensities)]


def assert_error(response, status, fragment=""):
    assert response.status_code == status, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert "\n" not in error and "Traceback" not in response.text
    assert fragment in error, error
    return error


# ---- unpacked size, lines, line length -----------------------------------------------------------------
def bomb(unpacked: int, line: bytes = b"41 10\n") -> bytes:
    """Gzip data that unpacks to at least `unpacked` bytes of peak lines, made without holding them."""
    block = line * (1048576 // len(line))
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts, size = [], 0
    while size < unpacked:
        parts.append(compressor.compress(block))
        size += len(block)
    parts.append(compressor.flush())
    return b"".join(parts)


def test_gzip_bomb_is_refused_by_its_unpacked_size(server):
    data = bomb(2 * 1048576)  # ~6 kB on the wire, 2 MB unpacked > 0.2 MB allowed
    assert len(data) < 40000
    assert_error(server.post("/api/search", files=[("files", ("bomb.msp.gz", data))]), 413, "unpacks to more than")
    # gzip data under another name is unpacked (and capped) too
    assert_error(server.post("/api/search", files=[("files", ("bomb.txt", data))]), 413, "unpacks to more than")


def test_gigabyte_bomb_does_not_freeze_the_server(roomy):
    data = bomb(1 << 30, b"\0" * 64)  # 1 GiB of zeros in about 1 MB
    assert len(data) < 2 * 1048576
    answers = []

    def health_meanwhile():
        for _ in range(5):
            started = time.perf_counter()
            answers.append((roomy.get("/api/health", timeout=5).status_code, time.perf_counter() - started))

    thread = threading.Thread(target=health_meanwhile)
    started = time.perf_counter()
    thread.start()
    response = roomy.post("/api/search", files=[("files", ("bomb.msp.gz", data))])
    elapsed = time.perf_counter() - started
    thread.join()
    assert_error(response, 413, "unpacks to more than")
    assert elapsed < 20, elapsed
    assert all(status == 200 and seconds < 2 for status, seconds in answers), answers


def test_small_gzip_upload_still_works(server):
    queries = library_spectra(60)[3:5]
    body = server.post("/api/search", files=[("files", ("two.msp.gz", gzip.compress(msp_text(queries).encode())))],
                       data={"k": "2"})
    assert body.status_code == 200, body.text
    assert [q["hits"][0]["library_index"] for q in body.json()["queries"]] == [3, 4]


@pytest.mark.parametrize("blob, fragment", [(b"\x1f\x8bnot gzip at all", "not valid gzip"),
                                            (gzip.compress(b"41 10\n" * 100)[:30], "truncated")])
def test_broken_gzip_is_400(server, blob, fragment):
    assert_error(server.post("/api/search", files=[("files", ("x.msp.gz", blob))]), 400, fragment)


def test_overlong_line_is_refused(roomy):
    line = "41 10 " + "x" * 200_000 + "\n"  # a CSV cell this long once gave a _csv.Error 500
    assert_error(roomy.post("/api/search", files=[("files", ("long.csv", line))]), 400, "a line of")
    assert_error(roomy.post("/api/search", data={"text": "Name: a\nComment: " + "y" * 70000 + "\n41 10\n"}),
                 400, "a line of")
    packed = gzip.compress(("Name: a\nComment: " + "z" * 100_000 + "\nNum Peaks: 1\n41 10\n").encode())
    assert_error(roomy.post("/api/search", files=[("files", ("a.msp.gz", packed))]), 400, "a line of")


def test_too_many_lines_is_413_fast(roomy):
    text = "Name: many synonyms\n" + "Synon: x\n" * 300_000 + "Num Peaks: 1\n41 10\n"
    started = time.perf_counter()
    assert_error(roomy.post("/api/search", data={"text": text}), 413, "lines")
    assert time.perf_counter() - started < 10


def test_many_synonyms_under_the_line_cap_read_in_linear_time(roomy):
    text = "Name: many synonyms\n" + "Synon: x\n" * 150_000 + "Num Peaks: 2\n41 10\n43 100\n"
    started = time.perf_counter()
    response = roomy.post("/api/search", data={"text": text, "k": "1"})
    assert response.status_code == 200, response.text[:300]
    assert time.perf_counter() - started < 20


# ---- JSON ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/search", "/api/search.csv", "/api/mirror", "/api/mirror.svg"])
@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_400_not_500(roomy, path, depth):
    body = b"[" * depth + b"]" * depth
    response = roomy.post(path, content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, "nested")
    metadata = '{"spectra": [{"peaks": [[41, 1]], "metadata": {"a": ' + "[" * 50 + "]" * 50 + "}}]}"
    response = roomy.post("/api/search", content=metadata, headers={"content-type": "application/json"})
    assert_error(response, 400, "nested")


def test_metadata_values_must_be_scalars(server):
    response = server.post("/api/search", json={"spectra": [{"peaks": [[41, 1]], "metadata": {"a": [1]}}]})
    assert_error(response, 422, "metadata")


# ---- parameters ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form, fragment", [
    ({"k": "0"}, "k must be between 1 and 20"), ({"k": "-3"}, "k must be"), ({"k": "true"}, "whole number"),
    ({"k": "2.5"}, "whole number"), ({"k": "1e3"}, "whole number"),
    ({"mass": "nan", "mass_tolerance": "1"}, "finite"), ({"mass": "inf", "mass_tolerance": "1"}, "finite"),
    ({"mass": "abc", "mass_tolerance": "1"}, "finite"), ({"mass_tolerance": "-1"}, "mass_tolerance"),
    ({"min_score": "NaN"}, "finite"), ({"mass": "-5", "mass_tolerance": "1"}, "positive"),
    ({"rerank_depth": "0"}, "rerank_depth"), ({"rerank_depth": "99999999"}, "rerank_depth"),
    ({"rerank": "x; rm -rf"}, "rerank"),
])
def test_bad_form_parameters_are_422(server, form, fragment):
    assert_error(server.post("/api/search", data={"text": "41 10\n43 100", **form}), 422, fragment)


@pytest.mark.parametrize("extra, fragment", [
    ({"k": 0}, "k"), ({"k": True}, "k"), ({"k": "5"}, "k"), ({"k": 2.5}, "k"),
    ({"mass": "NaN", "mass_tolerance": 1}, "mass"), ({"mass_tolerance": "Infinity"}, "mass_tolerance"),
    ({"min_score": "-Infinity"}, "min_score"), ({"rerank_depth": 0}, "rerank_depth"),
])
def test_bad_json_parameters_are_422(server, extra, fragment):
    import json

    body = {"spectra": [{"peaks": [[41, 10], [43, 100]]}], **extra}
    text = json.dumps(body)
    for literal in ("NaN", "Infinity", "-Infinity"):  # JSON as JavaScript's JSON.stringify never writes it
        text = text.replace(f'"{literal}"', literal)
    response = server.post("/api/search", content=text, headers={"content-type": "application/json"})
    assert_error(response, 422, fragment)


def test_nan_mass_in_a_spectrum_is_422(server):
    response = server.post("/api/search", content='{"spectra": [{"peaks": [[41, 1]], "mass": NaN}]}',
                           headers={"content-type": "application/json"})
    assert_error(response, 422, "mass")


def test_pasted_query_is_labelled_pasted_and_a_file_by_its_name(server):
    target = library_spectra(60)[9]
    pasted = "\n".join(f"{m:g}\t{i:.2f}" for m, i in peaks_of(target))
    body = server.post("/api/search", data={"text": pasted, "k": "1"}).json()
    assert body["queries"][0]["name"] == "pasted"
    body = server.post("/api/search", files=[("files", ("unknown_A.csv", pasted.replace("\t", ",")))]).json()
    assert body["queries"][0]["name"] == "unknown_A"
    body = server.post("/api/search", json={"text": pasted, "k": 1}).json()
    assert body["queries"][0]["name"] == "pasted"


# ---- mirror plots ---------------------------------------------------------------------------------------
def test_huge_mirror_is_capped_and_fast(roomy):
    import numpy as np

    rng = np.random.default_rng(0)
    mz = np.sort(rng.uniform(20, 2000, 200_000)).round(4)
    peaks = [[float(m), float(i)] for m, i in zip(mz, rng.uniform(1, 1000, mz.size).round(2))]
    body = {"query": {"peaks": peaks, "name": "huge"}, "library_index": 3}
    started = time.perf_counter()
    svg = roomy.post("/api/mirror.svg", json=body)
    assert svg.status_code == 200, svg.text[:300]
    assert time.perf_counter() - started < 8
    assert "500 most intense" in svg.text
    data = roomy.post("/api/mirror", json=body).json()
    assert len(data["query"]["mz"]) == 500 and "200,000 peaks" in data["note"]
    small = roomy.post("/api/mirror", json={"query": {"peaks": [[41, 1]]}, "library_index": 3}).json()
    assert small["note"] is None


def test_mirror_bad_parameters_are_422(server):
    for extra in ({"library_index": True}, {"library_index": "3"}, {"tolerance": "NaN"}):
        body = {"query": {"peaks": [[41, 1]]}, "library_index": 0, **extra}
        response = server.post("/api/mirror", json=body)
        assert_error(response, 422)


# ---- off the event loop --------------------------------------------------------------------------------------
def test_slow_parsing_does_not_block_health(library, monkeypatch):
    import llm4ms.web.app as web_app
    from llm4ms.web import create_app

    real = web_app._read_inputs

    def slow(*args):
        time.sleep(3)
        return real(*args)

    monkeypatch.setattr(web_app, "_read_inputs", slow)
    app = create_app(library, FakeEncoder(), max_upload_mb=1, max_spectra=5, max_k=20)
    with ServerThread(app) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        result = {}
        thread = threading.Thread(target=lambda: result.update(
            r=client.post("/api/search", data={"text": "41 10\n43 100", "k": "1"})))
        thread.start()
        time.sleep(0.5)
        started = time.perf_counter()
        assert client.get("/api/health").status_code == 200
        assert time.perf_counter() - started < 1.5
        thread.join()
        assert result["r"].status_code == 200


# ---- ranking: the library's default, options only forwarded ---------------------------------------------------
class RecordingLibrary:
    """A library that records what the web app asks `search` for (everything else passed through)."""

    def __init__(self, library) -> None:
        self._library = library
        self.calls = []

    def search(self, queries, **kwargs):
        self.calls.append(kwargs)
        return self._library.search(queries, **kwargs)

    def __len__(self):
        return len(self._library)

    def __getattr__(self, name):
        return getattr(self._library, name)


def test_search_uses_the_library_default_ranking_and_forwards_options(library):
    from llm4ms.web import create_app

    recording = RecordingLibrary(library)
    app = create_app(recording, FakeEncoder(), max_upload_mb=1, max_spectra=5, max_k=20)
    peaks = peaks_of(library_spectra(60)[2])
    with ServerThread(app) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        assert client.post("/api/search", json={"spectra": [{"peaks": peaks}], "k": 2}).status_code == 200
        assert set(recording.calls[-1]) == {"k", "encoder", "mass_tolerance", "query_masses", "min_score"}
        response = client.post("/api/search", json={"spectra": [{"peaks": peaks}], "k": 2,
                                                    "rerank": "cosine_sqrt", "rerank_depth": 30})
        assert response.status_code == 200, response.text
        assert recording.calls[-1]["rerank"] == "cosine_sqrt" and recording.calls[-1]["rerank_depth"] == 30
        assert response.json()["rerank"] == "cosine_sqrt"
        form = client.post("/api/search", data={"text": "41 10\n43 100", "rerank": "wcs"})
        assert form.status_code == 200 and recording.calls[-1]["rerank"] == "wcs"
        assert "rerank_depth" not in recording.calls[-1]
        unknown = client.post("/api/search", json={"spectra": [{"peaks": peaks}], "rerank": "nope"})
        assert_error(unknown, 400, "nope")
