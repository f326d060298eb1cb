"""A fleet of hosts on one PostgreSQL: commit timestamps, and changes pushed by the database.

- `ts`: every mutation answer carries one. On PostgreSQL it is the value of the one-row
  `fleet_clock` table, moved by one after the mutation has committed (`tick`) by a statement
  that also sends `NOTIFY catalog_changes, '<ts> <marks>'`. The row lock orders the ticks: they
  commit in the order of their values, with no gaps, and PostgreSQL delivers notifications in
  commit order. So a process that has heard `ts` has heard every change answered before it.
  Concurrent ticks of one process are grouped (one statement for all of them), as the
  statistics' writes are. On SQLite (one host) it is the host's clock in the marks file.
- `Fleet`: one per process. On PostgreSQL a thread LISTENs on its own connection: each
  notification bumps the host's marks (engine/marks.py) and wakes the live sessions. While it
  listens, caches trust the marks for PUSH_RECHECK_SECONDS instead of RECHECK_SECONDS, so an
  idle host sends no statement at all. When its connection is lost, the marks' short recheck
  comes back at once, and the thread reconnects by itself (then bumps every mark: it may have
  missed changes meanwhile).
- Recordings (`models:updateModelStats`, `models:recordGenerations`) tick the clock in their
  own statement (`recording_tick`, before any row it adds to), with no NOTIFY: at hundreds of
  recordings a second, a second statement and a notification to every listener each cost a
  third of their speed. A `Herald` announces this process's latest such tick within
  ANNOUNCE_SECONDS, and a listener that hears a value past the one after its last bumps the
  statistics' mark: the ticks it did not hear of were recordings' (every other tick notifies
  in its own transaction). So the fleet normally hears of a recording within that bound.
- `reached(ts)`: whether this process answers from a state that includes `ts` (`minTs`),
  after waiting up to a bound for the notification (or, not listening, for the clock row).

What is not pushed is still noticed: a hand-made SQL update, or a writer that died between
its commit and its tick, within PUSH_RECHECK_SECONDS on a host that serves requests. A
recording whose announcement was lost (its worker killed within ANNOUNCE_SECONDS) is heard of
with the next notification, and a `minTs` naming it reads afresh after MIN_TS_WAIT_SECONDS.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import BigInteger, Engine, TextualSelect, column, text
from sqlalchemy.exc import SQLAlchemyError

from db.engine import CONNECT_ARGS, autocommit_connection, reason
from engine import process
from engine.errors import TransportError
from engine.marks import SLOTS, Marks

log = logging.getLogger("catalog.fleet")
CHANNEL = "catalog_changes"
EVERY_MARK = frozenset(SLOTS)


def _notify(ts: str) -> str:
    """The notification of a change: '<ts> <marks>' on CHANNEL (read back by Fleet._note)."""
    return f"pg_notify('{CHANNEL}', CAST({ts} AS text) || ' ' || :marks)"


# The tick's commit does not wait for its WAL to reach the disk (synchronous_commit off, for
# this statement only): the change it announces has committed durably on its own, and a tick
# lost in a crash of the database only makes minTs values above the restored clock wait for
# the next write. Waiting for a second flush per group of writes cost statistics writes a
# third of their speed.
TICK_SQL = "UPDATE fleet_clock SET ts = ts + 1 WHERE id = 1 RETURNING ts"
TICK = text(
    "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)), "
    f"c AS ({TICK_SQL}) SELECT ts, {_notify('ts')} FROM c, quick")
CLOCK_SQL = "SELECT ts FROM fleet_clock WHERE id = 1"
ANNOUNCE = text(f"SELECT {_notify(':ts')}")
# The marks a recording may change: a listener that missed ticks bumps these.
RECORDING_MARKS = frozenset({"stats"})
# How soon the fleet hears of a recording: the Herald's one notification for every recording
# ticked meanwhile (a `minTs` of a recording waits about this long for it, on other hosts).
ANNOUNCE_SECONDS = 0.02
CLOCK = text(CLOCK_SQL)
# How long a change to tokens (a revocation) waits to hear its own notification back.
ACCESS_WAIT_SECONDS = 1.0
# Threads of a process that may wait for a `minTs` at once; more are answered 503 at once.
WAITERS = 8
# How operators (and the tests) find the listeners in pg_stat_activity.
APPLICATION_NAME = "catalog-fleet-listener"


class Clock:
    """Ticks of the fleet's clock, grouped: a caller whose change committed before a tick
    began is answered that tick's value, so concurrent writers share one statement."""

    def __init__(self, tick: Callable[[frozenset[str]], int | None]) -> None:
        self._tick = tick
        self._lock = threading.Lock()  # the queue
        self._flight = threading.Lock()  # one statement at a time
        self._asked = self._done = 0
        self._marks: set[str] = set()
        self._ts: int | None = None

    def tick(self, marks: set[str]) -> int | None:
        with self._lock:
            self._asked += 1
            ticket = self._asked
            self._marks |= marks
        with self._flight:
            if self._done >= ticket:  # a tick that began after this change answered it
                return self._ts
            with self._lock:
                covered, marks, self._marks = self._asked, frozenset(self._marks), set()
            ts = None
            try:
                ts = self._tick(marks)
            finally:
                self._done, self._ts = covered, ts
            return ts


def recording_tick() -> TextualSelect:
    """The clock's tick as a statement of a recording's own transaction (functions/usage.py),
    answering the new `ts`; it sends no notification (the Herald announces it)."""
    return text(TICK_SQL).columns(column("ts", BigInteger))


class Herald:
    """Announces the clock values recordings ticked without a notification: at most
    ANNOUNCE_SECONDS after the first of them, one notification for the latest."""

    def __init__(self, send: Callable[[int], None], stopped: threading.Event) -> None:
        self._send, self._stopped = send, stopped
        self._due = threading.Condition()
        self._sending = threading.Lock()  # one flush at a time (see flush)
        self._latest: int | None = None
        self._pid: int | None = None

    def announce(self, ts: int) -> None:
        with self._due:
            self._latest = ts if self._latest is None else max(self._latest, ts)
            if self._pid != process.pid():  # first use, or a forked child: no thread yet
                self._pid = process.pid()
                self._sending = threading.Lock()  # (a child's copy may be held by no thread)
                threading.Thread(target=self._run, name="catalog-herald", daemon=True).start()
                atexit.register(self.flush)  # a worker that ends owes its last announcement
            self._due.notify()

    def flush(self) -> None:
        """Send what is owed now (nothing once the fleet is stopped: its engine is gone).
        One flush at a time: a stop's flush waits for the herald thread's, which took what was
        owed and must still send it (the fleet stops after its own flush)."""
        with self._sending:
            with self._due:
                ts, self._latest = self._latest, None
            if ts is None or self._stopped.is_set():
                return
            try:
                self._send(ts)
            except Exception:  # noqa: BLE001 - a reader's minTs still reads afresh in time
                log.warning("could not announce recordings up to ts %s", ts, exc_info=True)

    def _run(self) -> None:
        while not self._stopped.is_set():
            with self._due:
                if self._latest is None:
                    self._due.wait(1.0)
                    continue
            self._stopped.wait(ANNOUNCE_SECONDS)  # the recordings of the interval join it
            self.flush()


class Fleet:
    """This process's view of the fleet's clock and push channel (see the module)."""

    def __init__(self, marks: Marks, engine: Callable[[], Engine], push_recheck: float) -> None:
        self.marks, self._engine, self.push_recheck = marks, engine, push_recheck
        self.seen = 0  # every change up to this ts is in the marks (while listening)
        self.listening = False
        self.reconnects = 0  # connections made after the first (for tests and metrics)
        self._changed = threading.Condition()
        self._callbacks: list[Callable[[], None]] = []
        self._pid: int | None = None
        self._stopped = threading.Event()
        self._clock = Clock(self._tick)
        self._herald = Herald(self._announce, self._stopped)
        self._waiters = threading.BoundedSemaphore(WAITERS)
        self._confirmed = 0  # without the channel: the clock value caches were last reset at

    @property
    def postgres(self) -> bool:
        return self._engine().dialect.name == "postgresql"

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` (quick, never failing) after each notification is in the marks."""
        self._callbacks.append(callback)

    # -- the writer's side ------------------------------------------------------------------

    def committed(self, changed: set[str], ticked: int | None = None) -> int | None:
        """After a mutation's commit: bump the marks of what it changed and answer its `ts`
        (None, logged, when the clock could not be ticked: the change stands). `ticked`: the
        value its own transaction ticked (a recording's), announced by the Herald."""
        if not self.postgres:
            return self.marks.bump(changed, tick=True) if changed else self.marks.clock()
        if ticked is not None and changed <= RECORDING_MARKS:
            self.marks.bump(changed)
            self._herald.announce(ticked)
            return ticked
        if ticked is not None:  # a bug: only recordings may tick without a notification
            log.error("a mutation that changed %s ticked the clock itself; ticked again, "
                      "with a notification", sorted(changed))
        if changed:
            self.marks.bump(changed)  # this host at once, before the answer
            ts = self._clock.tick(changed)
            if ts is not None and "access" in changed:
                # A revocation is answered once this worker has heard it back: the database
                # has then handed the notification to every listener, so what is left of
                # the race with a request on another host is that host's reading of it.
                self.reached(ts, ACCESS_WAIT_SECONDS)
            return ts
        return self.now()

    def now(self) -> int | None:
        """A ts that every change answered so far is at or before."""
        if not self.postgres:
            return self.marks.clock()
        return self.seen if self.listening else self.committed_ts()

    def committed_ts(self) -> int | None:
        """The fleet's clock as committed (PostgreSQL): one read of its row."""
        return self._one(CLOCK, {}, "could not read the fleet's clock")

    def _tick(self, marks: frozenset[str]) -> int | None:
        return self._one(TICK, {"marks": ",".join(sorted(marks))},
                         "could not tick the fleet's clock; other hosts see this change at "
                         "their next recheck")

    def _announce(self, ts: int) -> None:
        self._one(ANNOUNCE, {"ts": ts, "marks": ",".join(sorted(RECORDING_MARKS))},
                  f"could not announce recordings up to ts {ts}; other hosts see them at the "
                  "next change, a minTs after MIN_TS_WAIT_SECONDS (read afresh)")

    def _one(self, statement, params: dict, failed: str) -> Any:
        """The first column of one statement's first row, in autocommit; None, logged with
        `failed`, when the database cannot be reached."""
        try:
            with autocommit_connection(self._engine()) as conn:
                row = conn.execute(statement, params).first()
        except SQLAlchemyError:
            log.warning(failed, exc_info=True)
            return None
        if row is None:
            log.warning("fleet_clock has no row: run `flask db upgrade`")
            return None
        return row[0]

    # -- the reader's side ------------------------------------------------------------------

    def reached(self, ts: int, timeout: float) -> bool:
        """Whether this process now answers from a state that includes `ts`, after waiting
        up to `timeout` seconds to hear of it.

        Only a `ts` some mutation was answered can be waited for: a larger one is refused at
        once (a client's guess must not hold a thread), and at most WAITERS threads of a
        process wait at a time. A committed `ts` not heard of in time (not listening, its
        notification lost with the worker that owed it, a slow listener) is reached by reading
        afresh."""
        if not self.postgres:  # one host: every write moves its clock before it is answered
            return self.marks.clock() >= ts
        if self.seen >= ts or ts <= self._confirmed:
            return True
        now = self.committed_ts()
        if now is None or now < ts:
            return False
        if not self._waiters.acquire(blocking=False):
            return False
        try:
            deadline = time.monotonic() + timeout
            with self._changed:
                while self.listening and self.seen < ts:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
                if self.seen >= ts:
                    return True
        finally:
            self._waiters.release()
        # Not heard: the clock row says `ts` is committed; read afresh (once for every change
        # up to `now`: caches filled after that first bump already hold them).
        with self._changed:
            fresh, self._confirmed = now > self._confirmed, max(self._confirmed, now)
        if fresh:
            self.marks.bump(set(EVERY_MARK))
        return True

    # -- the listener -----------------------------------------------------------------------

    def start(self) -> None:
        """Listen, in this process (once; again in a forked child), on PostgreSQL."""
        if self._pid == process.pid() or self._stopped.is_set():  # every call asks: kept cheap
            return
        with self._changed:
            if self._pid == process.pid():
                return
            self._pid = process.pid()
            if not self.postgres:
                return
            self.listening = False  # a forked child inherits the flag, not the thread
            threading.Thread(target=self._listen, name="catalog-fleet", daemon=True).start()

    def stop(self) -> None:
        self._herald.flush()
        self._stopped.set()

    def _heard(self, ts: int, marks: set[str]) -> None:
        if marks:
            self.marks.bump(marks)  # first: whoever sees `seen` move finds the marks moved
        with self._changed:
            self.seen = max(self.seen, ts)
            self._changed.notify_all()
        for callback in self._callbacks:
            callback()

    def _connect(self):
        import psycopg

        engine = self._engine()
        _, params = engine.dialect.create_connect_args(engine.url)
        # (CONNECT_ARGS: a listener whose server vanished without a word, a cut network,
        # notices as the pools' connections do, at no cost to the database.)
        return psycopg.connect(**{**params, **CONNECT_ARGS, "application_name": APPLICATION_NAME},
                               autocommit=True)

    def _listen(self) -> None:
        import psycopg  # PostgreSQL's alone (a fleet is on PostgreSQL)

        backoff, connections, warned = 0.1, 0, False
        while not self._stopped.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # After LISTEN: what committed before is in this value, what commits
                    # after is notified. Changes missed meanwhile: every mark moves.
                    at = conn.execute(CLOCK_SQL).fetchone()
                    connections += 1
                    self.reconnects = connections - 1
                    self.marks.pushed_recheck = self.push_recheck
                    self._heard(at[0] if at else 0, set(EVERY_MARK))
                    self.listening = True  # after its bump: who sees it listening sees that
                    backoff, warned = 0.1, False
                    while not self._stopped.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._note(note.payload)
            except Exception as error:  # noqa: BLE001 - the database may be away: recheck,
                self._deaf()  # reconnect
                if not self._stopped.is_set():  # once an outage; its retries quietly
                    # The driver's own line names the cause an operator acts on (a refused
                    # password, a host that does not answer); a traceback only when unknown.
                    known = isinstance(error, psycopg.OperationalError)
                    cause = reason(error)
                    log.log(logging.DEBUG if warned else logging.WARNING,
                            "fleet listener lost its connection to the database (%s); caches "
                            "recheck every %s s until it is back", cause,
                            self.marks.recheck_seconds, exc_info=not known)
                    warned = True
            finally:
                self._deaf()
            self._stopped.wait(backoff)
            backoff = min(5.0, backoff * 2)

    def _deaf(self) -> None:
        self.marks.pushed_recheck = None  # back to the short recheck first
        with self._changed:
            self.listening = False
            self._changed.notify_all()  # waiters fall back to the clock row

    def _note(self, payload: str) -> None:
        ts, _, marks = payload.partition(" ")
        try:
            seen = int(ts)
        except ValueError:  # not ours: someone else's NOTIFY on the channel
            log.warning("ignored a notification %r on %s", payload[:80], CHANNEL)
            return
        heard = set(marks.split(",")) & EVERY_MARK
        if seen > self.seen + 1:  # the ticks between were recordings' (see the module)
            heard |= RECORDING_MARKS
        self._heard(seen, heard)


def fleet() -> Fleet:
    return current_app.extensions["fleet"]


def check_min_ts(raw: Any) -> int | None:
    """A request's `minTs`: absent (None), or a whole number 0..2**63-1; else a 400."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < 2**63:
        raise TransportError(400, "BadMinTs", "'minTs' must be a whole number from 0 to "
                                              "2**63-1: the `ts` of a mutation answer")
    return raw


def require(min_ts: int) -> None:
    """Return once this process answers from a state that includes `min_ts` (heard of within
    MIN_TS_WAIT_SECONDS, or read afresh then); a 503 with Retry-After when no write was answered
    that `ts`, the database is unreachable or too many queries wait."""
    if not fleet().reached(min_ts, current_app.config["MIN_TS_WAIT_SECONDS"]):
        raise TransportError(
            503, "NotYetSeen",
            f"This host has not seen ts {min_ts} yet: a ts no write of this catalog has been "
            "answered, the database is unreachable, or too many queries wait here; retry "
            "shortly",
            {"Retry-After": "1"})
