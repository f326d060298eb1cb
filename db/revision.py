"""Alembic for a database (`alembic_config`), and whether the database's schema is this
version's: alembic's revision against the code's head.

A database nobody migrated (or migrated by an older release) answered every call with a 500 and
`/healthz` with 200; `schema_state` lets both say what to do instead."""

from __future__ import annotations

import os
import sys
from functools import cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, exc, text

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")

NOT_READY = ("The catalog database's schema is not this version's: an operator must run "
             "`flask --app wsgi db upgrade`")


def alembic_config(url: str, applied: list | None = None) -> Config:
    """Alembic's configuration for the database at `url`; each migration step it runs is
    appended to `applied` (db/migrations/env.py)."""
    config = Config(stdout=sys.stdout)  # the stream of this moment (Alembic binds it at import)
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["url"] = url
    if applied is not None:
        config.attributes["applied"] = applied
    return config


@cache
def _scripts() -> tuple[str, frozenset[str]]:
    """The code's head revision and every revision it knows."""
    scripts = ScriptDirectory(MIGRATIONS)
    return scripts.get_current_head(), frozenset(r.revision for r in scripts.walk_revisions())


def schema_state(conn: Connection) -> str:
    """'current'; 'behind' (a revision before this code's head); 'ahead' (a revision this code
    does not know: a newer release migrated it, as in a rolling deploy); 'missing' (never
    migrated). On PostgreSQL a missing table aborts the connection's transaction: it is rolled
    back here."""
    try:
        found = revisions(conn)
    except exc.DBAPIError as error:
        if not undefined_object(error):
            raise
        conn.rollback()
        return "missing"
    head, known = _scripts()
    if not found:
        return "missing"
    if found == {head}:
        return "current"
    return "behind" if found <= known else "ahead"


def revisions(conn: Connection) -> set[str]:
    """The revisions alembic recorded in the database (raises when it has no table)."""
    return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def not_ready(engine: Engine) -> bool:
    """Whether the database's schema is missing or behind this code's (asked on an error that
    names a table or column the database lacks: otherwise it is the code's own bug)."""
    try:
        with engine.connect() as conn:
            return schema_state(conn) in ("missing", "behind")
    except exc.DBAPIError:
        return False


def undefined_object(error: exc.DBAPIError) -> bool:
    """Whether the database refused a statement for a table or column it does not have."""
    if getattr(error.orig, "sqlstate", None) in ("42P01", "42703"):  # undefined table, column
        return True
    message = str(error.orig).lower()  # SQLite's, an INSERT's among them
    return message.startswith(("no such table", "no such column")) or (
        message.startswith("table ") and " has no column named " in message)
