"""What keeps live queries current: a watcher that notices committed changes, and the results
of subscribed queries, shared by every session of a worker.

- `Watcher`: one per process. It polls two cheap fingerprints in the shared database (the
  catalog version and the statistics) and bumps the host's change marks when either moved, so
  a change made anywhere (another worker, another host, the console, the CLI) moves the marks
  that sessions and caches watch; whenever the marks moved (by anyone), it wakes the worker's
  sessions, which otherwise sleep until a message or a deadline. While the process hears the
  fleet's changes by push (engine/fleet.py, PostgreSQL), each notification wakes it instead,
  and it polls only every PUSH_RECHECK_SECONDS (for changes that sent none); without push
  (SQLite, or the channel lost) it polls every POLL_SECONDS.
- `LiveResults`: one result per (caller, function, arguments), kept with the marks it was
  computed under and what it read (engine/reads.py). It is computed again only when a mark it
  read has moved, and once for every session of the worker that subscribes to it: a
  statistics write does not re-run a quote, and a thousand sockets watching one query cost
  one run per change.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import func, select

from db import get_db
from db.engine import autocommit_connection
from db.schema import CatalogState, ModelStats
from engine.marks import Marks

log = logging.getLogger("catalog.sync")
POLL_SECONDS = 0.05
SLOTS = ("catalog", "stats")  # the marks a query's result can depend on
TRANSIENT = "transient"  # read by a result that is not one (the database was away)


class Watcher:
    """One per process: notices committed changes in the shared database."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._started = False
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._bells: set[threading.Event] = set()  # the sessions to wake on a change
        self.draining = False  # the worker is stopping: its sessions end (see drain)
        self._woken = threading.Event()  # set by the fleet's listener on each notification
        self.fleet = app.extensions["fleet"]
        self.fleet.on_change(self._woken.set)

    def listen(self, bell: threading.Event) -> None:
        with self._lock:
            self._bells.add(bell)

    def forget(self, bell: threading.Event) -> None:
        with self._lock:
            self._bells.discard(bell)

    def drain(self) -> None:
        """The worker is stopping (a deploy, a restart after max_requests): every live session
        ends with 1012 Service Restart, and its client reconnects at once to a worker that
        serves. A session would otherwise hold the stopping worker until gunicorn's graceful
        timeout, then lose its socket without a word."""
        self.draining = True
        self._ring()

    def _ring(self) -> None:
        with self._lock:
            bells = list(self._bells)
        for bell in bells:
            bell.set()

    def start(self) -> None:
        self.fleet.start()
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="catalog-watcher", daemon=True).start()

    def stop(self) -> None:
        """Stop watching (an app that is done; a worker's thread just ends with it)."""
        self._stopped.set()
        self._woken.set()

    def _fingerprint(self) -> tuple[int, tuple]:
        with autocommit_connection(get_db().engine) as conn:
            version = conn.scalar(select(CatalogState.version).where(CatalogState.id == 1))
            stats = conn.execute(select(func.coalesce(func.sum(ModelStats.total_generations), 0),
                                        func.coalesce(func.max(ModelStats.updated_at), 0))).one()
        return version, tuple(stats)

    def _run(self) -> None:
        marks = self.app.extensions["catalog_marks"]
        last, seen, polled = None, None, float("-inf")
        while not self._stopped.is_set():
            pushed = self.fleet.listening
            if not pushed or time.monotonic() - polled >= self.fleet.push_recheck:
                polled = time.monotonic()
                try:
                    with self.app.app_context():
                        current = self._fingerprint()
                    if last is not None and current != last:
                        # The caches may not know yet: the change came from another host, or
                        # its writer has not bumped the marks yet. Make them (and sessions)
                        # look again.
                        moved = {slot for slot, now, before
                                 in zip(SLOTS, current, last, strict=True) if now != before}
                        marks.bump(moved)
                    last = current
                except Exception:  # noqa: BLE001 - the database may be away; keep watching
                    log.warning("sync watcher could not read the catalog", exc_info=True)
            now = tuple(marks.read(slot) for slot in (*SLOTS, "access"))
            if now != seen:  # a change, from anywhere (a token revoked, too)
                seen = now
                self._ring()
            self._woken.wait(self.fleet.push_recheck if pushed else POLL_SECONDS)
            self._woken.clear()


@dataclass(frozen=True)
class Result:
    """A query's modification for the wire (without its queryId), and when it holds."""

    update: dict  # {"type": "QueryUpdated", "value", ...} or {"type": "QueryFailed", ...}
    canonical: str  # the update as JSON, to compare results and measure them
    marks: dict[str, int]  # the marks when it was computed
    reads: frozenset[str]  # the marks it depends on
    expires: int | None = None  # ms: it changes by itself then (a scheduled price)
    weight: int = 1  # what computing it weighed, in calls (engine.runtime.Context.weigh)

    @property
    def size(self) -> int:
        return len(self.canonical)

    def same_answer(self, other: Result, moment: str | None) -> bool:
        """Whether a subscriber that has `other` has this answer too: the same update, or one
        that differs only in the answer's `moment` (when it was computed: a quote's `at`)."""
        if self is other or self.canonical == other.canonical:
            return True
        return moment is not None and (_without(self.update, moment)
                                       == _without(other.update, moment))

    def current(self, marks: dict[str, int]) -> bool:
        if TRANSIENT in self.reads:
            return False
        if self.expires is not None and time.time() * 1000 >= self.expires:
            return False
        return all(marks[slot] == self.marks[slot] for slot in self.reads)


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)


def _without(update: dict, moment: str) -> dict:
    """The update less its answer's moment (a key, or a dotted path: `quote.at`)."""
    return {**update, "value": _drop(update.get("value"), moment.split("."))}


def _drop(value, path: list[str]):
    if not isinstance(value, dict) or path[0] not in value:
        return value
    if len(path) == 1:
        return {name: part for name, part in value.items() if name != path[0]}
    return {**value, path[0]: _drop(value[path[0]], path[1:])}


def encode(update: dict) -> str:
    return json.dumps(update, sort_keys=True, separators=(",", ":"), allow_nan=False)


class LiveResults:
    """The results of the queries a worker's sessions subscribe to, shared between them."""

    def __init__(self, marks: Marks) -> None:
        self._marks = marks
        self._held: dict[Hashable, Result | _Flight] = {}
        self._watchers: Counter[Hashable] = Counter()
        self._lock = threading.Lock()
        self.computed: Counter[Hashable] = Counter()  # runs per watched key (for tests)

    def marks(self) -> dict[str, int]:
        return {slot: self._marks.read(slot) for slot in SLOTS}

    def watch(self, key: Hashable) -> None:
        with self._lock:
            self._watchers[key] += 1

    def unwatch(self, key: Hashable) -> None:
        with self._lock:
            self._watchers[key] -= 1
            if self._watchers[key] <= 0:
                del self._watchers[key]
                self.computed.pop(key, None)
                if isinstance(self._held.get(key), Result):
                    del self._held[key]

    def result(self, key: Hashable,
               compute: Callable[[], tuple[dict, set[str], int | None, int]]) -> Result:
        """The current result for `key`: the one held, while no mark it read has moved, or
        one computed now (by one thread; the others that want it meanwhile wait for it)."""
        while True:
            marks = self.marks()  # before anything is read: a result is never newer than these
            with self._lock:
                held = self._held.get(key)
                if isinstance(held, Result) and held.current(marks):
                    return held
                if isinstance(held, _Flight):
                    flight = held
                else:
                    flight = self._held[key] = _Flight()
                    break
            flight.done.wait()
        result = None
        try:
            update, reads, expires, weight = compute()
            result = Result(update, encode(update), marks, frozenset(reads), expires, weight)
        finally:
            with self._lock:
                if self._held.get(key) is flight:
                    if result is not None and key in self._watchers:
                        self._held[key] = result
                    else:
                        del self._held[key]
                if result is not None and key in self._watchers:
                    self.computed[key] += 1
            flight.done.set()
        return result
