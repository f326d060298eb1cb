"""What an operator's command prints when it cannot go on: one line on standard error, exit 1,
never a traceback. Every command group of the CLI is one of these classes (`cls=`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.exc import DBAPIError

from db.engine import reason
from db.revision import NOT_READY, undefined_object
from engine.errors import FunctionError, TransportError, for_operator


@contextmanager
def explained() -> Iterator[None]:
    """A function's refusal, the database down or not migrated, a file that cannot be written:
    a ClickException saying so."""
    try:
        yield
    except (FunctionError, TransportError) as error:
        raise click.ClickException(for_operator(error)) from None
    except DBAPIError as error:
        said = NOT_READY if undefined_object(error) else "The catalog database refused"
        raise click.ClickException(f"{said} ({reason(error)})") from None
    except OSError as error:
        raise click.ClickException(
            f"{error.filename or 'a file'}: {error.strerror or error}") from None


class ExplainedGroup(click.Group):
    def invoke(self, ctx: click.Context):
        with explained():
            return super().invoke(ctx)


class ExplainedCommand(click.Command):
    def invoke(self, ctx: click.Context):
        with explained():
            return super().invoke(ctx)
