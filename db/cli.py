"""`flask db upgrade|downgrade|current`: Alembic, configured from the app."""

from __future__ import annotations

import sys

import click
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.util import CommandError
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from db import get_db
from db.engine import reason
from db.revision import MIGRATIONS


def alembic_config(url: str) -> Config:
    config = Config(stdout=sys.stdout)  # the stream of this moment (Alembic binds it at import)
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["url"] = url
    return config


class _Migrations(click.Group):
    """An unknown revision or an unreachable database is one line, not a traceback (the
    rest of the CLI does the same in cli/errors.py, above this layer)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CommandError as error:
            raise click.ClickException(str(error)) from None
        except DBAPIError as error:
            raise click.ClickException(f"The catalog database refused: {reason(error)}") from None


@click.group("db", cls=_Migrations)
def db_cli() -> None:
    """Database migrations."""


@db_cli.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    before = _revision()
    command.upgrade(alembic_config(get_db().url), revision)
    after = _revision()
    click.echo(f"The database is at {after}; nothing to do." if after == before
               else f"Upgraded the database from {before} to {after}.")


@db_cli.command("downgrade")
@click.argument("revision", default="-1")
@click.option("--yes", is_flag=True, help="Do not ask before dropping data.")
@with_appcontext
def downgrade(revision: str, yes: bool) -> None:
    """Downgrade the database to REVISION (default: one step back; 'base' for empty). It
    drops the tables and columns the later migrations added, with their data: it asks first."""
    before = _revision()
    if not yes:
        steps = revision.removeprefix("-")
        target = (f"{'one migration' if steps == '1' else steps + ' migrations'} back"
                  if revision.startswith("-") and steps.isdigit() else revision)
        click.confirm(f"Downgrade the database from {before} to {target}? It drops the tables "
                      "and columns added since, and their data", abort=True)
    command.downgrade(alembic_config(get_db().url), revision)
    click.echo(f"Downgraded the database from {before} to {_revision()}.")


def _revision() -> str:
    """The database's revision as the messages say it ('none': never migrated)."""
    with get_db().engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ", ".join(heads) or "none"


@db_cli.command("current")
@with_appcontext
def current() -> None:
    """Show the database's current revision."""
    command.current(alembic_config(get_db().url))
