"""Convex-style functions over the catalog: the only code that writes to the database."""

from __future__ import annotations

from flask import Flask

# Importing a module declares its functions.
from functions import access, catalog, history, models, pricing  # noqa: F401


def init_app(app: Flask) -> None:
    from functions import cli, http, observe, sync
    from functions.access import KnownTokens
    from functions.cache import CatalogCache
    from functions.marks import Marks, marks_path
    from functions.tally import Tally

    marks = Marks(marks_path(app.config["DATABASE_URL"]))
    app.extensions["catalog_marks"] = marks
    app.extensions["catalog_cache"] = CatalogCache(marks)
    app.extensions["known_tokens"] = KnownTokens(marks)
    app.extensions["stats_tally"] = Tally()

    observe.init_app(app)
    http.init_app(app)
    sync.init_app(app)
    cli.init_app(app)
