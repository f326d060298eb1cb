"""What an operator's command prints when it cannot go on: one line on standard error, exit 1,
never a traceback. Every command group of the CLI is one of these classes (`cls=`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError

from db.engine import classify_error, reason
from db.revision import NOT_READY, undefined_object
from engine.errors import FunctionError, TransportError, for_operator


def message_of(error: BaseException) -> str | None:
    """The one line that says an error an operator can act on: a function's refusal, the
    database down or not migrated, a file that cannot be read or written; None for any other
    (a bug: its traceback is what helps)."""
    if isinstance(error, (FunctionError, TransportError)):
        return for_operator(error)
    if isinstance(error, CommandError):  # alembic's: an unknown revision
        return str(error)
    if isinstance(error, DBAPIError):
        said = (NOT_READY if undefined_object(error) else
                "The catalog database is unavailable" if classify_error(error) == "unavailable"
                else "The catalog database refused")
        return f"{said} ({reason(error)})"
    if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
        return f"{error.filename or 'writing the output'}: {error.strerror or error}"
    return None


@contextmanager
def explained() -> Iterator[None]:
    """An error an operator can act on, as a ClickException saying so (a closed pipe, `| head`,
    is click's own to end quietly)."""
    try:
        yield
    except Exception as error:
        said = message_of(error)
        if said is None:
            raise
        raise click.ClickException(said) from None


class ExplainedGroup(click.Group):
    def invoke(self, ctx: click.Context):
        with explained():
            return super().invoke(ctx)


class ExplainedCommand(click.Command):
    def invoke(self, ctx: click.Context):
        with explained():
            return super().invoke(ctx)
