"""The database: one engine per app, and the `flask db` commands."""

from __future__ import annotations

import os
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy import Engine

from db.engine import dispose, make_engine


class Database:
    """The app's engine; `functions` open every transaction on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self._closers: list[Callable[[], None]] = []

    def on_dispose(self, closer: Callable[[], None]) -> None:
        """Call `closer` when the app is done with the database (a listener's connection)."""
        self._closers.append(closer)

    def dispose(self) -> None:
        for closer in self._closers:
            closer()
        dispose(self.engine)


def init_app(app: Flask) -> None:
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        os.makedirs(os.path.dirname(url.removeprefix("sqlite:///")) or ".", exist_ok=True)
    app.extensions["catalog_db"] = Database(url)


def get_db() -> Database:
    return current_app.extensions["catalog_db"]
