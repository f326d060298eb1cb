"""The admin console: Flask-Admin over the catalog; signed in, CSRF-checked, changes by mutation."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

from flask import Flask, redirect, url_for
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from admin import auth, labels, money, reading, security, sessions
from admin.catalog_view import CatalogFileView
from admin.model_view import CatalogModelView
from admin.operations import AlertsView, HomeView, StatsView
from admin.pages import AccountView, TokensView, UsersView, WebhooksView
from db.schema import Model


def _ms_datetime(ms: int | None) -> str:
    if ms is None:  # (0 is a moment: 1970-01-01 00:00:00)
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def init_app(app: Flask) -> None:
    reader = reading.init_app(app)
    sessions.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    app.jinja_env.globals["current_identity"] = auth.current_identity
    app.jinja_env.globals["article"] = labels.article
    app.jinja_env.filters["ms_datetime"] = _ms_datetime
    app.jinja_env.filters["field_label"] = labels.label
    app.jinja_env.filters["words"] = labels.words
    app.jinja_env.filters["counted"] = labels.counted
    app.jinja_env.globals["changes_shown"] = money.changes_shown

    @app.get("/favicon.ico")
    def _favicon():
        return "", 204

    @app.get("/")
    def _home():  # a person who opens the host's address finds the console
        return redirect(url_for("admin.index"))

    console = Admin(
        app,
        name="Model Catalog",
        index_view=HomeView(name="Home", url="/admin"),
        theme=Bootstrap4Theme(base_template="catalog/layout.html", fluid=True),
        csp_nonce_generator=security.nonce,
    )
    with warnings.catch_warnings():
        # Flask-Admin 2.2 warns that a session passed directly will not be taken by 3.0, which
        # takes a Flask-SQLAlchemy(-Lite) object: the console reads through its own session on
        # the app's engine (admin/reading.py), and an upgrade to 3.0 will need a shim here.
        warnings.filterwarnings("ignore", "Passing a session object directly",
                                DeprecationWarning)
        models = CatalogModelView(Model, reader, name="Models", endpoint="models")
    console.add_view(models)
    console.add_view(StatsView(name="Usage", endpoint="stats"))
    console.add_view(AlertsView(name="Alerts", endpoint="alerts"))
    console.add_view(WebhooksView(name="Webhooks", endpoint="webhooks"))
    console.add_view(CatalogFileView(name="Import / export", endpoint="catalog_file"))
    console.add_view(UsersView(name="Users", endpoint="users", category="Access"))
    console.add_view(TokensView(name="Tokens", endpoint="tokens", category="Access"))
    console.add_view(AccountView(name="Your account", endpoint="account"))
