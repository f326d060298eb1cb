"""The OpenAPI 3.1 document of the function endpoints, generated from the functions' validators."""

from __future__ import annotations

from engine.errors import ERROR_CODES
from engine.runtime import REGISTRY, Function

TRANSPORT_ERROR = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}
RESULT = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"status": {"const": "success"}, "value": {},
                           "logLines": {"type": "array", "items": {"type": "string"}},
                           # A mutation's commit timestamp (null if it could not be taken):
                           # a later query's `minTs` (README, "A fleet of hosts").
                           "ts": {"type": ["integer", "null"], "minimum": 0}},
            "required": ["status", "value"],
        },
        {
            "type": "object",
            "properties": {
                "status": {"const": "error"},
                "errorMessage": {"type": "string"},
                "errorData": {
                    "type": "object",
                    "properties": {"code": {"enum": sorted(ERROR_CODES)},
                                   "field": {"type": "string"}},
                    "required": ["code"],
                },
                "logLines": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["status", "errorMessage", "errorData"],
        },
    ]
}
TRANSPORT_STATUSES = {
    "400": "The request is malformed (not JSON, wrong format or shape)",
    "401": "Missing or invalid credentials",
    "403": "The credentials lack the scope",
    "404": "No such public function",
    "408": "The body took longer than REQUEST_READ_SECONDS to arrive",
    "413": "The body is larger than 1 MiB",
    "415": "The body is compressed (Content-Encoding); send it as it is",
    "429": "Rate limited (calls, or refused tokens from the address); see Retry-After",
    "503": "The database is unavailable, writes kept conflicting, `minTs` was not reached "
           "in time, or the address leaves answers untaken (SlowClient); see Retry-After",
}


def run_path(fn: Function) -> str:
    module, name = fn.name.split(":")
    return f"/api/run/{module}/{name}"


def _operation(fn: Function) -> dict:
    responses = {"200": {"description": "The function ran: its value, or a function error",
                         "content": {"application/json": {"schema": {"$ref":
                                                                     "#/components/schemas/Result"}}}}}
    for status, text in TRANSPORT_STATUSES.items():
        responses[status] = {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/TransportError"}}}}
    operation = {
        "operationId": fn.name,
        "summary": fn.summary,
        "tags": [fn.name.split(":")[0]],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {"args": fn.args.schema(), "format": {"enum": ["json"]}},
            "required": ["args"],
            "additionalProperties": False,
        }}}},
        "responses": responses,
    }
    if fn.scope is not None:
        operation["security"] = [{"bearer": []}]
        operation["description"] = f"Needs the `{fn.scope}` scope."
    return operation


def document() -> dict:
    public = sorted((fn for fn in REGISTRY.values() if not fn.internal), key=lambda f: f.name)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Model Catalog",
            "version": "1",
            "description": "Convex-style functions. Each is also callable at /api/query, "
                           "/api/mutation or /api/function with {path, args, format}. A "
                           "mutation's answer carries `ts`; a query sent with `minTs` (at "
                           "/api/query, /api/function or here) is answered from a state that "
                           "includes that write (heard of, or read afresh after "
                           "MIN_TS_WAIT_SECONDS), or 503 NotYetSeen for a ts no write was "
                           "answered.",
        },
        "paths": {run_path(fn): {"post": _operation(fn)} for fn in public},
        "components": {
            "schemas": {"Result": RESULT, "TransportError": TRANSPORT_ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
