"""The database: one engine per app, sessions for the console, and the `flask db` commands."""

from __future__ import annotations

import os

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import scoped_session, sessionmaker

from db.engine import make_engine


class Database:
    """The app's engine, plus a scoped read session for Flask-Admin's list views."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self.session = scoped_session(sessionmaker(bind=self.engine, expire_on_commit=False))

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()


def init_app(app: Flask) -> None:
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        os.makedirs(os.path.dirname(url.removeprefix("sqlite:///")) or ".", exist_ok=True)
    app.extensions["catalog_db"] = Database(url)

    @app.teardown_appcontext
    def _remove_session(_exc) -> None:
        app.extensions["catalog_db"].session.remove()

    from db.cli import db_cli

    app.cli.add_command(db_cli)


def get_db() -> Database:
    return current_app.extensions["catalog_db"]
