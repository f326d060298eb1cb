"""The function runtime: declaration (`@query`, `@mutation`), authorization, transactions.

Every read and every write of the catalog runs through `call`: the HTTP API, the console,
the CLI, imports and the seed loader alike.
"""

from __future__ import annotations

import difflib
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
from db.engine import (
    classify_error,
    noting_writes,
    read_again_if_dropped,
    single_statement,
    transaction,
)
from db.revision import NOT_READY, not_ready, undefined_object
from db.schema import marks_of
from engine import reads
from engine.cache import bump_version
from engine.errors import FunctionError, TransportError
from engine.fleet import fleet
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
        # Set by a handler that must leave no trace (a dry run), or that left none (a retry of
        # generations recorded already): no cache or host is told of a change.
        self.discard = False
        self.prepared: Any = None  # what the function's `prepare` answered, if it has one
        # Until when a query's answer holds (ms), when it depends on the time: None, for ever.
        self.expires: int | None = None
        # The fleet's clock value this mutation's own statement ticked (a recording's, on
        # PostgreSQL: engine/fleet.py); None: the runtime ticks it after the commit.
        self.ticked: int | None = None
        # What the call weighs against its caller's rate limit, in ordinary calls (weigh).
        self.weight = 1

    def weigh(self, calls: int) -> None:
        """This call did the work of `calls` ordinary ones (a recommendation that priced a
        thousand models): it counts so against its caller's rate limit, when it was computed
        for that caller (an answer held for a repeated request costs one call)."""
        self.weight = max(self.weight, calls)

    @property
    def db(self) -> Session | Connection:
        reads.database()  # unless the read cache asks: it notes what it serves
        if self._session is None:
            self._session = self._begin()
        return self._session

    def valid_until(self, moment: int | None) -> None:
        """This answer depends on the time: it holds until `moment` (ms), then changes by
        itself (a scheduled price). Held answers and live subscriptions are re-run then."""
        if moment is not None and (self.expires is None or moment < self.expires):
            self.expires = moment

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
    reads_only: bool
    prepare: Callable[..., Any] | None
    summary: str
    # Change marks its answer implies even when this call ran no statement itself (a
    # statistics call whose increment another call's statement wrote: engine/tally.py).
    changes: frozenset[str] = frozenset()
    # The key of a query's answer (or a dotted path: `quote.at`) that says when it was
    # computed (the moment it priced at, when the caller named none): a subscriber is not sent
    # an answer that differs from the last in it alone (wire/sync.py).
    moment: str | None = None


REGISTRY: dict[str, Function] = {}


def _register(kind: str, args: dict[str, Validator] | None, scope, internal, admin_only, atomic,
              reads_only=False, prepare=None, changes=(), name: str | None = None,
              moment: str | None = None):
    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        module = handler.__module__.rsplit(".", 1)[-1]
        public_name = name or f"{module}:{handler.__name__}"
        assert public_name not in REGISTRY, f"{public_name} declared twice"
        REGISTRY[public_name] = Function(
            name=public_name,
            kind=kind,
            args=Object(args or {}),
            handler=handler,
            scope=scope,
            internal=internal,
            admin_only=admin_only,
            atomic=atomic,
            reads_only=reads_only,
            prepare=prepare,
            summary=(handler.__doc__ or "").strip().split("\n")[0],
            changes=frozenset(changes),
            moment=moment,
        )
        return handler

    return decorate


def query(args=None, *, scope: str | None = None, internal: bool = False,
          name: str | None = None, moment: str | None = None):
    """Declare a read-only function; public unless it names a scope.

    Its name is `<module>:<function>`; `name` gives another (a module of helpers that serves
    a namespace, e.g. functions/usage.py declaring `models:getUsage`). `moment`: the key of
    its answer (or a dotted path) that only says when it was computed (a subscriber is not sent
    an answer that differs in it alone)."""
    return _register("query", args, scope, internal, False, False, name=name, moment=moment)


def mutation(args=None, *, scope: str, internal=False, admin_only=False, atomic=False,
             reads_only=False, prepare=None, changes: tuple[str, ...] = (),
             name: str | None = None):
    """Declare a writing function (`name`: as for `query`). `admin_only`: signed-in users also
    need the admin role.

    `atomic`: the handler runs at most one statement (atomic by itself, in autocommit) and needs
    no catalog lock. It is retried only when the database refused to start it (busy).
    `reads_only`: the handler only reads (a dry run): it runs in a read transaction, as a query
    does, and never holds the writers' lock.
    `prepare(ctx, **args)`: runs first, on a read (holding no lock), with the same `ctx.now`;
    the handler finds its answer in `ctx.prepared` and must check that it still holds (what
    it read may have changed before the lock was taken). Work that only reads moves there.

    What a mutation changed is derived from the statements it ran (the tables' marks,
    db/schema.py); `changes` adds marks it implies without running a statement itself.
    """
    return _register("mutation", args, scope, internal, admin_only, atomic, reads_only, prepare,
                     changes, name)


def missing_grant(identity: Identity, scope: str | None, admin_only: bool = False) -> str | None:
    """What `identity` lacks to do what needs `scope` (and, for a signed-in user, the admin
    role when `admin_only`), or None when it may. One rule for every function and every part
    of a composite one."""
    if scope is None:
        return None
    if identity.kind == "anonymous":
        return "a service token (Authorization: Bearer <token>, or the Convex client's setAuth)"
    if not identity.allows(scope):
        return f"the '{scope}' scope"
    if admin_only and identity.kind == "user" and identity.role != "admin":
        return "the admin role"
    return None


def authorize(fn: Function, identity: Identity) -> None:
    missing = missing_grant(identity, fn.scope, fn.admin_only)
    if missing is None:
        return
    if identity.kind == "anonymous":
        raise TransportError(401, "Unauthenticated", f"{fn.name} needs {missing}")
    raise TransportError(403, "Forbidden", f"{fn.name} needs {missing}")


def canonical_path(path: str) -> str:
    """A function's one name: Convex's clients may also send `models.js:getActiveModels` (the
    Rust client, and so the Python one, does when it resubscribes)."""
    module, colon, name = path.rpartition(":")
    if colon and module.endswith(".js"):
        return f"{module[:-3]}:{name}"
    return path


def _did_you_mean(path: str, public: bool) -> str:
    """The closest function names to a misspelt one (of those the caller may call)."""
    names = [name for name, fn in REGISTRY.items() if not (public and fn.internal)]
    close = difflib.get_close_matches(path[:200], names, n=2, cutoff=0.8)
    return f"; did you mean {' or '.join(repr(name) for name in close)}?" if close else ""


def lookup(path: str, *, kind: str | None = None, public: bool = False) -> Function:
    fn = REGISTRY.get(canonical_path(path))
    if fn is None or (public and fn.internal):
        raise TransportError(404, "FunctionNotFound", f"Could not find public function "
                                                      f"'{path}'{_did_you_mean(path, public)}")
    if kind is not None and fn.kind != kind:
        raise TransportError(
            400, "WrongFunctionKind", f"{path} is a {fn.kind}: call it as a {fn.kind} (over "
            f"HTTP: POST /api/{fn.kind})")
    return fn


def _begin(stack: ExitStack, fn: Function, engine: Engine) -> Session | Connection:
    """The call's transaction, entered on `stack`: a read, one atomic statement, or a write."""
    if _read_only(fn):
        return stack.enter_context(transaction(engine, write=False))
    if fn.atomic:
        return stack.enter_context(single_statement(engine))
    return stack.enter_context(transaction(engine, write=True))


def _prepare(fn: Function, args: dict, identity: Identity, now: int, source: str,
             config: dict, engine: Engine) -> Any:
    """A mutation's `prepare` step, in a read transaction of its own."""
    with transaction(engine, write=False) as session:
        return fn.prepare(Context(lambda: session, identity, now, source, config), **args)


def marks() -> Marks:
    return current_app.extensions["catalog_marks"]


@dataclass(frozen=True)
class Outcome:
    """What a call answered, and until when that answer holds by itself (ms; None: until the
    data it read changes)."""

    value: Any
    expires: int | None = None
    # A mutation's commit timestamp (engine/fleet.py): a query sent with `minTs` at least this
    # is answered from a state that includes the mutation, on any host. None for a query.
    ts: int | None = None
    weight: int = 1  # in ordinary calls, against the caller's rate limit (Context.weigh)


def database_refusal(error: exc.DBAPIError, engine: Engine) -> TransportError | None:
    """The 503 a caller gets when the database is down, or when its schema is not this
    version's (nobody ran `flask db upgrade`); None for any other error (the code's own)."""
    if classify_error(error) == "unavailable":
        return TransportError(
            503, "Unavailable", "The catalog database is unavailable; try again shortly",
            {"Retry-After": "1"},
        )
    if undefined_object(error) and not_ready(engine):
        return TransportError(503, "SchemaNotReady", NOT_READY, {"Retry-After": "5"})
    return None


def _read_only(fn: Function) -> bool:
    """Whether a call only reads (a query, a dry run): it may be asked again."""
    return fn.kind == "query" or fn.reads_only


def _attempt(fn: Function, checked: dict, identity: Identity, now: int, source: str,
             config: dict, engine: Engine) -> Outcome:
    """One run of the function in its transaction, and what it answers once committed."""
    with noting_writes() as written, ExitStack() as stack:
        ctx = Context(partial(_begin, stack, fn, engine), identity, now, source, config)
        if fn.prepare is not None:
            ctx.prepared = _prepare(fn, checked, identity, now, source, config, engine)
        if fn.kind == "mutation" and not (fn.atomic or fn.reads_only):
            ctx.db  # noqa: B018 - a writer's transaction (and lock) comes first
        try:
            result = fn.handler(ctx, **checked)
        except FunctionError as error:  # a refusal holds as long as an answer would
            error.expires, error.weight = ctx.expires, ctx.weight
            raise
        if ctx.discard and ctx.began:
            ctx.db.rollback()
        elif ctx.began and not (fn.atomic or _read_only(fn)):
            ctx.db.flush()  # what the handler left in the session is written, and noted, now
            if "catalog" in marks_of(written):
                bump_version(ctx.db)  # (once per transaction)
    # Committed: every cache and subscription learns of what it wrote, on this host at once
    # and on the others by push (engine/fleet.py), before the answer.
    changed = set() if ctx.discard else marks_of(written) | fn.changes
    if fn.kind == "mutation":
        return Outcome(result, ctx.expires, fleet().committed(changed, ctx.ticked), ctx.weight)
    if changed:
        marks().bump(changed)
    return Outcome(result, ctx.expires, weight=ctx.weight)


def call(path: str, args: Any = None, **how: Any) -> Any:
    """Run one function (see `run`) and answer its value."""
    return run(path, args, **how).value


def run(
    path: str,
    args: Any = None,
    *,
    identity: Identity,
    source: str,
    kind: str | None = None,
    public: bool = False,
    now: int | None = None,
) -> Outcome:
    """Run one function in its own transaction, retrying conflicts a bounded number of times.

    `now` (ms) is the clock the call sees as `ctx.now`: the real time unless given (the health
    monitor's jobs and the tests inject it)."""
    fn = lookup(path, kind=kind, public=public)
    authorize(fn, identity)
    checked = fn.args.check({} if args is None else args, "")
    engine = get_db().engine
    config = current_app.config
    now = int(time.time() * 1000) if now is None else now
    attempt_once = partial(_attempt, fn, checked, identity, now, source, config, engine)
    for attempt in range(MAX_ATTEMPTS):
        try:
            # A read is asked again once on a fresh connection when the database had dropped
            # the pooled one (a restart); a write is not: cut off at its commit, it may have
            # committed.
            return read_again_if_dropped(attempt_once) if _read_only(fn) else attempt_once()
        except exc.DBAPIError as error:
            verdict = classify_error(error)
            if verdict != "retry":
                refusal = database_refusal(error, engine)
                if refusal is None:
                    raise
                raise refusal from error
            time.sleep(min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.5))
    raise TransportError(
        503, "Conflict",
        f"{path} kept conflicting with concurrent writes; retry it",
        {"Retry-After": "1"},
    )
