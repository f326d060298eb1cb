"""Observability: request ids, structured JSON logs, and Prometheus metrics at /metrics.

Under gunicorn, metrics are aggregated over every worker (prometheus_client's multiprocess
mode; deploy/gunicorn.conf.py prepares its folder).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

log = logging.getLogger("catalog.request")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CONTEXT_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "function", "kind",
                  "outcome", "code", "caller", "email", "token", "scopes")

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
        if has_request_context() and "request_id" in g:
            out["request_id"] = g.request_id
        for name in CONTEXT_FIELDS:
            if name in record.__dict__:
                out[name] = record.__dict__[name]
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def note_call(function: str, outcome: str, code: str | None, caller: str) -> None:
    """What the request did, for its log line and the metrics."""
    g.function, g.outcome, g.code, g.caller = function, outcome, code, caller


def _begin() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    function = g.get("function")
    if function:
        outcome = g.get("outcome", "success")
        CALLS.labels(function, outcome).inc()
        LATENCY.labels(function).observe(elapsed)
        if g.get("code"):
            ERRORS.labels(function, g.code).inc()
    if request.path != "/healthz":
        log.info("request", extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2), "function": function,
            "outcome": g.get("outcome"), "code": g.get("code"), "caller": g.get("caller"),
        })
    return response


def metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    catalog = logging.getLogger("catalog")
    if not catalog.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        catalog.addHandler(handler)
        catalog.setLevel(os.environ.get("CATALOG_LOG_LEVEL", "INFO").upper())
        catalog.propagate = False
    app.before_request(_begin)
    app.after_request(_finish)
    app.add_url_rule("/metrics", "metrics", metrics)
