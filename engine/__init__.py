"""The engine that runs the Convex-style functions: the runtime (registry, validators, errors,
context, `call`), the machinery of speed (change marks, the read cache, group commit) and
operations (rate limits, logs, metrics). It knows nothing of the catalog's domain."""

from __future__ import annotations

from pathlib import Path

from flask import Flask


def init_app(app: Flask) -> None:
    from db.engine import SqliteCommits, sqlite_file
    from engine import observe
    from engine.fleet import Fleet
    from engine.marks import Marks, marks_path
    from engine.ratelimit import Counters
    from engine.tally import Tally

    marks = app.extensions["catalog_marks"] = Marks(
        marks_path(app.config["CATALOG_MARKS_DIR"], app.config["DATABASE_URL"]))
    database = app.extensions["catalog_db"]
    path = sqlite_file(database.engine)
    if path is not None:  # caches ask SQLite whether anything was committed before a recheck
        commits = marks.commit_count = SqliteCommits(path)
        database.on_dispose(commits.close)
    fleet = app.extensions["fleet"] = Fleet(marks, lambda: database.engine,
                                            app.config["PUSH_RECHECK_SECONDS"])
    database.on_dispose(fleet.stop)
    app.extensions["stats_tally"] = Tally()
    where = app.config["RATE_LIMIT_COUNTERS"]
    shared = where == "database" or (
        where == "auto" and database.engine.dialect.name == "postgresql")
    app.extensions["counters"] = Counters(Path(app.config["RATE_LIMIT_STORAGE"]),
                                          database.engine if shared else None)
    observe.init_app(app)
