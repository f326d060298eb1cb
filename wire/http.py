"""The wire: Convex's HTTP API (`/api/query`, `/api/mutation`, `/api/function`) and `/healthz`."""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

from flask import Blueprint, Flask, Response, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES, parse_accept_header
from werkzeug.wsgi import get_content_length

from db import get_db
from db.revision import NOT_READY, schema_state
from engine.errors import FunctionError, TransportError
from engine.fleet import check_min_ts, require
from engine.marks import Generation, Marks, once
from engine.observe import CURRENT_REQUEST, CallNote, record, request_id
from engine.runtime import ANONYMOUS, REGISTRY, Identity, canonical_path, run
from engine.values import DecodeError, decode_convex, parse_json
from wire import cors
from wire.bodies import BODY
from wire.callers import count_weight, identify, limit

log = logging.getLogger("catalog.wire")
bp = Blueprint("api", __name__)
FORMATS = (None, "json", "convex_encoded_json")


def _encode(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def _json(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(_encode(payload), status=status, headers=headers, mimetype="application/json")


def parse_request(raw: bytes, path: str | None = None) -> tuple[str, Any, int | None]:
    """The function path, arguments and `minTs` (None when absent) of a request; `path` when
    the URL names the function."""
    if not raw.strip():
        raise TransportError(400, "BadJsonBody", 'The request body is empty: send a JSON object '
                             '{"path": "module:function", "args": {...}}')
    try:
        body = parse_json(raw)
    except DecodeError as error:
        raise TransportError(400, "BadJsonBody", f"The request body {error}") from None
    if not isinstance(body, dict):
        raise TransportError(400, "BadJsonBody", "The request body must be a JSON object")
    path, fmt = path or body.get("path"), body.get("format")
    if not isinstance(path, str) or not 0 < len(path) <= 200:
        raise TransportError(
            400, "BadPath", "'path' must name a function, e.g. models:getActiveModels"
        )
    path = canonical_path(path)
    if fmt not in FORMATS:
        raise TransportError(
            400, "BadFormat", "'format' must be 'json' or 'convex_encoded_json'"
        )
    args = body.get("args", {})
    if isinstance(args, list):
        if len(args) != 1:
            raise TransportError(400, "BadArgs", "'args' as an array must hold exactly one object")
        args = args[0]
    if fmt == "convex_encoded_json":
        try:
            args = decode_convex(args)
        except DecodeError as error:
            raise TransportError(400, "BadConvexValue", str(error)) from None
    return path, args, check_min_ts(body.get("minTs"))


@dataclass
class Answer:
    function: str  # a metrics label
    outcome: str
    code: str | None
    body: bytes
    expires: int | None = None  # ms: the answer changes by itself then (a scheduled price)
    _gzipped: bytes | None = field(default=None, repr=False)

    def current(self) -> bool:
        return self.expires is None or time.time() * 1000 < self.expires

    def gzipped(self) -> bytes:
        """The body compressed, once per answer (threads racing here compress it alike)."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


COMPRESS_ABOVE = 1024  # bytes: smaller answers are sent as they are


@lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    return parse_accept_header(accept_encoding).quality("gzip") > 0


def delivery(answer: Answer, identity: Identity,
             accept_encoding: str | None) -> tuple[bytes, list[tuple[str, str]]]:
    """An answer's bytes for this caller, and the headers that go with them: answers larger
    than COMPRESS_ABOVE are sent gzipped to callers that accept it (browsers, fetch, the Convex
    client); authenticated answers are not for shared caches."""
    body, headers = answer.body, [("Content-Type", "application/json")]
    if identity.kind != "anonymous":
        headers.append(("Cache-Control", "no-store"))
    if len(body) > COMPRESS_ABOVE:
        headers.append(("Vary", "Accept-Encoding"))
        if accept_encoding and accepts_gzip(accept_encoding):
            body = answer.gzipped()
            headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return body, headers


class Answers:
    """Answers to public queries, kept by request while the catalog and statistics are unchanged.

    Like Convex's query cache: a public query's answer depends only on its arguments and the
    catalog, so the same request gets the same bytes until a change bumps a mark
    (engine/marks.py), without parsing, validating or running anything again.
    """

    LIMIT = 4096  # answers per generation
    LIMIT_BYTES = 64 * 1024 * 1024  # of answers per generation: requests that differ only in
    # their spelling (spaces, key order) are held apart, and an answer may be megabytes
    LARGEST_REQUEST = 4096  # bytes; larger requests are answered afresh

    def __init__(self, marks: Marks) -> None:
        self._held = Generation(marks, "catalog", "stats", new=_HeldAnswers)

    def held(self, kind: str | None, url_path: str | None, raw: bytes) -> Answer | None:
        """The answer held for exactly this request, if any."""
        if len(raw) > self.LARGEST_REQUEST:
            return None
        answer = self._held.values().get((kind, url_path, raw))
        return answer if isinstance(answer, Answer) and answer.current() else None

    def answer(self, kind: str | None, url_path: str | None, raw: bytes,
               identity: Identity, weigh: Callable[[int], None]) -> Answer:
        """The answer held for this request, or one computed now; `weigh(calls)` is told
        what computing it weighed (Context.weigh), in the one thread that computes it."""
        held = self._held.values()  # before anything is read: see Generation
        key = (kind, url_path, raw)
        answer = held.get(key)
        if isinstance(answer, Answer):
            if answer.current():
                return answer
            held.pop(key, None)  # it expired: compute it anew
        path, args, min_ts = parse_request(raw, url_path)
        if min_ts is not None:  # waited for already (Api._see): not kept, each is one of a kind
            require(min_ts)
            return _answer(path, args, kind, identity, weigh)
        fn = REGISTRY.get(path)
        run = partial(_answer, path, args, kind, identity, weigh)
        if (fn is not None and fn.kind == "query" and fn.scope is None
                and len(raw) <= self.LARGEST_REQUEST):
            # A public query: its answer is the same for every caller until a mark moves. (A
            # call refused on the way, e.g. an internal function, raises and is never kept.)
            return once(held, key, run, keep=partial(held.room, self.LIMIT, self.LIMIT_BYTES))
        return run()


class _HeldAnswers(dict):
    """A generation of held answers, and how many bytes they hold."""

    size = 0

    def room(self, count: int, size: int, answer: Answer) -> bool:
        """Whether `answer` is kept: while the generation holds fewer than `count` answers
        and `size` bytes (counted as kept; threads racing here may pass it by an answer)."""
        if len(self) > count or self.size + len(answer.body) > size:
            return False
        self.size += len(answer.body)
        return True


def _answer(path: str, args: Any, kind: str | None, identity: Identity,
            weigh: Callable[[int], None]) -> Answer:
    """Run the function, and its answer as the wire carries it; `weigh` is told what it
    weighed."""
    try:
        outcome = run(path, args, identity=identity, source="http", kind=kind, public=True)
    except FunctionError as error:
        weigh(error.weight)
        return Answer(_label(path), "error", error.code,
                      _encode({"status": "error", "errorMessage": error.message,
                               "errorData": error.data, "logLines": []}).encode(),
                      error.expires)
    weigh(outcome.weight)
    body = {"status": "success", "value": outcome.value, "logLines": []}
    if REGISTRY[path].kind == "mutation":
        body["ts"] = outcome.ts  # a later query's `minTs`, for read-your-writes on any host
    return Answer(_label(path), "success", None, _encode(body).encode(), outcome.expires)


class Api:
    """WSGI, in front of Flask: the one pipeline every function call goes through.

    A call (`POST /api/query`, `/api/mutation`, `/api/function`, `/api/run/<module>/<name>`)
    is handled here from start to end, whatever it is: a held answer, a computed one or a
    mutation. In order: the request gets its id (a browser's preflight is answered then:
    wire/cors.py); its body is read (bounded by MAX_CONTENT_LENGTH); the caller is identified
    by its token and held to the rate limit (wire/callers.py); the answer is taken from memory
    when held (Answers), computed otherwise; it is delivered (compressed when large and
    accepted; readable by the web page that asked, when its origin is allowed); and the
    request gets its one log line and its metrics (engine/observe.py). Flask never sees a
    call: it is left to the console, the pages, `/api/sync` and the documents under `/api/`.
    """

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app, self.wsgi_app = app, wsgi_app
        self.answers: Answers = app.extensions["answers"]
        self.fleet = app.extensions["fleet"]

    def __call__(self, environ: dict, start_response):
        url = environ.get("PATH_INFO", "")
        route = call_route(url)
        if route is None:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        token = CURRENT_REQUEST.set(rid)  # for whatever the call logs on the way
        asks = environ.get("REQUEST_METHOD") == "OPTIONS"  # a browser asks what it may send
        try:
            if asks:
                status, headers, body, note = "204 No Content", cors.preflight(
                    environ, self.app.config["API_ALLOWED_ORIGINS"]), b"", None
            else:
                status, headers, body, note = self._call(environ, *route)
        except Exception:  # a bug: logged, and answered in JSON, as Flask's handler would
            log.exception("unhandled error on %s", url)
            status, headers, body = _transport_parts(TransportError(
                500, "InternalError", "Internal error"))
            note = None
        finally:
            CURRENT_REQUEST.reset(token)
        if not asks:  # a web page's call carries an Origin (other clients' calls do not)
            headers += cors.allowed(environ.get("HTTP_ORIGIN"),
                                    self.app.config["API_ALLOWED_ORIGINS"])
        headers.append(("X-Request-Id", rid))
        record(rid, environ.get("REQUEST_METHOD", ""), url, int(status[:3]),
               time.perf_counter() - started, note)
        start_response(status, headers)
        return [body]

    def _call(self, environ: dict, kind: str | None,
              path: str | None) -> tuple[str, list, bytes, CallNote | None]:
        identity = ANONYMOUS
        self.fleet.start()  # a worker hears the fleet's changes from its first call on
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise TransportError(405, "MethodNotAllowed",
                                     "A function is called with POST", {"Allow": "POST, OPTIONS"})
            encoding = environ.get("HTTP_CONTENT_ENCODING")  # absent on nearly every call
            if encoding and encoding.strip().lower() != "identity":
                raise TransportError(415, "UnsupportedContentEncoding", (
                    f"A request body is read as it is sent: Content-Encoding "
                    f"{json.dumps(encoding[:40])} is not taken; send the JSON uncompressed"),
                    {"Accept-Encoding": "identity"})
            raw = self._body(environ)
            if b'"minTs"' in raw or b"\\" in raw:  # (a key can be spelt only with escapes)
                self._see(raw)  # read-your-writes: first see the write, then the caller (so
                # a revocation that write followed applies to this very call)
            address = environ.get("REMOTE_ADDR")
            identity = identify(self.app, environ.get("HTTP_AUTHORIZATION"), address)
            limit(self.app, identity, address)
            answer = self.answers.held(kind, path, raw)
            if answer is None:
                with self.app.app_context():
                    answer = self.answers.answer(kind, path, raw, identity, partial(
                        count_weight, self.app, identity, address))
        except TransportError as error:
            return (*_transport_parts(error),
                    CallNote(_label(path), "rejected", error.code, identity.name))
        body, headers = delivery(answer, identity, environ.get("HTTP_ACCEPT_ENCODING"))
        return ("200 OK", headers, body,
                CallNote(answer.function, answer.outcome, answer.code, identity.name))

    def _see(self, raw: bytes) -> None:
        """Wait until this host has seen the request's `minTs` (a 503 after a bounded wait)."""
        try:
            body = parse_json(raw)
        except DecodeError:
            return  # parse_request reports it
        if isinstance(body, dict) and body.get("minTs") is not None:
            with self.app.app_context():
                require(check_min_ts(body["minTs"]))

    def _body(self, environ: dict) -> bytes:
        """The request body, whole (wire/bodies.py has read it already under gunicorn)."""
        largest = self.app.config["MAX_CONTENT_LENGTH"]
        read = environ.get(BODY)
        if read is not None and len(read) <= largest:
            return read
        length = get_content_length(environ)  # None when chunked, absent or not a number
        if length is None and "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return b""  # refused as an empty body by parse_request
        if length is None or length <= largest:
            raw = environ["wsgi.input"].read(largest + 1 if length is None else length)
            if len(raw) <= largest:
                return raw
        raise TransportError(413, "PayloadTooLarge",
                             f"The request body is larger than {largest} bytes")


def _transport_parts(error: TransportError) -> tuple[str, list[tuple[str, str]], bytes]:
    body = _encode({"code": error.code, "message": error.message}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
               *error.headers.items()]
    return f"{error.status} {HTTP_STATUS_CODES.get(error.status, '')}".rstrip(), headers, body


def _label(path: str | None) -> str:
    """A metrics label: a known function's name, never a caller's arbitrary string."""
    return path if path in REGISTRY else "-"


# Where calls arrive, and the kind each URL accepts (None: either).
CALL_URLS = {"/api/query": "query", "/api/mutation": "mutation", "/api/function": None}
RUN_URL = "/api/run/"  # + <module>/<function>: Convex's URL that names the function


def call_route(url: str) -> tuple[str | None, str | None] | None:
    """The kind and function path (None: named in the body) of a call URL; None for any other
    URL, which is Flask's."""
    if url in CALL_URLS:
        return CALL_URLS[url], None
    if url.startswith(RUN_URL) and url.isascii():
        module, _, name = url.removeprefix(RUN_URL).partition("/")
        if module and name and "/" not in name:
            return None, f"{module}:{name}"
    return None


@bp.get("/api/openapi.json")
def openapi() -> Response:
    from wire.openapi import document

    return _json(document())


@bp.get("/api/catalog.schema.json")
def catalog_schema() -> Response:
    from functions.catalog import file_schema

    return _json(file_schema())


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the database answers with this version's schema (or a newer release's, as in
    a rolling deploy); 503 when it is unreachable, or missing or behind (not migrated)."""
    try:
        with get_db().engine.connect() as conn:
            schema = schema_state(conn)
    except SQLAlchemyError:
        return _json({"status": "unavailable", "database": "unreachable"}, 503)
    if schema in ("missing", "behind"):
        return _json({"status": "unavailable", "database": "ok", "schema": schema,
                      "message": NOT_READY}, 503)
    return _json({"status": "ok", "database": "ok", "schema": schema})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.extensions["answers"] = Answers(app.extensions["catalog_marks"])
    app.wsgi_app = Api(app, app.wsgi_app)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if not request.path.startswith("/api/"):
            return error
        codes = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}
        message = error.description
        if error.code == 413:
            message = f"The request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        return _json({"code": codes.get(error.code, error.name.replace(" ", "")),
                      "message": message}, error.code or 400)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return _http_error(error)
        log.exception("unhandled error on %s", request.path)
        if request.path.startswith("/api/"):
            return _json({"code": "InternalError", "message": "Internal error"}, 500)
        return Response("Internal error", 500)
