"""The wire: the HTTP API and the Convex sync protocol over the functions, and their OpenAPI
document."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from wire import http, sync

    http.init_app(app)
    sync.init_app(app)
