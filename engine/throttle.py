"""Throttles kept in the database, so that every worker and every host shares them.

A caller reserves one slot under each of several limits, all at once or not at all, *before* it
does the guessable thing (checking a password). The reservation is one transaction of
conditional increments (`INSERT ... ON CONFLICT DO UPDATE ... WHERE count < limit`), so
concurrent callers can never take more slots than a limit allows. A success gives its slot
back (`release`); a failure keeps it, and so is counted. A refused caller takes no slot:
being refused under one limit never uses up another.

A key's window opens at its first counted attempt and lasts the throttle's period (no
wall-clock boundaries, so no double burst across one); keys are hashes (no email or address
is stored in clear).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, case, delete, exc, or_, select, update
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
    slots: tuple[tuple[str, int], ...]  # (key, when its window started, in ms)


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


def reserve(engine: Engine, limits: Sequence[tuple[str, int]], period: int) -> Reservation:
    """Take a slot under every (key, limit) at once; raises ThrottledError, taking none, when any
    limit is reached within its window of `period` seconds. A limit of 0 is no limit."""
    now = int(time.time() * 1000)
    expired = now - period * 1000  # a window that started then or earlier is over
    limited = sorted((k, most) for k, most in limits if most > 0)  # one lock order for all
    upsert = postgres_insert if engine.dialect.name == "postgresql" else sqlite_insert
    over = TABLE.c.started <= expired

    def take(conn: Connection) -> tuple[tuple[str, int], ...]:
        slots = []
        for each, most in limited:
            statement = upsert(TABLE).values(key=each, started=now, count=1)
            statement = statement.on_conflict_do_update(
                index_elements=[TABLE.c.key],
                set_={"count": case((over, 1), else_=TABLE.c.count + 1),
                      "started": case((over, now), else_=TABLE.c.started)},
                where=or_(over, TABLE.c.count < most),
            ).returning(TABLE.c.started)
            started = conn.execute(statement).scalar()
            if started is None:  # the limit is reached: roll back the slots taken so far
                started = conn.execute(select(TABLE.c.started)
                                       .where(TABLE.c.key == each)).scalar_one()
                raise ThrottledError((started - expired) / 1000)
            slots.append((each, started))
        return tuple(slots)

    slots = _retried(engine, take)
    if any(started == now for _, started in slots):  # a window opened: forget those over
        _retried(engine, lambda conn: conn.execute(delete(TABLE).where(over)))
    return Reservation(slots)


def release(engine: Engine, reservation: Reservation, forget: Sequence[str] = ()) -> None:
    """Give the reservation's slots back (it was not a failure); `forget` clears keys."""

    def give_back(conn: Connection) -> None:
        for each, started in reservation.slots:
            conn.execute(update(TABLE)
                         .where(TABLE.c.key == each, TABLE.c.started == started,
                                TABLE.c.count > 0)
                         .values(count=TABLE.c.count - 1))
        if forget:
            conn.execute(delete(TABLE).where(TABLE.c.key.in_(list(forget))))

    _retried(engine, give_back)
