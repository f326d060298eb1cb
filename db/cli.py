"""`flask db upgrade|downgrade|current`: Alembic, configured from the app."""

from __future__ import annotations

import sys

import click
from alembic import command
from alembic.config import Config
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
    command.upgrade(alembic_config(get_db().url), revision)


@db_cli.command("downgrade")
@click.argument("revision", default="-1")
@with_appcontext
def downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (default: one step back; 'base' for empty)."""
    command.downgrade(alembic_config(get_db().url), revision)


@db_cli.command("current")
@with_appcontext
def current() -> None:
    """Show the database's current revision."""
    command.current(alembic_config(get_db().url))
