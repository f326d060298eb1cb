"""Convex-style functions over the catalog: the only code that writes to the database."""

from __future__ import annotations

from flask import Flask

# Importing a module declares its functions.
from functions import (  # noqa: F401
    access,
    catalog,
    health,
    history,
    models,
    pricing,
    recommend,
    usage,
    webhooks,
)


def init_app(app: Flask) -> None:
    from engine.cache import CatalogCache
    from functions.access import KnownTokens
    from functions.documents import config_document, stats_of
    from functions.ids import canonical

    marks = app.extensions["catalog_marks"]
    app.extensions["catalog_cache"] = CatalogCache(marks, config_document, stats_of, canonical)
    app.extensions["known_tokens"] = KnownTokens(marks)
