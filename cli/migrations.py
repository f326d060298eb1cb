"""`flask db upgrade|downgrade|current`: Alembic, configured from the app (db/revision.py).
An unknown revision, the database down: one line (cli/errors.py), as every operator command."""

from __future__ import annotations

import re

import click
from alembic import command
from alembic.script import ScriptDirectory
from flask.cli import with_appcontext

from cli.errors import ExplainedGroup
from db import get_db
from db.revision import MIGRATIONS, alembic_config, revisions, schema_state


@click.group("db", cls=ExplainedGroup)
def db_cli() -> None:
    """Database migrations."""


@db_cli.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head). A database a newer release migrated
    is left as it is (a host of the older release restarting during a rolling deploy)."""
    state, at = _state()
    if state == "ahead":
        click.echo(f"The database is at {at}, a newer release's schema; nothing to do.")
        return
    applied: list = []
    revision = _named(revision)
    command.upgrade(alembic_config(get_db().url, applied), revision)
    if applied:
        click.echo(_done("Upgraded", applied))
        return
    at = _state()[1]
    if re.fullmatch(r"[0-9a-f]+", revision) and revision != at:  # an older one: alembic
        click.echo(f"The database is at {at}, past {revision}; nothing to do (to go back: "
                   f"flask --app wsgi db downgrade {revision}).")  # leaves it as it is
        return
    click.echo(f"The database is at {at}; nothing to do.")


@db_cli.command("downgrade", context_settings={"ignore_unknown_options": True})
@click.argument("revision", default="-1")
@click.option("--yes", is_flag=True, help="Do not ask before dropping data.")
@with_appcontext
def downgrade(revision: str, yes: bool) -> None:
    """Downgrade the database to REVISION (default: one step back, -2 two; 'base' for empty).
    It drops the tables and columns the later migrations added, with their data: it asks
    first."""
    revision = _named(revision)
    steps = revision.removeprefix("-")
    state, at = _state()
    if state == "missing":
        click.echo("The database was never migrated; nothing to downgrade.")
        return
    if state == "ahead":
        raise click.ClickException(f"The database is at {at}, a newer release's schema: "
                                   "downgrade it with that release's `flask db downgrade`")
    if revision == at or steps == "0":
        click.echo(f"The database is at {at}; nothing to do.")
        return
    if revision != "base" and not re.search(r"[+-]", revision):  # not -1, head-1, 0007-2
        ScriptDirectory(MIGRATIONS).get_revision(revision)  # unknown: refused before asking
    if not yes:
        target = (f"{'one migration' if steps == '1' else steps + ' migrations'} back"
                  if revision.startswith("-") and steps.isdigit() else revision)
        click.confirm(f"Downgrade the database from {at} to {target}? It drops the tables "
                      "and columns added since, and their data", abort=True)
    applied: list = []
    command.downgrade(alembic_config(get_db().url, applied), revision)
    click.echo(_done("Downgraded", applied) if applied else
               f"The database is at {_state()[1]}; nothing to do.")


@db_cli.command("current")
@with_appcontext
def current() -> None:
    """Show the database's current revision."""
    state, at = _state()
    click.echo({"current": f"{at} (head)", "behind": f"{at} (behind: flask --app wsgi db "
                                                     "upgrade)",
                "ahead": f"{at} (a newer release's schema)",
                "missing": "none (never migrated: flask --app wsgi db upgrade)"}[state])


def _named(revision: str) -> str:
    if not revision.strip():
        raise click.BadParameter("name a revision (e.g. head, 0006, -1, base)",
                                 param_hint="REVISION")
    return revision.strip()


def _state() -> tuple[str, str]:
    """The database's schema state (db/revision.py) and its revision as messages say it."""
    with get_db().engine.connect() as conn:
        state = schema_state(conn)
        at = ", ".join(sorted(revisions(conn))) if state != "missing" else "none"
    return state, at


def _done(verb: str, applied: list) -> str:
    """What the steps Alembic ran did: from the first one's start to the last one's end."""
    first, last = applied[0], applied[-1]
    start = ", ".join(first.source_revision_ids) or "none"
    end = ", ".join(last.destination_revision_ids) or "none (base)"
    return f"{verb} the database from {start} to {end}."
