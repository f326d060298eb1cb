"""Change marks: counters shared by every process on the host that serves the same database.

A process that commits a change bumps the mark of what it changed (the catalog, the statistics,
the service tokens) after the commit and before it answers. A worker trusts what it cached only
while the mark it cached it under is unchanged, so a change is seen by the very next read on
every worker of the host, with no round trip to the database while nothing changes.

The marks live in a small memory-mapped file named after the database URL, in a folder every
process on the host sees (CATALOG_MARKS_DIR, or the system's temporary folder). Changes made
where the file is not shared (another host, a process given another URL or folder, a hand-made
SQL update) are noticed anyway: every RECHECK_SECONDS a process drops all its caches at once
(`Marks.epoch`). On SQLite it first asks the database whether anything was committed since the
last such check (`commit_count`, db/engine.py: SqliteCommits), and keeps them when nothing was:
dropping every cache of every worker every 50 ms cost held reads a fifth of their speed. On
PostgreSQL, while this process hears the fleet's push channel (engine/fleet.py), other hosts'
changes arrive as notifications that bump these marks, and caches recheck only every
PUSH_RECHECK_SECONDS (`recheck_seconds` below).

The check is one for the whole process, not one per cache, because caches nest: a held answer
is computed from the cached configuration and statistics. Were each cache to recheck on its own
clock, an answer started afresh (at its recheck, or because a mark moved) could be computed from
statistics cached before a commit made elsewhere and be kept under the newer count for good.

The file also holds the host's commit clock on SQLite (`tick`): the `ts` of a mutation answer.
"""

from __future__ import annotations

import fcntl
import hashlib
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
# How long a bump waits for another process's hold on the file before it bumps unlocked, and
# how long after such a wait the process's bumps only try the lock.
LOCK_WAIT_SECONDS = 0.1
STALLED_SECONDS = 1.0
_UNKNOWN = object()  # no count of commits read yet


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
        # The process's recheck (`epoch`): its number, when it was last made, the count of
        # commits it found then.
        self._epoch, self._checked_at, self._commits = 0, float("-inf"), _UNKNOWN
        self._checking = threading.Lock()
        self._stalled_until = float("-inf")  # see _lock_file
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

    def epoch(self) -> int:
        """The number under which this process's caches are current, about changes that moved
        no mark here: it moves at most every `recheck_seconds`, when the database's count of
        commits has moved since the last check (always, where there is no count). A cache
        started under an older number is out of date. The count is read before whatever the
        caller reads next, so a cache filled under a number is at least as new as that count."""
        now = time.monotonic()
        if now - self._checked_at < self.recheck_seconds:
            return self._epoch
        with self._checking:  # one thread checks; the others wait for its answer
            if now - self._checked_at < self.recheck_seconds:
                return self._epoch
            commits = self.commit_count()
            if commits is None or commits != self._commits:
                self._epoch += 1
                self._commits = commits
            self._checked_at = now  # after the number: a reader in the window sees the new one
            return self._epoch

    def clock(self) -> int:
        return struct.unpack_from("<Q", self._map, 8 * CLOCK)[0]

    def bump(self, slots: set[str], tick: bool = False) -> int:
        """Mark these as changed, for every process on the host.

        Called after a commit, so it never fails the change: if the file cannot be locked
        within LOCK_WAIT_SECONDS (its holder stopped: SIGSTOP, a debugger), the marks are
        bumped unlocked (two racing bumps may then count as one, which every worker still sees
        as a change, or at worst at its next recheck). With `tick`, the host's commit clock
        moves too, under the same lock, and its new value is answered.
        """
        with self._lock:
            locked = self._fd is not None and self._lock_file()
            try:
                for offset in [8 * SLOTS[slot] for slot in slots] + ([8 * CLOCK] if tick else []):
                    value = struct.unpack_from("<Q", self._map, offset)[0]
                    struct.pack_into("<Q", self._map, offset, (value + 1) % 2**64)
                return self.clock()
            finally:
                if locked:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _lock_file(self) -> bool:
        """Take the file's lock, waiting at most LOCK_WAIT_SECONDS: whether it was taken.

        Its holders hold it for a few arithmetic steps, so the first try nearly always takes
        it; a wait polls, starting at a few microseconds. Once a wait has run out, the next
        bumps of this process only try, for STALLED_SECONDS: its writers queue on the thread
        lock, and each waiting in turn would cost them a wait apiece."""
        waiting = 0.0 if time.monotonic() < self._stalled_until else LOCK_WAIT_SECONDS
        deadline, pause = time.monotonic() + waiting, 0.00002
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    if waiting:
                        log.warning("the change marks at %s stayed locked for %s s; bumped "
                                    "unlocked", self.path, LOCK_WAIT_SECONDS)
                        self._stalled_until = time.monotonic() + STALLED_SECONDS
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
            except OSError:
                log.warning("could not lock the change marks at %s", self.path, exc_info=True)
                return False


class Generation:
    """Cached values that are trusted while their marks and the process's epoch are unchanged.

    `values()` answers the current generation's dict, or a new, empty one once a mark has moved
    or the epoch has (`Marks.epoch`: every `recheck_seconds` at most, unless the database's count
    of commits says nothing was committed meanwhile). The marks and the epoch are read before the
    caller reads the database, so whatever the caller stores in the dict is at least as new as
    them, read from the database or from another cache of the same process.
    """

    def __init__(self, marks: Marks, *slots: str, new: Callable[[], dict] = dict) -> None:
        self._marks = marks
        self._new = new  # a generation's empty dict
        picked = itemgetter(*(SLOTS[slot] for slot in slots))
        self._pick = picked if len(slots) > 1 else lambda seen: (picked(seen),)
        self._held = _Held((), -1, {})

    def values(self) -> dict:
        held = self._held
        now_seen = self._pick(self._marks.read_all())
        epoch = self._marks.epoch()
        if held.marks == now_seen and held.epoch == epoch:
            return held.values
        # Threads racing here each start a valid generation; whichever is kept, is kept whole.
        fresh = self._new()
        self._held = _Held(now_seen, epoch, fresh)
        return fresh


class _Held(NamedTuple):
    """A generation: the marks and the epoch it was started at, and its values."""

    marks: tuple[int, ...]
    epoch: int
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
