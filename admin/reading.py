"""The console's read session: Flask-Admin's list views read through it, on the app's own
engine (its pool, its connection budget). It never writes: every change runs a mutation."""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy.orm import scoped_session, sessionmaker


def init_app(app: Flask) -> scoped_session:
    session = scoped_session(sessionmaker(bind=app.extensions["catalog_db"].engine,
                                          expire_on_commit=False))
    app.extensions["console_reader"] = session
    app.teardown_appcontext(lambda _error: session.remove())
    return session


def reader() -> scoped_session:
    return current_app.extensions["console_reader"]
