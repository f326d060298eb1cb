"""Who is calling, and whether they may call now: the same checks for every way in (the HTTP
API, held answers and live sessions).

- `identify`: the caller of an HTTP request, from its Authorization header.
- `check_token`: the identity a bearer token stands for, or a 401. Refused credentials are
  counted per address; past INVALID_TOKENS_PER_MINUTE the address's unknown tokens get 429
  without another database lookup, so guessing tokens costs the guesser, not the database. A
  valid token from that address still works (functions/access.py, KnownTokens).
- `limit`: the API's rate limit, per token (or per address without one).
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from engine.errors import TransportError
from engine.ratelimit import retry_after
from engine.runtime import ANONYMOUS, Identity, database_refusal
from functions.access import authenticate_token

WINDOW = 60  # seconds: both limits are per minute


def identify(app: Flask, authorization: str | None, address: str | None) -> Identity:
    """The caller, from the request's Authorization header."""
    if authorization is None:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        _refused(app, address, TransportError(
            401, "Unauthenticated", "Authorization must be 'Bearer <token>'"))
    return check_token(app, token.strip(), address)


def check_token(app: Flask, raw: str, address: str | None) -> Identity:
    """The identity of a bearer token; a TransportError when it is refused or the address
    has sent too many refused credentials (checked before any database lookup)."""
    try:
        identity = authenticate_token(app, raw, lambda: _not_guessing(app, address))
    except DBAPIError as error:  # down, or not migrated (SchemaNotReady)
        raise database_refusal(error, app.extensions["catalog_db"].engine) or _unavailable(
        ) from None
    except SQLAlchemyError:
        raise _unavailable() from None
    if identity is None:
        _refused(app, address, TransportError(
            401, "InvalidToken", "The token is unknown, expired or revoked"))
    return identity


def _unavailable() -> TransportError:
    return TransportError(503, "Unavailable", "The catalog database is unavailable")


def _key(address: str | None) -> str:
    return f"refused-credentials:{address}"


def _not_guessing(app: Flask, address: str | None) -> None:
    """Before a token is looked up: refuse an address past its refused credentials."""
    per_minute = app.config["INVALID_TOKENS_PER_MINUTE"]
    if per_minute:
        count, left = app.extensions["counters"].count(_key(address), WINDOW)
        if count >= per_minute:
            raise _too_many(per_minute, left)


def _refused(app: Flask, address: str | None, error: TransportError):
    """Count a refused credential against its address, and raise the refusal (a 429 once the
    address is past its limit)."""
    per_minute = app.config["INVALID_TOKENS_PER_MINUTE"]
    if per_minute:
        count, left = app.extensions["counters"].hit(_key(address), WINDOW)
        if count > per_minute:
            raise _too_many(per_minute, left)
    raise error


def _too_many(per_minute: int, left: float) -> TransportError:
    return TransportError(
        429, "RateLimited",
        f"More than {per_minute} refused tokens a minute from this address; retry in "
        f"{retry_after(left)} s", {"Retry-After": retry_after(left)})


def limit(app: Flask, identity: Identity, address: str | None, calls: int = 1) -> None:
    """The API's rate limit: per token, or per address for anonymous callers. `calls`: what
    is counted (a call; more for what a costly one weighed: `count_weight`)."""
    per_minute = app.config["RATE_LIMIT_PER_MINUTE"]
    if not per_minute:
        return
    key = identity.name if identity.kind == "token" else f"address:{address}"
    count, left = app.extensions["counters"].take(f"api:{key}", WINDOW, per_minute, calls)
    if count > per_minute:
        raise TransportError(
            429, "RateLimited",
            f"More than {per_minute} requests a minute; retry in {retry_after(left)} s",
            {"Retry-After": retry_after(left)},
        )


def count_weight(app: Flask, identity: Identity, address: str | None, weight: int) -> None:
    """Count what a call weighed past the one call `limit` counted before it ran
    (engine.runtime.Context.weigh), for the caller it was computed for. The call is answered;
    the caller's next ones are refused sooner."""
    if weight > 1:
        try:
            limit(app, identity, address, weight - 1)
        except TransportError:
            pass  # past the limit now: its next call is refused
