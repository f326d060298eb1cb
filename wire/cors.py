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


def allowed(origin: str | None, origins: frozenset[str]) -> list[tuple[str, str]]:
    """The headers that let the page at `origin` read an answer (none when it may not; with
    a list, `Vary: Origin` whatever the origin, so a cache keeps each page's answer apart)."""
    if not origins:
        return []
    if ANY in origins:
        return [("Access-Control-Allow-Origin", ANY),
                ("Access-Control-Expose-Headers", EXPOSED)] if origin else []
    if origin and origin.lower() in origins:
        return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                ("Access-Control-Expose-Headers", EXPOSED)]
    return [("Vary", "Origin")]


def preflight(environ: dict, origins: frozenset[str]) -> list[tuple[str, str]]:
    """An `OPTIONS` request's answer headers: what a function call may carry, when its page is
    allowed to make one."""
    headers = [("Allow", "POST, OPTIONS")]
    let = allowed(environ.get("HTTP_ORIGIN"), origins)
    if environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD") and any(
            name == "Access-Control-Allow-Origin" for name, _ in let):
        let = [pair for pair in let if pair[0] != "Access-Control-Expose-Headers"]
        let += [("Access-Control-Allow-Methods", "POST"),
                ("Access-Control-Allow-Headers", REQUEST_HEADERS),
                ("Access-Control-Max-Age", PREFLIGHT_SECONDS)]
    return headers + let
