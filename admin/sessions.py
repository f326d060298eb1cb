"""The console's sessions: signed cookies, opened only for the console (never for the API)."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface


class ConsoleSessions(SecureCookieSessionInterface):
    """The API takes bearer tokens, never cookies: no session is opened (or signed) for it."""

    def open_session(self, app: Flask, request):
        if request.path.startswith("/api/"):
            return self.null_session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = ConsoleSessions()
