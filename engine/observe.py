"""Observability: request ids, structured JSON logs (short text lines on a terminal), and
Prometheus metrics at /metrics.

Under gunicorn, metrics are aggregated over every worker (prometheus_client's multiprocess
mode; deploy/gunicorn.conf.py prepares its folder).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, lru_cache
from json.encoder import encode_basestring_ascii

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import values as metric_values

from engine import process

log = logging.getLogger("catalog.request")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CONTEXT_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "function", "kind",
                  "outcome", "code", "caller", "email", "token", "scopes")

# The id of the request being answered on this thread, for every line logged while it is.
CURRENT_REQUEST: ContextVar[str | None] = ContextVar("request_id", default=None)

if getattr(metric_values.ValueClass, "_multiprocess", False):
    # Under gunicorn every count first checks that its process was not forked since (its files
    # are then reset): by asking engine/process.py, not the kernel. (prometheus_client's hook
    # for this; the ids it gets are the real ones.) It must come before any metric is made:
    # a metric made with the old class would write the same per-process file.
    metric_values.ValueClass = metric_values.MultiProcessValue(process.pid)

CALLS = Counter("catalog_function_calls", "Function calls over HTTP",
                ["function", "outcome"])
ERRORS = Counter("catalog_function_errors", "Function and transport errors by code",
                 ["function", "code"])
LATENCY = Histogram("catalog_function_duration_seconds", "Time to answer a function call",
                    ["function"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the request id is added inside a request."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = CURRENT_REQUEST.get()
        if rid is not None:
            out["request_id"] = rid
        fields = record.__dict__
        for name in CONTEXT_FIELDS:
            if name in fields:
                out[name] = fields[name]
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Short lines for a person at a terminal: `12:04:05 POST /api/query 200 1.3 ms
    pricing:getCreditCost`; other lines are `12:04:05 warning catalog.wire: message`."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = record.__dict__
        if "status" in fields and "path" in fields:
            line = (f"{clock} {fields['method']} {fields['path']} {fields['status']} "
                    f"{fields['duration_ms']} ms")
            if fields.get("function"):
                line += f" {fields['function']}"
            if fields.get("code"):
                line += f" {fields['code']}"
        else:
            line = f"{clock} {record.levelname.lower()} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def formatter(kind: str, stream) -> logging.Formatter:
    """CATALOG_LOG_FORMAT: `json`, `text`, or `auto` (text when the stream is a terminal)."""
    if kind == "auto":
        kind = "text" if stream.isatty() else "json"
    return TextFormatter() if kind == "text" else JsonFormatter()


class LineHandler(logging.Handler):
    """Log lines to a file descriptor, written in batches.

    A request only formats its line and queues it; a background thread writes what is queued
    with one write(2) every FLUSH_SECONDS, so request threads never wait on the log. Warnings
    and errors are written at once (after whatever was queued before them), and everything
    queued is written when the process exits cleanly (logging.shutdown flushes handlers).
    """

    FLUSH_SECONDS = 0.1

    def __init__(self, stream) -> None:
        super().__init__()
        self.fd = stream.fileno()
        self._queued: deque[str] = deque()
        self._writer_pid: int | None = None  # the process whose writer thread is running
        self._write_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging's own rule: never fail the caller
            self.handleError(record)
            return
        self.queue(line, record.levelno)

    def queue(self, line: str, levelno: int) -> None:
        """A formatted line, to be written with the next batch (at once from WARNING up)."""
        self._queued.append(line + "\n")
        if levelno >= logging.WARNING:
            self.flush()
        elif self._writer_pid != process.pid():  # first line, or first since a fork
            self._writer_pid = process.pid()
            threading.Thread(target=self._write_forever, name="log-writer", daemon=True).start()

    def flush(self) -> None:
        with self._write_lock:
            lines = [self._queued.popleft() for _ in range(len(self._queued))]
            data = "".join(lines).encode()
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError:
                pass  # the log is gone (a closed pipe): requests go on

    def _write_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush()


@dataclass(frozen=True)
class CallNote:
    """What a function call did, for its log line and the metrics."""

    function: str
    outcome: str
    code: str | None
    caller: str


@cache
def _series(function: str, outcome: str, code: str | None) -> tuple:
    """The metric series of one kind of call (labels() is not free; the kinds are few)."""
    return (CALLS.labels(function, outcome), LATENCY.labels(function),
            ERRORS.labels(function, code) if code else None)


# Requests logged at DEBUG: health checks and static files (a console page brings a dozen).
QUIET_PATHS = ("/healthz", "/admin/static/", "/static/", "/favicon.ico")


class RequestIds:
    """New request ids: 32 hex digits, a random half drawn once per process and a count.

    Unique across the processes of a fleet as random ids are, without a system call for
    randomness on every request (which cost more than the rest of a held answer's
    bookkeeping)."""

    def __init__(self) -> None:
        self.draw()
        os.register_at_fork(after_in_child=self.draw)  # gunicorn's workers are forked

    def draw(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFFFFFF:016x}"


new_request_id = RequestIds()


def request_id(given: str) -> str:
    """The caller's X-Request-Id when it is a plain token, else a new one."""
    return given if given and REQUEST_ID.fullmatch(given) else new_request_id()


def record(rid: str, method: str, path: str, status: int, elapsed: float,
           call: CallNote | None) -> None:
    """A finished request's metrics and log line."""
    if call is not None:
        calls, latency, errors = _series(call.function, call.outcome, call.code)
        calls.inc()
        latency.observe(elapsed)
        if errors is not None:
            errors.inc()
    level = logging.DEBUG if path.startswith(QUIET_PATHS) else logging.INFO
    if not log.isEnabledFor(level):
        return
    duration_ms = round(elapsed * 1000, 2)
    writer = _only_writer()
    if writer is not None:
        # The line JsonFormatter would make of this record, made without the record: on a held
        # answer, the logging machinery (a LogRecord, handlers, a formatter) cost as much as
        # the rest of the request's own work, and json.dumps of the fields four times this.
        writer.queue(_request_line(level, rid, method, path, status, duration_ms, call), level)
        return
    fields = {"request_id": rid, "method": method, "path": path, "status": status,
              "duration_ms": duration_ms,
              "function": call and call.function, "outcome": call and call.outcome,
              "code": call and call.code, "caller": call and call.caller}
    log.handle(log.makeRecord(log.name, level, "", 0, "request", (), None, extra=fields))


def _text(value: str | None) -> str:
    """A JSON string (or null), spelt as json.dumps spells it."""
    return "null" if value is None else encode_basestring_ascii(value)


def _request_line(level: int, rid: str, method: str, path: str, status: int,
                  duration_ms: float, call: CallNote | None) -> str:
    """json.dumps of the request's JsonFormatter fields, in their order, written out."""
    what = _NO_CALL if call is None else _what(call.function, call.outcome, call.code,
                                               call.caller)
    return (f'{{"ts": {round(time.time(), 3)!r}, "level": "{_LEVELS[level]}", '
            f'"logger": "{log.name}", "message": "request", "request_id": {_text(rid)}, '
            f'"method": {_text(method)}, "path": {_text(path)}, "status": {int(status)}, '
            f'"duration_ms": {float(duration_ms)!r}, {what}}}')


_NO_CALL = '"function": null, "outcome": null, "code": null, "caller": null'


@lru_cache(maxsize=1024)
def _what(function: str | None, outcome: str | None, code: str | None,
          caller: str | None) -> str:
    """The line's call fields, spelt once per kind of call and caller (a function's name or
    "-", an outcome, an error code, a token's or an account's name: few, and none a client's
    free text)."""
    return (f'"function": {_text(function)}, "outcome": {_text(outcome)}, '
            f'"code": {_text(code)}, "caller": {_text(caller)}')


_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info"}


def _only_writer() -> LineHandler | None:
    """The JSON line writer, when it alone hears request lines (as it does in production;
    the tests, a terminal's text lines or added handlers take the logging path)."""
    if log.handlers or log.filters or not log.propagate:
        return None
    handlers = log.parent.handlers if log.parent is not None else ()
    if len(handlers) != 1 or log.parent.filters or log.parent.propagate:
        return None
    handler = handlers[0]
    if (type(handler) is LineHandler and type(handler.formatter) is JsonFormatter
            and not handler.filters and handler.level <= logging.INFO):
        return handler
    return None


def _begin() -> None:
    g.request_id = request_id(request.headers.get("X-Request-Id", ""))
    g.started = time.perf_counter()
    g.request_token = CURRENT_REQUEST.set(g.request_id)


def _finish(response: Response) -> Response:
    state = g._get_current_object().__dict__  # one lookup instead of one per field
    rid = response.headers["X-Request-Id"] = state.get("request_id", "")
    elapsed = time.perf_counter() - state.get("started", time.perf_counter())
    req = request._get_current_object()
    record(rid, req.method, req.path, response.status_code, elapsed, None)
    return response


def _forget(_error: BaseException | None) -> None:
    token = g.get("request_token")
    if token is not None:
        CURRENT_REQUEST.reset(token)


def metrics() -> Response:
    if current_app.config["PROMETHEUS_MULTIPROC_DIR"]:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    # content_type, not mimetype: CONTENT_TYPE_LATEST names its charset already
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    catalog = logging.getLogger("catalog")
    if not catalog.handlers:
        handler = LineHandler(sys.stderr)
        handler.setFormatter(formatter(app.config["CATALOG_LOG_FORMAT"], sys.stderr))
        catalog.addHandler(handler)
        catalog.setLevel(app.config["CATALOG_LOG_LEVEL"].upper())
        catalog.propagate = False
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_forget)
    app.add_url_rule("/metrics", "metrics", metrics)
