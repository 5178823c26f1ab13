"""The local web app: a FastAPI JSON API plus one bundled page (no CDN, works offline).

`create_app(library, encoder)` builds the app so tests can inject a small library and a fake encoder;
``llm4ms serve`` runs it with uvicorn on 127.0.0.1. Every error a user can cause is a 4xx JSON
``{"error": "..."}`` that names what is wrong; nothing returns a traceback.
"""
# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at runtime.
import io
import json
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from llm4ms.errors import Llm4msError
from llm4ms.spectrum import Spectrum
from llm4ms.web.inputs import (TooLarge, TooManySpectra, check_queries, read_text, read_upload,
                               spectrum_from_peaks, spectrum_to_json)

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
HIT_FIELDS = ("rank", "score", "library_index", "id", "name", "formula", "inchikey", "smiles", "mass")


@dataclass
class Limits:
    """What one request may ask of the server."""

    max_upload_mb: float = 10.0
    max_spectra: int = 500
    max_k: int = 100

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class BodySizeLimit:
    """ASGI middleware: refuse bodies over `max_bytes` (by Content-Length, and by counting streamed bytes)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(status_code=413, content={"error": self._message(int(declared))})
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise TooLarge(self._message(seen))
            return message

        await self.app(scope, counting_receive, send)

    def _message(self, size: int) -> str:
        return (f"request body too large ({size / 1048576:.1f} MB); the server accepts at most "
                f"{self.max_bytes / 1048576:.3g} MB (llm4ms serve --max-upload-mb)")


def create_app(library: Any, encoder: Any = None, max_upload_mb: float = 10.0, max_spectra: int = 500,
               max_k: int = 100, title: str = "llm4ms"):
    """Build the FastAPI app serving `library` (a `llm4ms.search.Library`).

    `encoder` embeds queries; None means the library's own model. It is loaded and checked against the
    library now, so a mismatch fails at start-up instead of on the first search.
    """
    limits = Limits(max_upload_mb=max_upload_mb, max_spectra=max_spectra, max_k=max_k)
    encoder = library.encoder(encoder)
    app = FastAPI(title=f"{title} API", docs_url=None, redoc_url=None,
                  description="Search a spectral library with LLM spectrum embeddings. The bundled page at / "
                              "uses exactly these endpoints; /docs lists them offline.")
    app.state.library = library
    app.state.encoder = encoder
    app.state.limits = limits
    app.state.lock = threading.Lock()  # one search at a time: the encoder already uses every core
    _add_error_handlers(app)
    _add_routes(app)
    _add_openapi_schemas(app)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_bytes)
    return app


# ---- errors -----------------------------------------------------------------------------------------
def _add_error_handlers(app: Any) -> None:
    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": message})

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        parts = []
        for item in exc.errors()[:5]:
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            parts.append(f"{where or 'body'}: {item.get('msg', 'invalid')}")
        return error(422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(TooLarge)
    async def too_large(request, exc: TooLarge):
        return error(413, str(exc))

    @app.exception_handler(TooManySpectra)
    async def too_many(request, exc: TooManySpectra):
        return error(413, str(exc))

    @app.exception_handler(Llm4msError)
    async def user_error(request, exc: Llm4msError):
        return error(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server log")


# ---- request models -------------------------------------------------------------------------------
class SpectrumIn(BaseModel):
    """A query spectrum as JSON."""

    model_config = ConfigDict(extra="forbid")
    peaks: list[list[float]] = Field(..., description="peak list [[m/z, intensity], ...]",
                                     examples=[[[41, 30.5], [43, 100], [57, 12]]])
    name: Optional[str] = None
    id: Optional[str] = None
    mass: Optional[float] = Field(None, description="molecular mass in Da (for the mass filter)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="more metadata (MSP-style keys)")


class SearchRequest(BaseModel):
    """POST /api/search as JSON: peak lists and/or pasted text, plus search settings."""

    model_config = ConfigDict(extra="forbid")
    spectra: list[SpectrumIn] = Field(default_factory=list, description="query spectra as peak lists")
    text: Optional[str] = Field(None, description="pasted MSP/MGF text or a two-column peak list")
    k: int = Field(10, ge=1, description="hits per query")
    mass: Optional[float] = Field(None, gt=0, description="query molecular mass for the filter (Da)")
    mass_tolerance: Optional[float] = Field(None, ge=0, description="mass filter half-width (Da)")
    min_score: Optional[float] = Field(None, description="drop hits scoring below this cosine")


class MirrorRequest(BaseModel):
    """POST /api/mirror: a query peak list and the library spectrum to compare it with."""

    model_config = ConfigDict(extra="forbid")
    query: SpectrumIn
    library_index: int = Field(..., ge=0, description="0-based library index of the hit")
    tolerance: float = Field(0.5, ge=0, le=50, description="m/z tolerance for matched peaks")
    score: Optional[float] = None
    top_labels: int = Field(10, ge=0, le=100)


# ---- routes ---------------------------------------------------------------------------------------
def _add_routes(app: Any) -> None:
    library, limits = app.state.library, app.state.limits

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC / "docs.html")

    @app.get("/api/health", summary="Liveness and library size")
    async def health() -> dict[str, Any]:
        from llm4ms import __version__

        return {"status": "ok", "spectra": len(library), "version": __version__}

    @app.get("/api/library", summary="Library summary (size, model, index) and server limits")
    async def library_info() -> dict[str, Any]:
        return {"library": jsonable_encoder(library.info()),
                "limits": {"max_upload_mb": limits.max_upload_mb, "max_spectra": limits.max_spectra,
                           "max_k": limits.max_k}}

    search_body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}},
        "multipart/form-data": {"schema": {"$ref": "#/components/schemas/SearchUpload"}}}}}

    @app.post("/api/search", summary="Search query spectra (JSON peak lists, pasted text, or file upload)",
              openapi_extra=search_body)
    async def search(request: Request) -> dict[str, Any]:
        params, queries = await _parse_search(request, limits)
        started = time.perf_counter()
        results = await run_in_threadpool(_run_search, app, queries, params)
        return {"k": params["k"], "mass": params["mass"], "mass_tolerance": params["mass_tolerance"],
                "elapsed_ms": round(1000 * (time.perf_counter() - started), 1),
                "queries": [{"index": i, **spectrum_to_json(q), "hits": [_hit_json(h) for h in hits]}
                            for i, (q, hits) in enumerate(zip(queries, results))]}

    @app.post("/api/search.csv", summary="The same search, as a CSV download of all hits",
              openapi_extra=search_body, response_class=Response,
              responses={200: {"content": {"text/csv": {}}}})
    async def search_csv(request: Request) -> Response:
        from llm4ms.report import write_hits

        params, queries = await _parse_search(request, limits)
        results = await run_in_threadpool(_run_search, app, queries, params)
        with tempfile.TemporaryDirectory(prefix="llm4ms-csv-") as tmp:
            path = Path(tmp) / "hits.csv"
            write_hits(results, path)
            text = path.read_text(encoding="utf-8")
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="llm4ms_hits.csv"'})

    @app.post("/api/mirror", summary="Mirror-plot data: query vs a library spectrum, matched peaks flagged")
    async def mirror(body: MirrorRequest) -> dict[str, Any]:
        from llm4ms.plot import mirror_data

        query, reference = _mirror_pair(library, body)
        data = mirror_data(query, reference, tolerance=body.tolerance, top_labels=body.top_labels,
                           score=body.score)
        data["reference"].update(library_index=body.library_index, inchikey=reference.inchikey,
                                 formula=reference.formula, smiles=reference.smiles)
        return data

    @app.post("/api/mirror.svg", summary="The same mirror plot drawn by matplotlib, as SVG",
              response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}})
    async def mirror_svg(body: MirrorRequest) -> Response:
        from llm4ms.plot import plot_mirror

        query, reference = _mirror_pair(library, body)
        fig = plot_mirror(query, reference, tolerance=body.tolerance, top_labels=body.top_labels,
                          score=body.score)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
        return Response(buffer.getvalue(), media_type="image/svg+xml")

    @app.get("/api/structure/{library_index}.svg", summary="Structure drawing of a library compound (RDKit)",
             response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}})
    async def structure(library_index: int) -> Response:
        from llm4ms.web.structure import structure_svg

        if not 0 <= library_index < len(library):
            raise HTTPException(404, f"library index {library_index} out of range "
                                     f"(the library holds {len(library)} spectra)")
        smiles = library.metadata_row(library_index).get("smiles")
        if not smiles:
            raise HTTPException(404, f"library spectrum {library_index} has no SMILES to draw")
        svg = await run_in_threadpool(structure_svg, str(smiles))
        if svg is None:
            raise HTTPException(422, f"library spectrum {library_index}: RDKit cannot parse SMILES {smiles!r}")
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})


def _add_openapi_schemas(app: Any) -> None:
    """Publish the search request schemas (JSON and multipart) that /api/search reads by hand."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        request_schema = SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(request_schema.pop("$defs", {}))
        components["SearchRequest"] = request_schema
        components["SearchUpload"] = {
            "type": "object", "title": "SearchUpload",
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "spectrum files (.msp .mgf .csv .txt .tsv .jdx, optionally .gz)"},
                "text": {"type": "string", "description": "pasted MSP/MGF text or a two-column peak list"},
                "k": {"type": "integer", "default": 10}, "mass": {"type": "number"},
                "mass_tolerance": {"type": "number"}, "min_score": {"type": "number"}}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


# ---- helpers ----------------------------------------------------------------------------------------
def _number(value: Any, name: str, kind: type = float) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise Llm4msError(f"{name} must be a number, got {value!r}") from None


async def _parse_search(request: Request, limits: Limits) -> tuple[dict[str, Any], list[Spectrum]]:
    """Search parameters and query spectra from a JSON body or a multipart upload."""
    ctype = request.headers.get("content-type", "")
    queries: list[Spectrum] = []
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_files=limits.max_spectra, max_part_size=limits.max_bytes)
        try:
            params = {"k": _number(form.get("k"), "k", int) or 10, "mass": _number(form.get("mass"), "mass"),
                      "mass_tolerance": _number(form.get("mass_tolerance"), "mass_tolerance"),
                      "min_score": _number(form.get("min_score"), "min_score")}
            text = form.get("text")
            if isinstance(text, str):
                queries += read_text(text, limits.max_spectra)
            for upload in form.getlist("files"):
                if isinstance(upload, str):
                    continue
                data = await upload.read()
                if not data and not upload.filename:
                    continue  # an empty file input
                queries += read_upload(data, upload.filename or "upload", limits.max_spectra - len(queries),
                                       max_total=limits.max_spectra)
        finally:
            await form.close()
    elif ctype.startswith("application/json"):
        try:
            payload = json.loads(await request.body())
        except ValueError as err:
            raise Llm4msError(f"request body is not valid JSON ({err})") from None
        try:
            body = SearchRequest.model_validate(payload)
        except ValidationError as err:
            raise RequestValidationError(err.errors(include_url=False)) from None
        params = {"k": body.k, "mass": body.mass, "mass_tolerance": body.mass_tolerance,
                  "min_score": body.min_score}
        if body.text:
            queries += read_text(body.text, limits.max_spectra)
        if len(body.spectra) + len(queries) > limits.max_spectra:
            raise TooManySpectra(f"{len(body.spectra) + len(queries)} query spectra; the server accepts at most "
                                 f"{limits.max_spectra} per search")
        for i, s in enumerate(body.spectra, start=1):
            label = f"spectra[{i - 1}]" + (f" ({s.name})" if s.name else "")
            queries.append(spectrum_from_peaks(s.peaks, s.name, s.id, s.mass, s.metadata, label=label))
    else:
        raise Llm4msError("send the search as application/json or multipart/form-data (file upload) "
                          f"(got {ctype or 'no content type'!r})")
    if not 1 <= params["k"] <= limits.max_k:
        raise Llm4msError(f"k must be between 1 and {limits.max_k} (got {params['k']})")
    if params["mass"] is not None and params["mass_tolerance"] is None:
        raise Llm4msError("a query mass needs a mass tolerance (mass_tolerance, in Da)")
    if params["mass_tolerance"] is not None and params["mass_tolerance"] < 0:
        raise Llm4msError("mass_tolerance must be >= 0")
    return params, check_queries(queries, limits.max_spectra)


def _run_search(app: Any, queries: list[Spectrum], params: dict[str, Any]):
    masses = [params["mass"]] * len(queries) if params["mass"] is not None else None
    with app.state.lock:
        return app.state.library.search(queries, k=params["k"], encoder=app.state.encoder,
                                        mass_tolerance=params["mass_tolerance"], query_masses=masses,
                                        min_score=params["min_score"])


def _hit_json(hit: Any) -> dict[str, Any]:
    row = hit.to_row()
    out = {key: row[key] for key in HIT_FIELDS}
    out["score"] = round(float(out["score"]), 6)
    return out


def _mirror_pair(library: Any, body: Any) -> tuple[Spectrum, Spectrum]:
    if body.library_index >= len(library):
        raise HTTPException(404, f"library index {body.library_index} out of range "
                                 f"(the library holds {len(library)} spectra)")
    q = body.query
    query = spectrum_from_peaks(q.peaks, q.name or "query", q.id, q.mass, q.metadata, label="query")
    return query, library.spectrum(body.library_index)
