"""Throttles kept in the database, so that every worker and every host shares them.

A caller reserves one slot under each of several limits, all at once or not at all, *before* it
does the guessable thing (checking a password). The reservation is one transaction of
conditional increments (`INSERT ... ON CONFLICT DO UPDATE ... WHERE count < limit`), so
concurrent callers can never take more slots than a limit allows. A success gives its slot
back (`release`); a failure keeps it, and so is counted. A refused caller takes no slot:
being refused under one limit never uses up another.

Counts live in fixed windows; keys are hashes (no email or address is stored in clear).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, exc, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from db.engine import classify_error
from db.schema import SignInThrottle

TABLE = SignInThrottle.__table__
ATTEMPTS = 5


class ThrottledError(Exception):
    """Refused: a limit is reached; `retry_after` seconds until its window ends."""

    def __init__(self, retry_after: float):
        super().__init__(f"throttled for {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reservation:
    keys: tuple[str, ...]
    window: int  # the start of the window the slots were taken in


def key(*parts: str) -> str:
    """A throttle key for these parts (e.g. "account", an email), as a fixed-length hash."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # take the write lock up front
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def _retried(engine: Engine, work):
    """Run `work(conn)` in a transaction, again on a transient conflict (a bounded number)."""
    for attempt in range(ATTEMPTS):
        try:
            with _transaction(engine) as conn:
                return work(conn)
        except exc.DBAPIError as error:
            if classify_error(error) != "retry" or attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


def reserve(engine: Engine, limits: Sequence[tuple[str, int]], window: int) -> Reservation:
    """Take a slot under every (key, limit) at once; raises ThrottledError, taking none, when any
    limit is reached. A limit of 0 is no limit."""
    now = time.time()
    start = int(now // window) * window
    limited = sorted((k, most) for k, most in limits if most > 0)  # one lock order for all
    upsert = postgres_insert if engine.dialect.name == "postgresql" else sqlite_insert

    def take(conn: Connection) -> bool:
        fresh = False
        for each, most in limited:
            statement = upsert(TABLE).values(key=each, window=start, count=1)
            statement = statement.on_conflict_do_update(
                index_elements=[TABLE.c.key, TABLE.c.window],
                set_={"count": TABLE.c.count + 1},
                where=TABLE.c.count < most,
            ).returning(TABLE.c.count)
            count = conn.execute(statement).scalar()
            if count is None:
                raise ThrottledError(start + window - now)  # rolls the other slots back
            fresh = fresh or count == 1
        return fresh

    if _retried(engine, take):  # a new key: forget the windows that are over
        _retried(engine, lambda conn: conn.execute(delete(TABLE).where(TABLE.c.window < start)))
    return Reservation(tuple(k for k, _ in limited), start)


def release(engine: Engine, reservation: Reservation, forget: Sequence[str] = ()) -> None:
    """Give the reservation's slots back (it was not a failure); `forget` clears keys."""

    def give_back(conn: Connection) -> None:
        conn.execute(update(TABLE)
                     .where(TABLE.c.key.in_(reservation.keys),
                            TABLE.c.window == reservation.window, TABLE.c.count > 0)
                     .values(count=TABLE.c.count - 1))
        if forget:
            conn.execute(delete(TABLE).where(TABLE.c.key.in_(list(forget))))

    _retried(engine, give_back)
