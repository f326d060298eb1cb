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

from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite

from db.engine import single_statement
from db.schema import MonitorLease

log = logging.getLogger("catalog.monitor")
HOLDER = f"{socket.gethostname()}:{os.getpid()}"[:200]
LEASES = MonitorLease.__table__
INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def take_lease(engine: Engine, name: str, now: int, every_ms: int) -> bool:
    """Whether this process may run job `name` now (then no other may for `every_ms`)."""
    with single_statement(engine) as conn:
        taken = conn.execute(update(LEASES).where(LEASES.c.name == name,
                                                  LEASES.c.next_run <= now)
                             .values(next_run=now + every_ms, holder=HOLDER)).rowcount
        if taken:
            return True
        first = INSERTS[conn.dialect.name](LEASES).values(
            name=name, next_run=now + every_ms, holder=HOLDER).on_conflict_do_nothing()
        return conn.execute(first.returning(LEASES.c.name)).first() is not None


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
            except Exception:  # noqa: BLE001 - the database may be away; keep going
                log.warning("%s: a round failed", self.name, exc_info=True)
