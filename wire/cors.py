"""Web pages on other origins calling the API from a browser (CORS).

The API takes its caller from a bearer token in `Authorization`, never from a cookie, so a page
on another origin can do nothing with it that a script elsewhere could not: by default any
origin may call (`API_ALLOWED_ORIGINS=*`), as Convex's own deployments allow. A list limits the
pages that may; `none` allows none. A preflight (`OPTIONS` with `Access-Control-Request-Method`)
is answered here without running anything; an answer to an allowed origin says so, and lets the
page read its request id and `Retry-After`.
"""

from __future__ import annotations

ANY = "*"  # API_ALLOWED_ORIGINS (config.py): any origin
# What the official clients send (ConvexHttpClient: Content-Type, Convex-Client; with setAuth,
# Authorization) and the request id a caller may choose.
REQUEST_HEADERS = "Authorization, Content-Type, Convex-Client, X-Request-Id"
EXPOSED = "X-Request-Id, Retry-After"
PREFLIGHT_SECONDS = "7200"  # how long a browser may reuse a preflight (Chromium's own cap)


def _allow_origin(origin: str | None, origins: frozenset[str]) -> str | None:
    """What `Access-Control-Allow-Origin` tells the page at `origin`: `*`, its own origin, or
    nothing (None) when it may not read the answer."""
    if not origin or not origins:
        return None
    if ANY in origins:
        return ANY
    return origin if origin.lower() in origins else None


def _vary(origins: frozenset[str]) -> list[tuple[str, str]]:
    """With a list of origins an answer depends on the Origin asking: a cache keeps each
    page's answer apart."""
    return [("Vary", "Origin")] if origins and ANY not in origins else []


def allowed(origin: str | None, origins: frozenset[str]) -> list[tuple[str, str]]:
    """The headers that let the page at `origin` read an answer (none when it may not)."""
    let = _allow_origin(origin, origins)
    readable = [("Access-Control-Allow-Origin", let),
                ("Access-Control-Expose-Headers", EXPOSED)] if let else []
    return readable + _vary(origins)


def preflight(environ: dict, origins: frozenset[str]) -> list[tuple[str, str]]:
    """An `OPTIONS` request's answer headers: what a function call may carry, when its page is
    allowed to make one."""
    origin = environ.get("HTTP_ORIGIN")
    let = _allow_origin(origin, origins)
    if not (let and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")):
        return [("Allow", "POST, OPTIONS"), *allowed(origin, origins)]  # no call to let
    return [("Allow", "POST, OPTIONS"), ("Access-Control-Allow-Origin", let), *_vary(origins),
            ("Access-Control-Allow-Methods", "POST"),
            ("Access-Control-Allow-Headers", REQUEST_HEADERS),
            ("Access-Control-Max-Age", PREFLIGHT_SECONDS)]
