"""The console's one way to change anything: run a function as the signed-in user."""

from __future__ import annotations

from typing import Any

from flask import flash

from admin.auth import current_identity
from admin.labels import labelled
from admin.reading import reader
from engine.errors import FunctionError, TransportError
from engine.runtime import call


class RefusedError(Exception):
    """A function refused the console's request; the message is for the person."""

    def __init__(self, message: str, field: str | None = None, data: dict | None = None):
        super().__init__(message)
        self.message, self.field, self.data = message, field, data or {}


def run(path: str, args: dict | None = None) -> Any:
    """Call a function as the signed-in user; a refusal raises RefusedError, readable: its
    message names fields by their labels, not their identifiers."""
    reader().rollback()  # end the view's read transaction before a change
    try:
        return call(path, args, identity=current_identity(), source="console")
    except FunctionError as error:
        raise RefusedError(labelled(error.message), error.data.get("field"),
                           error.data) from None
    except TransportError as error:
        raise RefusedError(labelled(error.message)) from None


def run_or_flash(path: str, args: dict | None = None, success: str | None = None) -> Any:
    """Like run, but a refusal is flashed and None returned."""
    try:
        value = run(path, args)
    except RefusedError as refusal:
        flash(refusal.message, "error")
        return None
    if success:
        flash(success, "success")
    return value
