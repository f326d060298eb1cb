"""The engine that runs the Convex-style functions: the runtime (registry, validators, errors,
context, `call`), the machinery of speed (change marks, the read cache, group commit) and
operations (rate limits, logs, metrics). It knows nothing of the catalog's domain."""

from __future__ import annotations

from pathlib import Path

from flask import Flask


def init_app(app: Flask) -> None:
    from engine import observe
    from engine.marks import Marks, marks_path
    from engine.ratelimit import Counters
    from engine.tally import Tally

    app.extensions["catalog_marks"] = Marks(
        marks_path(app.config["CATALOG_MARKS_DIR"], app.config["DATABASE_URL"]))
    app.extensions["stats_tally"] = Tally()
    app.extensions["counters"] = Counters(Path(app.config["RATE_LIMIT_STORAGE"]))
    observe.init_app(app)
