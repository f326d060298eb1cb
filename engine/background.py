"""Background work: a thread per process that runs jobs outside any request, and leases in the
database so that, fleet-wide, one process does each job per round.

A lease is a row `monitor_leases(name, next_run)`: a process takes it by moving `next_run`
forward in one atomic statement, which succeeds for exactly one process once it is due. What
the job itself writes runs in transactions that serialize on the database (the writers' lock),
so even two runs that overlap (a job slower than its interval) cannot count anything twice.
Taking a lease is bookkeeping, not a change anyone reads: it bumps no change mark.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from db.engine import reason, single_statement
from db.schema import MonitorLease
from engine.errors import TransportError

log = logging.getLogger("catalog.monitor")
HOLDER = f"{socket.gethostname()}:{os.getpid()}"[:200]
LEASES = MonitorLease.__table__
INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def take_leases(engine: Engine, wanted: dict[str, int], now: int) -> set[str]:
    """Which of the jobs `wanted` (name: every how many ms) this process may run now (then no
    other may, each for its `every_ms`): one statement for them all, so a process that finds
    nothing due costs the database one round trip a round, however many jobs there are."""
    rows = [{"name": name, "next_run": now + every_ms, "holder": HOLDER}
            for name, every_ms in sorted(wanted.items())]
    with single_statement(engine) as conn:
        insert = INSERTS[conn.dialect.name](LEASES).values(rows)
        statement = insert.on_conflict_do_update(
            index_elements=[LEASES.c.name],
            set_={"next_run": insert.excluded.next_run, "holder": insert.excluded.holder},
            where=LEASES.c.next_run <= now,  # a lease not due is left alone, and not returned
        ).returning(LEASES.c.name)
        return set(conn.execute(statement).scalars())


def take_lease(engine: Engine, name: str, now: int, every_ms: int) -> bool:
    """Whether this process may run job `name` now (then no other may for `every_ms`)."""
    return name in take_leases(engine, {name: every_ms}, now)


class Periodic:
    """Calls `work()` every `seconds` (±10%, so that processes drift apart) on a daemon thread
    until stopped; a failure is logged and the next round runs as usual."""

    def __init__(self, name: str, seconds: float, work: Callable[[], object]) -> None:
        self.name, self.seconds, self.work = name, seconds, work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds * random.uniform(0.9, 1.1)):
            try:
                self.work()
            except Exception as error:  # noqa: BLE001 - the database may be away; keep going
                # The database's own words for a cause it names (down, not migrated); a
                # traceback only for anything else, a bug.
                known = isinstance(error, (DBAPIError, TransportError))
                log.warning("%s: a round failed: %s", self.name, reason(error),
                            exc_info=not known)
