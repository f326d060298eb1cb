"""The admin console: Flask-Admin over the catalog; signed in, CSRF-checked, changes by mutation."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime

from flask import Flask, g, render_template_string, request, session
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFError, CSRFProtect

from admin import auth
from admin.access import wants_json
from admin.catalog_view import CatalogFileView
from admin.model_view import CatalogModelView
from admin.pages import HomeView, StatsView, TokensView, UsersView
from db.schema import Model

csrf = CSRFProtect()
# Flask-Admin's list views read through Flask-SQLAlchemy's session; they never write.
reader = SQLAlchemy(session_options={"expire_on_commit": False})


def _nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _ms_datetime(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _hash(source: str) -> str:
    digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
    return f"'sha256-{digest}'"


# Flask-Admin's templates carry a few inline handlers (filter links, the bulk-action menu);
# exactly those are allowed by hash, and no other inline script runs.
FLASK_ADMIN_HANDLERS = " ".join([
    "'unsafe-hashes'",
    *map(_hash, ["return false;", "javascript:void(0)"]),
    *(_hash(f"return modelActions.execute('{name}');") for name in CatalogModelView.BULK),
])


def _security_headers(response):
    if request.path.startswith("/api/"):
        return response
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; script-src 'self' 'nonce-{_nonce()}' {FLASK_ADMIN_HANDLERS}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    )
    if session.get("user"):
        response.headers["Cache-Control"] = "no-store"
    return response


CSRF_PAGE = "<h1>Form expired</h1><p>{{ reason }}. Go back, reload the page and try again.</p>"


def init_app(app: Flask) -> None:
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", app.config["DATABASE_URL"])
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    reader.init_app(app)
    csrf.init_app(app)
    from functions.http import bp as api

    csrf.exempt(api)  # the API takes bearer tokens, never cookies
    auth.init_app(app)
    app.jinja_env.globals["current_identity"] = auth.current_identity
    app.jinja_env.filters["ms_datetime"] = _ms_datetime
    app.after_request(_security_headers)

    @app.get("/favicon.ico")
    def _favicon():
        return "", 204

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):
        if wants_json():
            return {"code": "CsrfFailed", "message": error.description}, 400
        return render_template_string(CSRF_PAGE, reason=error.description), 400

    console = Admin(
        app,
        name="Model Catalog",
        index_view=HomeView(name="Home", url="/admin"),
        theme=Bootstrap4Theme(base_template="catalog/layout.html", fluid=True),
        csp_nonce_generator=_nonce,
    )
    console.add_view(CatalogModelView(Model, reader, name="Models", endpoint="models"))
    console.add_view(StatsView(name="Usage", endpoint="stats"))
    console.add_view(CatalogFileView(name="Import / export", endpoint="catalog_file"))
    console.add_view(UsersView(name="Users", endpoint="users", category="Access"))
    console.add_view(TokensView(name="Tokens", endpoint="tokens", category="Access"))
