"""The local web app: a FastAPI JSON API plus one bundled page (no CDN, works offline).

`create_app(library, encoder)` builds the app so tests can inject a small library and a fake encoder;
``llm4ms serve`` runs it with uvicorn on 127.0.0.1. Every error a user can cause is a 4xx JSON
``{"error": "..."}`` on one line that names what is wrong; nothing returns a traceback.

Reading uploads and pasted text, searching, and drawing run in worker threads (never on the event loop),
so a slow request cannot stall `/api/health` or other clients; uploads have caps on unpacked size, lines
and line length, JSON bodies a nesting limit, and mirror plots draw at most `MAX_MIRROR_PEAKS` peaks a side.
The search uses `Library.search`'s own default ranking, as the CLI does; `rerank`/`rerank_depth` are only
forwarded when the user gives them.
"""
# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at runtime.
import functools
import io
import json
import logging
import math
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import anyio
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import (BaseModel, ConfigDict, Field, FiniteFloat, StrictBool, StrictInt, StrictStr,
                      ValidationError)
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from llm4ms.errors import Llm4msError
from llm4ms.spectrum import Spectrum
from llm4ms.web.inputs import (MAX_LINES, MAX_MIRROR_PEAKS, BadRequest, Budget, InvalidParameter, TooLarge,
                               TooManySpectra, capped_peaks, check_queries, parse_json, read_text, read_upload,
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
    max_unpacked_mb: Optional[float] = None  # what uploads may unpack to per request; default 4 x upload
    max_rerank_depth: int = 1000
    max_lines: int = MAX_LINES  # lines of pasted text and files per request

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_unpacked_bytes(self) -> int:
        mb = self.max_unpacked_mb if self.max_unpacked_mb is not None else 4 * self.max_upload_mb
        return int(max(mb, self.max_upload_mb) * 1024 * 1024)


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
               max_k: int = 100, title: str = "llm4ms", max_unpacked_mb: Optional[float] = None):
    """Build the FastAPI app serving `library` (a `llm4ms.search.Library`).

    `encoder` embeds queries; None means the library's own model. It is loaded and checked against the
    library now, so a mismatch fails at start-up instead of on the first search.
    """
    limits = Limits(max_upload_mb=max_upload_mb, max_spectra=max_spectra, max_k=max_k,
                    max_unpacked_mb=max_unpacked_mb)
    encoder = library.encoder(encoder)
    app = FastAPI(title=f"{title} API", docs_url=None, redoc_url=None,
                  description="Search a spectral library with LLM spectrum embeddings. The bundled page at / "
                              "uses exactly these endpoints; /docs lists them offline.")
    app.state.library = library
    app.state.encoder = encoder
    app.state.limits = limits
    app.state.lock = threading.Lock()  # one search at a time: the encoder already uses every core
    app.state.limiters = {}  # anyio capacity limiters, made on first use (they need the running loop)
    _add_error_handlers(app)
    _add_routes(app)
    _add_openapi_schemas(app)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_bytes)
    return app


# ---- errors -----------------------------------------------------------------------------------------
def _add_error_handlers(app: Any) -> None:
    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": _one_line(message)})

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

    @app.exception_handler(InvalidParameter)
    async def invalid_parameter(request, exc: InvalidParameter):
        return error(422, str(exc))

    @app.exception_handler(BadRequest)
    async def bad_request(request, exc: BadRequest):
        return error(400, str(exc))

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
    name: Optional[str] = Field(None, max_length=1000)
    id: Optional[str] = Field(None, max_length=1000)
    mass: Optional[float] = Field(None, gt=0, allow_inf_nan=False, strict=True,
                                  description="molecular mass in Da (for the mass filter)")
    metadata: dict[str, Union[StrictStr, StrictBool, StrictInt, FiniteFloat, None]] = Field(
        default_factory=dict, description="more metadata (MSP-style keys, text or number values)")


class SearchRequest(BaseModel):
    """POST /api/search as JSON: peak lists and/or pasted text, plus search settings."""

    model_config = ConfigDict(extra="forbid")
    spectra: list[SpectrumIn] = Field(default_factory=list, description="query spectra as peak lists")
    text: Optional[str] = Field(None, description="pasted MSP/MGF text or a two-column peak list")
    k: int = Field(10, ge=1, strict=True, description="hits per query")
    mass: Optional[float] = Field(None, gt=0, allow_inf_nan=False, strict=True,
                                  description="query molecular mass for the filter (Da)")
    mass_tolerance: Optional[float] = Field(None, ge=0, allow_inf_nan=False, strict=True,
                                            description="mass filter half-width (Da)")
    min_score: Optional[float] = Field(None, allow_inf_nan=False, strict=True,
                                       description="drop hits scoring below this")
    rerank: Optional[str] = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                  description="re-score candidates by this classic similarity alone (as "
                                              "`llm4ms search --rerank`); default: the library model's ranking")
    rerank_depth: Optional[int] = Field(None, ge=1, strict=True,
                                        description="candidates re-scored per query (`--rerank-depth`)")


class MirrorRequest(BaseModel):
    """POST /api/mirror: a query peak list and the library spectrum to compare it with."""

    model_config = ConfigDict(extra="forbid")
    query: SpectrumIn
    library_index: int = Field(..., ge=0, strict=True, description="0-based library index of the hit")
    tolerance: float = Field(0.5, ge=0, le=50, allow_inf_nan=False, strict=True,
                             description="m/z tolerance for matched peaks")
    score: Optional[float] = Field(None, allow_inf_nan=False, strict=True)
    top_labels: int = Field(10, ge=0, le=100, strict=True)


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
    mirror_body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/MirrorRequest"}}}}}

    @app.post("/api/search", summary="Search query spectra (JSON peak lists, pasted text, or file upload)",
              openapi_extra=search_body)
    async def search(request: Request) -> Response:
        params, queries = await _parse_search(app, request, limits)
        started = time.perf_counter()
        results = await _in_thread(app, "search", _run_search, app, queries, params)
        echo = {key: params[key] for key in ("rerank", "rerank_depth") if params.get(key) is not None}
        head = {"k": params["k"], "mass": params["mass"], "mass_tolerance": params["mass_tolerance"], **echo,
                "elapsed_ms": round(1000 * (time.perf_counter() - started), 1)}
        # serialised in a worker thread too: queries' peak lists make large bodies
        return await _in_thread(app, "parse", _search_response, head, queries, results)

    @app.post("/api/search.csv", summary="The same search, as a CSV download of all hits",
              openapi_extra=search_body, response_class=Response,
              responses={200: {"content": {"text/csv": {}}}})
    async def search_csv(request: Request) -> Response:
        params, queries = await _parse_search(app, request, limits)
        results = await _in_thread(app, "search", _run_search, app, queries, params)
        text = await _in_thread(app, "parse", _hits_csv, results)
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="llm4ms_hits.csv"'})

    @app.post("/api/mirror", summary="Mirror-plot data: query vs a library spectrum, matched peaks flagged",
              openapi_extra=mirror_body)
    async def mirror(request: Request) -> dict[str, Any]:
        body = await _parse_model(app, request, MirrorRequest)
        return await _in_thread(app, "draw", _mirror_json, library, body)

    @app.post("/api/mirror.svg", summary="The same mirror plot drawn by matplotlib, as SVG",
              openapi_extra=mirror_body, response_class=Response,
              responses={200: {"content": {"image/svg+xml": {}}}})
    async def mirror_svg(request: Request) -> Response:
        body = await _parse_model(app, request, MirrorRequest)
        svg = await _in_thread(app, "draw", _mirror_svg, library, body)
        return Response(svg, media_type="image/svg+xml")

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
        svg = await _in_thread(app, "draw", structure_svg, str(smiles))
        if svg is None:
            raise HTTPException(422, f"library spectrum {library_index}: RDKit cannot parse SMILES {smiles!r}")
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})


def _add_openapi_schemas(app: Any) -> None:
    """Publish the request schemas (search as JSON and multipart, mirror) of the endpoints read by hand."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (SearchRequest, MirrorRequest):
            request_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(request_schema.pop("$defs", {}))
            components[model.__name__] = request_schema
        components["SearchUpload"] = {
            "type": "object", "title": "SearchUpload",
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "spectrum files (.msp .mgf .csv .txt .tsv .jdx, optionally .gz)"},
                "text": {"type": "string", "description": "pasted MSP/MGF text or a two-column peak list"},
                "k": {"type": "integer", "default": 10, "minimum": 1}, "mass": {"type": "number"},
                "mass_tolerance": {"type": "number"}, "min_score": {"type": "number"},
                "rerank": {"type": "string"}, "rerank_depth": {"type": "integer", "minimum": 1}}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


# ---- helpers ----------------------------------------------------------------------------------------
#: Worker threads per kind of work: parsing/serialising, searching (one at a time: the encoder already uses
#: every core), drawing. Health checks and page loads stay on the event loop and never wait for these.
_CAPACITY = {"parse": 4, "search": 1, "draw": 2}


async def _in_thread(app: Any, kind: str, func: Callable, *args: Any) -> Any:
    """Run `func(*args)` in a worker thread, at most `_CAPACITY[kind]` at once."""
    limiters = app.state.limiters
    if kind not in limiters:
        limiters[kind] = anyio.CapacityLimiter(_CAPACITY[kind])
    return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=limiters[kind])


def _one_line(message: Any, limit: int = 1000) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


_INT = re.compile(r"[+-]?[0-9]{1,18}")


def _form_int(form: Any, name: str, default: Optional[int] = None) -> Optional[int]:
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str) or not _INT.fullmatch(value.strip()):
        raise InvalidParameter(f"invalid request: {name} must be a whole number, got {_shown(value)}")
    return int(value)


def _form_float(form: Any, name: str) -> Optional[float]:
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value) if isinstance(value, str) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidParameter(f"invalid request: {name} must be a finite number, got {_shown(value)}")
    return number


def _form_text(form: Any, name: str, limit: int = 64) -> Optional[str]:
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > limit or not re.fullmatch(r"[A-Za-z0-9_-]+", value.strip()):
        raise InvalidParameter(f"invalid request: {name} must be a short name, got {_shown(value)}")
    return value.strip()


def _shown(value: Any) -> str:
    if not isinstance(value, str):
        return "a file"
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


async def _parse_model(app: Any, request: Request, model: Any) -> Any:
    """A JSON body validated by `model`, parsed (with the depth limit) in a worker thread."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/json"):
        raise Llm4msError(f"send this request as application/json (got {ctype or 'no content type'!r})")
    raw = await request.body()
    return await _in_thread(app, "parse", _validated, raw, model)


def _validated(raw: bytes, model: Any) -> Any:
    payload = parse_json(raw)
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise RequestValidationError(err.errors(include_url=False)) from None


async def _parse_search(app: Any, request: Request, limits: Limits) -> tuple[dict[str, Any], list[Spectrum]]:
    """Search parameters and query spectra from a JSON body or a multipart upload.

    Only receiving the body happens on the event loop; reading spectra runs in a worker thread.
    """
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_files=limits.max_spectra, max_part_size=limits.max_bytes)
        try:
            params = {"k": _form_int(form, "k", 10), "mass": _form_float(form, "mass"),
                      "mass_tolerance": _form_float(form, "mass_tolerance"),
                      "min_score": _form_float(form, "min_score"), "rerank": _form_text(form, "rerank"),
                      "rerank_depth": _form_int(form, "rerank_depth")}
            _check_params(params, limits)
            text = form.get("text")
            uploads = []
            for upload in form.getlist("files"):
                if isinstance(upload, str):
                    continue
                data = await upload.read()
                if not data and not upload.filename:
                    continue  # an empty file input
                uploads.append((data, upload.filename or "upload"))
        finally:
            await form.close()
        queries = await _in_thread(app, "parse", _read_inputs, text if isinstance(text, str) else None,
                                   uploads, limits)
    elif ctype.startswith("application/json"):
        raw = await request.body()
        params, queries = await _in_thread(app, "parse", _read_json_search, raw, limits)
    else:
        raise Llm4msError("send the search as application/json or multipart/form-data (file upload) "
                          f"(got {ctype or 'no content type'!r})")
    return params, queries


def _check_params(params: dict[str, Any], limits: Limits) -> None:
    k = params["k"]
    if k < 1:
        raise InvalidParameter(f"k must be between 1 and {limits.max_k} (got {k})")
    if k > limits.max_k:
        raise Llm4msError(f"k must be between 1 and {limits.max_k} (got {k})")
    if params["mass"] is not None and params["mass"] <= 0:
        raise InvalidParameter(f"mass must be a positive number of Da (got {params['mass']:g})")
    if params["mass_tolerance"] is not None and params["mass_tolerance"] < 0:
        raise InvalidParameter("mass_tolerance must be >= 0")
    if params["mass"] is not None and params["mass_tolerance"] is None:
        raise Llm4msError("a query mass needs a mass tolerance (mass_tolerance, in Da)")
    depth = params.get("rerank_depth")
    if depth is not None and not 1 <= depth <= limits.max_rerank_depth:
        raise InvalidParameter(f"rerank_depth must be between 1 and {limits.max_rerank_depth} (got {depth})")


def _read_inputs(text: Optional[str], uploads: list[tuple[bytes, str]], limits: Limits) -> list[Spectrum]:
    """Queries from pasted text and uploaded files, within one shared budget (worker thread)."""
    budget = Budget(bytes_left=limits.max_unpacked_bytes, lines_left=limits.max_lines)
    queries: list[Spectrum] = []
    if text:
        queries += read_text(text, limits.max_spectra, budget)
    for data, filename in uploads:
        queries += read_upload(data, filename, limits.max_spectra - len(queries), max_total=limits.max_spectra,
                               budget=budget)
    return check_queries(queries, limits.max_spectra)


def _read_json_search(raw: bytes, limits: Limits) -> tuple[dict[str, Any], list[Spectrum]]:
    body = _validated(raw, SearchRequest)
    params = {"k": body.k, "mass": body.mass, "mass_tolerance": body.mass_tolerance,
              "min_score": body.min_score, "rerank": body.rerank, "rerank_depth": body.rerank_depth}
    _check_params(params, limits)
    queries: list[Spectrum] = []
    if body.text:
        queries += read_text(body.text, limits.max_spectra,
                             Budget(bytes_left=limits.max_unpacked_bytes, lines_left=limits.max_lines))
    if len(body.spectra) + len(queries) > limits.max_spectra:
        raise TooManySpectra(f"{len(body.spectra) + len(queries)} query spectra; the server accepts at most "
                             f"{limits.max_spectra} per search")
    for i, s in enumerate(body.spectra, start=1):
        label = f"spectra[{i - 1}]" + (f" ({s.name})" if s.name else "")
        queries.append(spectrum_from_peaks(s.peaks, s.name, s.id, s.mass, s.metadata, label=label))
    return params, check_queries(queries, limits.max_spectra)


def _run_search(app: Any, queries: list[Spectrum], params: dict[str, Any]):
    """`Library.search` with the library's default ranking; ranking options only as the user gave them."""
    masses = [params["mass"]] * len(queries) if params["mass"] is not None else None
    chosen = {key: params[key] for key in ("rerank", "rerank_depth") if params.get(key) is not None}
    with app.state.lock:
        return app.state.library.search(queries, k=params["k"], encoder=app.state.encoder,
                                        mass_tolerance=params["mass_tolerance"], query_masses=masses,
                                        min_score=params["min_score"], **chosen)


def _search_response(head: dict[str, Any], queries: list[Spectrum], results: list) -> Response:
    body = dict(head, queries=[{"index": i, **spectrum_to_json(q), "hits": [_hit_json(h) for h in hits]}
                               for i, (q, hits) in enumerate(zip(queries, results))])
    return Response(_json_bytes(body), media_type="application/json")


def _json_bytes(data: Any) -> bytes:
    """Strict JSON (a NaN or infinity anywhere becomes null: browsers reject the bare literals)."""
    try:
        text = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        text = json.dumps(_finite(data), allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def _hits_csv(results: list) -> str:
    from llm4ms.report import write_hits

    with tempfile.TemporaryDirectory(prefix="llm4ms-csv-") as tmp:
        path = Path(tmp) / "hits.csv"
        write_hits(results, path)
        return path.read_text(encoding="utf-8")


def _hit_json(hit: Any) -> dict[str, Any]:
    row = hit.to_row()
    out = {key: row[key] for key in HIT_FIELDS}
    out["score"] = round(float(out["score"]), 6)
    return out


def _mirror_pair(library: Any, body: Any) -> tuple[Spectrum, Spectrum, Optional[str]]:
    """Query and library spectrum, each cut to its `MAX_MIRROR_PEAKS` most intense peaks, and a note if cut."""
    if body.library_index >= len(library):
        raise HTTPException(404, f"library index {body.library_index} out of range "
                                 f"(the library holds {len(library)} spectra)")
    q = body.query
    query = spectrum_from_peaks(q.peaks, q.name or "query", q.id, q.mass, q.metadata, label="query")
    query, n_query = capped_peaks(query)
    reference, n_reference = capped_peaks(library.spectrum(body.library_index))
    cut = [f"{side} has {n:,} peaks" for side, n in (("query", n_query), ("library spectrum", n_reference))
           if n > MAX_MIRROR_PEAKS]
    note = (f"{' and '.join(cut)}; the {MAX_MIRROR_PEAKS} most intense of each are drawn") if cut else None
    return query, reference, note


def _mirror_json(library: Any, body: Any) -> dict[str, Any]:
    from llm4ms.plot import mirror_data

    query, reference, note = _mirror_pair(library, body)
    data = mirror_data(query, reference, tolerance=body.tolerance, top_labels=body.top_labels, score=body.score)
    data["reference"].update(library_index=body.library_index, inchikey=reference.inchikey,
                             formula=reference.formula, smiles=reference.smiles)
    data["note"] = note
    return data


def _mirror_svg(library: Any, body: Any) -> str:
    from llm4ms.plot import plot_mirror

    query, reference, note = _mirror_pair(library, body)
    fig = plot_mirror(query, reference, tolerance=body.tolerance, top_labels=body.top_labels, score=body.score)
    if note:
        fig.text(0.995, 0.005, note, ha="right", va="bottom", fontsize=7, color="#5f6b7a")
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    return buffer.getvalue()
