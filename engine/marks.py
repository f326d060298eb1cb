"""Change marks: counters shared by every process on the host that serves the same database.

A process that commits a change bumps the mark of what it changed (the catalog, the statistics,
the service tokens) after the commit and before it answers. A worker trusts what it cached only
while the mark it cached it under is unchanged, so a change is seen by the very next read on
every worker of the host, with no round trip to the database while nothing changes.

The marks live in a small memory-mapped file named after the database URL, in a folder every
process on the host sees (CATALOG_MARKS_DIR, or the system's temporary folder). Changes made
where the file is not shared (another host, a process given another URL or folder, a hand-made
SQL update) are noticed anyway: every cache also goes back to the database once it is older
than RECHECK_SECONDS. On SQLite it first asks the database whether anything was committed since
the cache was filled (`commit_count`, db/engine.py: SqliteCommits), and keeps it when nothing was:
dropping every cache of every worker every 50 ms cost held reads a fifth of their speed. On
PostgreSQL, while this process hears the fleet's push channel
(engine/fleet.py), other hosts' changes arrive as notifications that bump these marks, and
caches recheck only every PUSH_RECHECK_SECONDS (`recheck_seconds` below).

The file also holds the host's commit clock on SQLite (`tick`): the `ts` of a mutation answer.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("catalog.marks")
SLOTS = {"catalog": 0, "stats": 1, "access": 2}
CLOCK = 3  # the slot of the host's commit clock (SQLite's `ts`)
SIZE = 4096
_ALL = struct.Struct(f"<{max(*SLOTS.values(), CLOCK) + 1}Q")  # every slot and the clock
# How stale a cache may be about changes made where the marks are not shared.
RECHECK_SECONDS = 0.05


def marks_path(folder: str, database_url: str) -> Path:
    """One file per database, in a folder every process on the host sees."""
    return Path(folder) / hashlib.sha256(database_url.encode()).hexdigest()[:32]


class Marks:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Set by the fleet's listener while it hears every change by push (None: it does not).
        self.pushed_recheck: float | None = None
        # A count the database keeps of commits (SQLite's): None, none is kept.
        self.commit_count: Callable[[], int | None] = lambda: None
        # This process's count of rechecks that found the database possibly changed (see
        # Generation): a generation started before the last of them is not current.
        self.rechecks = 0
        self._recheck_numbers = itertools.count(1)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size < SIZE:
                os.ftruncate(self._fd, SIZE)  # zero-filled; never shrinks a file in use
            self._map: mmap.mmap | bytearray = mmap.mmap(self._fd, SIZE)
        except OSError:
            # Without the shared file, this process still sees its own changes at once and
            # everyone else's within RECHECK_SECONDS.
            log.warning("change marks unavailable at %s; caches recheck every %s s", path,
                        RECHECK_SECONDS, exc_info=True)
            self._fd = None
            self._map = bytearray(SIZE)

    def read(self, slot: str) -> int:
        return struct.unpack_from("<Q", self._map, 8 * SLOTS[slot])[0]

    def read_all(self) -> tuple[int, ...]:
        """Every mark and the clock, by slot number (one read: a cache asks on every call)."""
        return _ALL.unpack_from(self._map)

    @property
    def recheck_seconds(self) -> float:
        """How stale a cache may be about changes that bumped no mark here: RECHECK_SECONDS,
        or longer while the fleet's push channel is heard (engine/fleet.py)."""
        if self.pushed_recheck is None:
            return RECHECK_SECONDS
        return max(RECHECK_SECONDS, self.pushed_recheck)

    def rechecked(self) -> None:
        """A cache found, at its recheck, that the database may have changed where no mark
        here moved: every cache of this process started before now is out of date."""
        self.rechecks = next(self._recheck_numbers)  # one step per call, threads racing or not

    def clock(self) -> int:
        return struct.unpack_from("<Q", self._map, 8 * CLOCK)[0]

    def bump(self, slots: set[str], tick: bool = False) -> int:
        """Mark these as changed, for every process on the host.

        Called after a commit, so it never fails the change: if the file cannot be locked, the
        marks are bumped unlocked (two racing bumps may then count as one, which every worker
        still sees as a change, or at worst at its next recheck). With `tick`, the host's
        commit clock moves too, under the same lock, and its new value is answered.
        """
        with self._lock:
            locked = False
            if self._fd is not None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX)
                    locked = True
                except OSError:
                    log.warning("could not lock the change marks at %s", self.path,
                                exc_info=True)
            try:
                for offset in [8 * SLOTS[slot] for slot in slots] + ([8 * CLOCK] if tick else []):
                    value = struct.unpack_from("<Q", self._map, offset)[0]
                    struct.pack_into("<Q", self._map, offset, (value + 1) % 2**64)
                return self.clock()
            finally:
                if locked:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)


class Generation:
    """Cached values that are trusted while their marks are unchanged and they are recent.

    `values()` answers the current generation's dict, or a new, empty one once a mark has
    moved or the marks' `recheck_seconds` have passed (unless the database's count of commits
    says nothing was committed meanwhile). The marks and that count are read before the caller
    reads the database, so whatever the caller stores in the dict is at least as new as them.

    Caches nest: a held answer is computed from the cached configuration and statistics. So
    when one generation is dropped at its recheck, every generation of the process started
    before it is dropped too (`Marks.rechecked`), even one whose own recheck has not come: an
    outer cache must never keep, under the newer count, what an inner one read before it.
    """

    def __init__(self, marks: Marks, *slots: str, new: Callable[[], dict] = dict) -> None:
        self._marks = marks
        self._new = new  # a generation's empty dict
        picked = itemgetter(*(SLOTS[slot] for slot in slots))
        self._pick = picked if len(slots) > 1 else lambda seen: (picked(seen),)
        self._held = _Held((), -1, float("-inf"), None, {})
        self._renewing = threading.Lock()

    def values(self) -> dict:
        held = self._held
        marks = self._marks
        now_seen = self._pick(marks.read_all())
        now = time.monotonic()
        if held.marks == now_seen and held.recheck == marks.rechecks:
            if now - held.at < marks.recheck_seconds:
                return held.values
            if held.commits is not None and marks.commit_count() == held.commits:
                with self._renewing:  # nothing committed: still true, unless replaced meanwhile
                    if self._held is held:
                        self._held = held._replace(at=now)
                    return self._held.values
            marks.rechecked()  # something may have been committed: no cache here is current
        # Threads racing here each start a valid generation; whichever is kept, is kept whole.
        fresh = self._new()
        self._held = _Held(now_seen, marks.rechecks, now, marks.commit_count(), fresh)
        return fresh


class _Held(NamedTuple):
    """A generation: the marks, the process's rechecks and the count of commits it was
    started at, when, its values."""

    marks: tuple[int, ...]
    recheck: int
    at: float
    commits: int | None
    values: dict


class _Flight:
    """A value being computed for a generation; the threads that want it meanwhile wait.

    `done` is held from the start until the value is in (a bare lock: an Event is a condition
    and a lock in Python, and a computed answer starts a flight on every call)."""

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.value: Any = None
        self.failed = False

    def wait(self) -> None:
        with self.done:
            pass


def once(values: dict, key: Any, compute: Callable[[], Any],
         keep: Callable[[Any], bool] = lambda value: True) -> Any:
    """`values[key]`, computed by one thread while the others that want it wait for that value.

    A generation starts empty, and on a busy worker every thread then misses the same keys at
    once: without this, each would read the database and compute the same value. The value is
    kept in `values` when `keep(value)`. If computing it fails, the failure is raised in the
    thread that computed it, and each waiting thread computes it anew.
    """
    while True:
        found = values.get(key)
        if found is None:
            flight = _Flight()
            found = values.setdefault(key, flight)
            if found is flight:
                return _fly(values, key, flight, compute, keep)
        if not isinstance(found, _Flight):
            return found
        found.wait()
        if not found.failed:
            return found.value


def _fly(values: dict, key: Any, flight: _Flight, compute: Callable[[], Any],
         keep: Callable[[Any], bool]) -> Any:
    try:
        flight.value = compute()
    except BaseException:
        flight.failed = True
        values.pop(key, None)
        raise
    else:
        if keep(flight.value):
            values[key] = flight.value
        else:
            values.pop(key, None)
        return flight.value
    finally:
        flight.done.release()
