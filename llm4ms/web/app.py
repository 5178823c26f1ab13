"""The local web app: a FastAPI JSON API plus one bundled page (no CDN, works offline).

`create_app(library, encoder)` builds the app so tests can inject a small library and a fake encoder;
``llm4ms serve`` runs it with uvicorn on 127.0.0.1. Every error a user can cause is a 4xx JSON
``{"error": "..."}`` on one line that names what is wrong; nothing returns a traceback.

Reading uploads and pasted text, searching, and drawing run in worker threads (never on the event loop),
so a slow request cannot stall `/api/health` or other clients; uploads have caps on unpacked size, lines
and line length, JSON bodies a nesting limit, and mirror plots draw at most `MAX_MIRROR_PEAKS` peaks a side.
The search uses `Library.search`'s own default ranking, as the CLI does; `rerank`/`rerank_depth` are only
forwarded when the user gives them. Request bodies are validated by the pydantic models below, whose JSON
schemas are the OpenAPI request bodies; which setting values a search accepts is `llm4ms.query_checks`.
"""
# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at runtime.
import functools
import io
import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import anyio
from fastapi import FastAPI, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import (BaseModel, ConfigDict, Field, FiniteFloat, StrictBool, StrictInt, StrictStr,
                      ValidationError, field_validator)
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from llm4ms.errors import Llm4msError
from llm4ms.io.formats import EXTENSIONS
from llm4ms.query_checks import InvalidSetting, check_search_settings
from llm4ms.spectrum import Spectrum
from llm4ms.web.inputs import (MAX_LINES, MAX_MIRROR_PEAKS, BadRequest, Budget, TooLarge, TooManySpectra,
                               capped_peaks, check_queries, parse_json, read_text, read_upload, spectrum_from_peaks,
                               spectrum_to_json)

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
HIT_FIELDS = ("rank", "score", "library_index", "id", "name", "formula", "inchikey", "smiles", "mass", "precursor_mz",
              "adduct")
#: search settings forwarded to `Library.search` (and echoed in the answer) only when the user gives them
OPTIONAL_SETTINGS = ("rerank", "rerank_depth", "precursor_tolerance", "ion_mode")


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
    """Build the FastAPI app serving `library` (a `llm4ms.library.Library`).

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
    app.state.request_models = {}  # name -> pydantic model of a body read by hand (see `_request_body`)
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

    def status_error(status: int):
        async def handler(request, exc: Exception):
            return error(status, str(exc))
        return handler

    # our errors by HTTP status; Starlette picks the most specific class, so the Llm4msError entry is the fallback
    for cls, status in ((TooLarge, 413), (TooManySpectra, 413), (InvalidSetting, 422), (BadRequest, 400),
                        (Llm4msError, 400)):
        app.add_exception_handler(cls, status_error(status))

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
    mass: Optional[float] = Field(None, allow_inf_nan=False, strict=True,
                                  description="molecular mass in Da, > 0 (for the mass filter)")
    metadata: dict[str, Union[StrictStr, StrictBool, StrictInt, FiniteFloat, None]] = Field(
        default_factory=dict, description="more metadata (MSP-style keys, text or number values)")


class SearchSettings(BaseModel):
    """The settings of one search, sent as JSON or as form fields. Their types are checked here; which values
    a search accepts (k range, mass and mass tolerance rules) is `llm4ms.query_checks.check_search_settings`."""

    model_config = ConfigDict(extra="forbid")
    text: Optional[str] = Field(None, description="pasted MSP/MGF/JCAMP-DX text or a two-column peak list")
    k: int = Field(10, strict=True, description="hits per query, 1 to the server's max_k (GET /api/library)")
    mass: Optional[float] = Field(None, allow_inf_nan=False, strict=True,
                                  description="query molecular mass for the filter (Da, > 0; needs mass_tolerance)")
    mass_tolerance: Optional[float] = Field(None, allow_inf_nan=False, strict=True,
                                            description="mass filter half-width (Da, >= 0)")
    min_score: Optional[float] = Field(None, allow_inf_nan=False, strict=True,
                                       description="drop hits scoring below this")
    rerank: Optional[str] = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                  description="re-score candidates by this classic similarity alone (as "
                                              "`llm4ms search --rerank`); default: the library model's ranking")
    rerank_depth: Optional[int] = Field(None, strict=True,
                                        description="candidates re-scored per query (`--rerank-depth`), >= 1")
    precursor_tolerance: Optional[str] = Field(None, max_length=40, examples=["10ppm", "0.01Da"],
                                               description="MS/MS: only hits whose precursor m/z is within this of "
                                                           "the query's (`--precursor-tolerance`, ppm or Da); "
                                                           "default: analogue search")
    ion_mode: Optional[str] = Field(None, max_length=20, description="MS/MS: only hits of this ion mode, positive "
                                                                     "or negative (`--ion-mode`)")


#: the fields of `SearchSettings` that are search parameters (not query input)
SETTINGS = tuple(name for name in SearchSettings.model_fields if name != "text")


class SearchRequest(SearchSettings):
    """POST /api/search as JSON: peak lists and/or pasted text, plus search settings."""

    spectra: list[SpectrumIn] = Field(default_factory=list, description="query spectra as peak lists")


_INT = re.compile(r"[+-]?[0-9]{1,18}")


class SearchUpload(SearchSettings):
    """POST /api/search as multipart/form-data: spectrum files and/or pasted text, settings as form fields.

    Form values are text, read as numbers and names of the JSON request's types (an empty field counts as not
    sent).
    """

    model_config = ConfigDict(extra="ignore")  # a form's other fields are not read
    files: list[UploadFile] = Field(default_factory=list, description=(
        "spectrum files (" + " ".join(ext for exts in EXTENSIONS.values() for ext in exts) + ", optionally .gz)"))

    @field_validator("files", mode="before")
    @classmethod
    def _only_files(cls, value: Any) -> Any:
        return [item for item in value if not isinstance(item, str)] if isinstance(value, list) else value

    @field_validator("k", "rerank_depth", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> int:
        if not isinstance(value, str) or not _INT.fullmatch(value.strip()):
            raise PydanticCustomError("whole_number", "must be a whole number, got {value}", {"value": _shown(value)})
        return int(value)

    @field_validator("mass", "mass_tolerance", "min_score", mode="before")
    @classmethod
    def _finite_number(cls, value: Any) -> float:
        try:
            number = float(value) if isinstance(value, str) else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise PydanticCustomError("finite_number", "must be a finite number, got {value}",
                                      {"value": _shown(value)})
        return number

    @field_validator("text", "rerank", "precursor_tolerance", "ion_mode", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise PydanticCustomError("text", "must be text, got {value}", {"value": _shown(value)})
        return value


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
                           "max_k": limits.max_k},
                "formats": {name: list(extensions) for name, extensions in EXTENSIONS.items()}}

    search_body = _request_body(app, {"application/json": SearchRequest, "multipart/form-data": SearchUpload})
    mirror_body = _request_body(app, {"application/json": MirrorRequest})

    @app.post("/api/search", summary="Search query spectra (JSON peak lists, pasted text, or file upload)",
              openapi_extra=search_body)
    async def search(request: Request) -> Response:
        params, queries = await _parse_search(app, request, limits)
        started = time.perf_counter()
        results = await _in_thread(app, "search", _run_search, app, queries, params)
        echo = {key: params[key] for key in OPTIONAL_SETTINGS if params.get(key) is not None}
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


_SCHEMAS = "#/components/schemas/"


def _request_body(app: Any, content: dict[str, type]) -> dict[str, Any]:
    """`openapi_extra` for an endpoint that reads its body by hand: per content type, the pydantic model that
    validates it. `_add_openapi_schemas` publishes each model's own JSON schema, so the two cannot differ."""
    app.state.request_models.update({model.__name__: model for model in content.values()})
    return {"requestBody": {"required": True, "content": {
        ctype: {"schema": {"$ref": _SCHEMAS + model.__name__}} for ctype, model in content.items()}}}


def _add_openapi_schemas(app: Any) -> None:
    """Add the JSON schemas of the request models named by `_request_body` to the generated OpenAPI document."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in app.state.request_models.items():
            request_schema = model.model_json_schema(ref_template=_SCHEMAS + "{model}")
            components.update(request_schema.pop("$defs", {}))
            components[name] = request_schema
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
    """A JSON body (parsed with the depth limit) validated by `model`."""
    return _validate(model, parse_json(raw))


def _validate(model: Any, payload: Any) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise RequestValidationError(err.errors(include_url=False)) from None


def _form_payload(form: Any) -> dict[str, Any]:
    """The fields of `SearchUpload` a form sends (an empty field counts as not sent; files as a list)."""
    payload: dict[str, Any] = {"files": form.getlist("files")}
    for name in SearchUpload.model_fields:
        value = form.get(name)
        if name != "files" and value is not None and not (isinstance(value, str) and not value.strip()):
            payload[name] = value
    return payload


async def _parse_search(app: Any, request: Request, limits: Limits) -> tuple[dict[str, Any], list[Spectrum]]:
    """Search parameters and query spectra from a JSON body or a multipart upload.

    Only receiving the body happens on the event loop; reading spectra runs in a worker thread.
    """
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_files=limits.max_spectra, max_part_size=limits.max_bytes)
        try:
            body = _validate(SearchUpload, _form_payload(form))
            params = _check_params(body, limits)
            uploads = []
            for upload in body.files:
                data = await upload.read()
                if not data and not upload.filename:
                    continue  # an empty file input
                uploads.append((data, upload.filename or "upload"))
        finally:
            await form.close()
        queries = await _in_thread(app, "parse", _read_inputs, body.text, uploads, limits)
    elif ctype.startswith("application/json"):
        raw = await request.body()
        params, queries = await _in_thread(app, "parse", _read_json_search, raw, limits)
    else:
        raise Llm4msError("send the search as application/json or multipart/form-data (file upload) "
                          f"(got {ctype or 'no content type'!r})")
    return params, queries


def _check_params(body: SearchSettings, limits: Limits) -> dict[str, Any]:
    """The search parameters of a request, checked by `llm4ms.query_checks` within this server's limits."""
    params = {name: getattr(body, name) for name in SETTINGS}
    check_search_settings(params["k"], mass=params["mass"], mass_tolerance=params["mass_tolerance"],
                          min_score=params["min_score"], rerank_depth=params["rerank_depth"], max_k=limits.max_k,
                          max_rerank_depth=limits.max_rerank_depth,
                          precursor_tolerance=params["precursor_tolerance"], ion_mode=params["ion_mode"])
    return params


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
    params = _check_params(body, limits)
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
    """`Library.search` with the library's default ranking; ranking and MS/MS options only as the user gave them."""
    masses = [params["mass"]] * len(queries) if params["mass"] is not None else None
    chosen = {key: params[key] for key in OPTIONAL_SETTINGS if params.get(key) is not None}
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
    """The hits as the CSV `llm4ms search --out hits.csv` writes (`llm4ms.report.write_hits_to`), in memory."""
    from llm4ms.report import write_hits_to

    buffer = io.StringIO(newline="")
    write_hits_to(results, buffer, "csv")
    return buffer.getvalue()


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
