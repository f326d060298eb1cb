"""The two kinds of failure a caller can see: function errors and transport errors."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from db.engine import reason

# The documented set of `errorData.code` values a function error may carry.
ERROR_CODES = {
    "INVALID_ARGUMENT": "an argument is missing, extra, of the wrong type or out of range",
    "NOT_FOUND": "no model (or revision) with that id",
    "UNSUPPORTED_DURATION": "the model does not support that duration",
    "UNSUPPORTED_QUALITY": "the model does not support that quality",
    "INACTIVE": "the model is inactive or deleted, or its state does not allow the transition",
    "LOCKED": "the model is locked; unlock it first",
    "DEFAULT_REQUIRED": "the change would leave the catalog without a default model",
    "DUPLICATE": "a model with that modelId (in any case) already exists",
    "STALE_REVISION": "the model changed since the caller read it",
    "STALE_PLAN": "the catalog changed since the plan the caller applies was made: plan again",
    "FORBIDDEN": "the caller may not do this (or one of the changes a composite call makes)",
    "UNSUPPORTED_OPTION": "the model has no price for that option value (`supported` lists them)",
    "UNSUPPORTED_USAGE": "the model cannot take that kind of usage (`supported` lists them)",
    "NO_PRICE": "the model has no price in force at that moment",
    "INVALID_PRICE": "the model's price cannot price this request",
    "NO_MODEL": "no active model can do the request within the budget (`candidates` says why "
                "each was left out)",
}


class FunctionError(Exception):
    """A refusal by a function: HTTP 200 with status "error" on the wire."""

    # Until when a query's refusal holds (ms), when it depends on the time (no price in force
    # yet): the runtime sets it from the call's Context.valid_until, as for an answer.
    expires: int | None = None
    weight: int = 1  # what the refused call weighed (Context.weigh): NO_MODEL priced them all

    def __init__(self, code: str, message: str, *, field: str | None = None, **data: Any):
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.data: dict[str, Any] = {"code": code, **data}
        if field is not None:
            self.data["field"] = field


class TransportError(Exception):
    """A request the service could not run: a 4xx/503 with {"code", "message"}."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def for_operator(error: FunctionError | TransportError) -> str:
    """The message, with the database driver's own line when the database refused it ('password
    authentication failed for user ...'): for an operator's terminal, never a client's answer."""
    cause = error.__cause__
    if not isinstance(cause, DBAPIError):
        return error.message
    # A client is told to try again shortly; an operator is told why (a wrong password is
    # not fixed by waiting).
    said = "The catalog database is unavailable" if error.code == "Unavailable" else error.message
    return f"{said} ({reason(cause)})"
