"""The wire: the HTTP API and the Convex sync protocol over the functions, their OpenAPI
document, and the bounds that keep slow or hostile clients from starving them."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from wire import http, sync
    from wire.bodies import ClientDeadlines

    http.init_app(app)
    sync.init_app(app)
    app.wsgi_app = ClientDeadlines(app, app.wsgi_app)  # in front: nothing reads a body before it
