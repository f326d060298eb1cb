"""The function runtime: declaration (`@query`, `@mutation`), authorization, transactions.

Every read and every write of the catalog runs through `call`: the HTTP API, the console,
the CLI, imports and the seed loader alike.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import current_app
from sqlalchemy import Connection, Engine, exc
from sqlalchemy.orm import Session

from db import get_db
from db.engine import classify_error, single_statement, transaction
from engine import reads
from engine.errors import TransportError
from engine.marks import Marks
from engine.values import Object, Validator

SCOPES = ("catalog:write", "stats:write", "admin")
ROLES = ("admin", "editor", "viewer")
ROLE_SCOPES = {
    "admin": frozenset({"admin", "catalog:write", "stats:write"}),
    "editor": frozenset({"catalog:write"}),
    "viewer": frozenset(),
}
# A pseudo-scope: any caller who is not anonymous.
SIGNED_IN = "signed-in"

MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Identity:
    """Who is calling: anonymous, a service token, a signed-in user, or the system itself."""

    kind: str
    name: str
    scopes: frozenset[str] = frozenset()
    role: str | None = None

    def allows(self, scope: str) -> bool:
        if scope == SIGNED_IN:
            return self.kind != "anonymous"
        return "admin" in self.scopes or scope in self.scopes

    @classmethod
    def user(cls, email: str, role: str) -> Identity:
        return cls("user", email, ROLE_SCOPES[role], role)


ANONYMOUS = Identity("anonymous", "anonymous")


def system(name: str) -> Identity:
    """The identity of an operator's command (CLI, seed): every scope."""
    return Identity("system", name, frozenset(SCOPES))


class Context:
    """What a handler gets: the caller, the time frozen at the call's start, and `db`.

    `db` is the session of the call's transaction, begun on first use: a query answered from
    the read cache never touches the database. A mutation's transaction begins before its
    handler runs. An `atomic` mutation gets a plain connection in autocommit instead, taken
    only if its handler runs a statement (a statistics call that joins another's does not).
    """

    def __init__(self, begin: Callable[[], Session | Connection], identity: Identity, now: int,
                 source: str, config: dict) -> None:
        self._begin, self._session = begin, None
        self.identity, self.now, self.source, self.config = identity, now, source, config
        self.discard = False  # set by a handler that must leave no trace (a dry run)
        self.changed: set[str] = set()  # the change marks to bump once committed

    @property
    def db(self) -> Session | Connection:
        reads.database()  # unless the read cache asks: it notes what it serves
        if self._session is None:
            self._session = self._begin()
        return self._session

    @property
    def began(self) -> bool:
        return self._session is not None


@dataclass(frozen=True)
class Function:
    name: str
    kind: str  # "query" | "mutation"
    args: Object
    handler: Callable[..., Any]
    scope: str | None
    internal: bool
    admin_only: bool
    atomic: bool
    summary: str


REGISTRY: dict[str, Function] = {}


def _register(kind: str, args: dict[str, Validator] | None, scope, internal, admin_only, atomic):
    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        module = handler.__module__.rsplit(".", 1)[-1]
        name = f"{module}:{handler.__name__}"
        assert name not in REGISTRY, f"{name} declared twice"
        REGISTRY[name] = Function(
            name=name,
            kind=kind,
            args=Object(args or {}),
            handler=handler,
            scope=scope,
            internal=internal,
            admin_only=admin_only,
            atomic=atomic,
            summary=(handler.__doc__ or "").strip().split("\n")[0],
        )
        return handler

    return decorate


def query(args=None, *, scope: str | None = None, internal: bool = False):
    """Declare a read-only function; public unless it names a scope."""
    return _register("query", args, scope, internal, False, False)


def mutation(args=None, *, scope: str, internal=False, admin_only=False, atomic=False):
    """Declare a writing function. `admin_only`: signed-in users also need the admin role.

    `atomic`: the handler runs at most one statement (atomic by itself, in autocommit) and needs
    no catalog lock. It is retried only when the database refused to start it (busy).
    """
    return _register("mutation", args, scope, internal, admin_only, atomic)


def authorize(fn: Function, identity: Identity) -> None:
    if fn.scope is None:
        return
    if identity.kind == "anonymous":
        raise TransportError(
            401, "Unauthenticated",
            f"{fn.name} needs a service token (Authorization: Bearer ...) or a signed-in user",
        )
    if not identity.allows(fn.scope):
        raise TransportError(403, "Forbidden", f"{fn.name} needs the '{fn.scope}' scope")
    if fn.admin_only and identity.kind == "user" and identity.role != "admin":
        raise TransportError(403, "Forbidden", f"{fn.name} needs the admin role")


def canonical_path(path: str) -> str:
    """A function's one name: Convex's clients may also send `models.js:getActiveModels` (the
    Rust client, and so the Python one, does when it resubscribes)."""
    module, colon, name = path.rpartition(":")
    if colon and module.endswith(".js"):
        return f"{module[:-3]}:{name}"
    return path


def lookup(path: str, *, kind: str | None = None, public: bool = False) -> Function:
    fn = REGISTRY.get(canonical_path(path))
    if fn is None or (public and fn.internal):
        raise TransportError(404, "FunctionNotFound", f"Could not find public function '{path}'")
    if kind is not None and fn.kind != kind:
        raise TransportError(
            400, "WrongFunctionKind", f"{path} is a {fn.kind}; call it at /api/{fn.kind}"
        )
    return fn


def _begin(stack: ExitStack, fn: Function, engine: Engine) -> Session | Connection:
    """The call's transaction, entered on `stack`: a read, one atomic statement, or a write."""
    if fn.kind == "query":
        return stack.enter_context(transaction(engine, write=False))
    if fn.atomic:
        return stack.enter_context(single_statement(engine))
    return stack.enter_context(transaction(engine, write=True))


def marks() -> Marks:
    return current_app.extensions["catalog_marks"]


def call(
    path: str,
    args: Any = None,
    *,
    identity: Identity,
    source: str,
    kind: str | None = None,
    public: bool = False,
) -> Any:
    """Run one function in its own transaction, retrying conflicts a bounded number of times."""
    fn = lookup(path, kind=kind, public=public)
    authorize(fn, identity)
    checked = fn.args.check({} if args is None else args, "")
    engine = get_db().engine
    config = {"CREDITS_PER_USD": current_app.config["CREDITS_PER_USD"]}
    for attempt in range(MAX_ATTEMPTS):
        try:
            with ExitStack() as stack:
                ctx = Context(partial(_begin, stack, fn, engine), identity,
                              int(time.time() * 1000), source, config)
                if fn.kind == "mutation" and not fn.atomic:
                    ctx.db  # noqa: B018 - a writer's transaction (and lock) comes first
                result = fn.handler(ctx, **checked)
                if ctx.discard and ctx.began:
                    ctx.db.rollback()
            if ctx.changed and not ctx.discard:
                marks().bump(ctx.changed)
            return result
        except exc.DBAPIError as error:
            verdict = classify_error(error)
            if verdict == "unavailable":
                raise TransportError(
                    503, "Unavailable", "The catalog database is unavailable; try again shortly",
                    {"Retry-After": "1"},
                ) from error
            if verdict != "retry":
                raise
            time.sleep(min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.5))
    raise TransportError(
        503, "Conflict",
        f"{path} kept conflicting with concurrent writes; retry it",
        {"Retry-After": "1"},
    )
