"""Fixed-window counters shared by every gunicorn worker on the host (a small SQLite file), or
by every host of a fleet (the `rate_hits` table of the catalog's PostgreSQL database).

Used for throttling failed sign-ins (per account and per address: `hit`, one atomic UPSERT per
hit) and for the API's rate limit (per token, or per address without one: `take`, which adds
hits to the shared count in batches while far from the limit). Both stores take the same
statements: one UPSERT ... RETURNING per flush, in autocommit.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from db.engine import autocommit_connection

log = logging.getLogger("catalog.ratelimit")
SCHEMA = """
CREATE TABLE IF NOT EXISTS hits (
    key TEXT NOT NULL,
    window INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key, window)
) WITHOUT ROWID
"""


# A worker adds its API hits to the shared count at least this often.
FLUSH_SECONDS = 0.1


@dataclass
class Tally:
    """One key's hits in this process: the shared count it last saw, and hits not yet added."""

    window: int
    known: int = 0
    pending: int = 0
    flushed: float = 0.0


# The same statements on both stores: the host's file (table `hits`) and the catalog's
# database (`rate_hits`, whose column is not named `window`, a reserved word in PostgreSQL).
ADD = ("INSERT INTO {table} (key, {window}, count) VALUES (:k, :w, :n) "
       "ON CONFLICT (key, {window}) DO UPDATE SET count = {table}.count + excluded.count "
       "RETURNING count")
OLD = "DELETE FROM {table} WHERE {window} < :before"
COUNT = "SELECT count FROM {table} WHERE key = :k AND {window} = :w"
HOST = {"table": "hits", "window": "window"}
FLEET = {"table": "rate_hits", "window": "window_start"}


class Counters:
    """`database`: keep the counts in its `rate_hits` table (fleet-wide) instead of the file."""

    def __init__(self, path: Path, database: Engine | None = None) -> None:
        self.path, self.database = path, database
        self._local = threading.local()
        self._hits = 0
        self._tallies: dict[str, Tally] = {}
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute(SCHEMA)
            self._local.conn = conn
        return conn

    def hit(self, key: str, window: int) -> tuple[int, float]:
        """Count one hit; returns the window's count and the seconds until it ends.

        If the counters cannot be written (the file is busy past its timeout, the disk is
        full), the hit is let through and logged: a limiter must never fail a request.
        """
        now = time.time()
        start = int(now // window) * window
        return self._add(key, start, 1), start + window - now

    def take(self, key: str, window: int, limit: int, hits: int = 1) -> tuple[int, float]:
        """Count `hits` (one call, or what a costly one weighs) against `limit`; returns the
        window's count and the seconds left.

        Far from the limit, hits are counted in this process and added to the shared count
        in batches: at most limit/100 hits or FLUSH_SECONDS apart. Near it, every hit is added
        at once and the shared count decides. So each other worker can hide at most 1% of the
        limit (or FLUSH_SECONDS of its hits) when a caller reaches it; below 100 a window,
        every hit is shared at once.
        """
        now, clock = time.time(), time.monotonic()
        start = int(now // window) * window
        batch = limit // 100
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None or tally.window != start:
                if len(self._tallies) > 10_000:
                    self._tallies = {k: t for k, t in self._tallies.items() if t.window >= start}
                tally = self._tallies[key] = Tally(start)
            tally.pending += hits
            estimate = tally.known + tally.pending
            if (tally.pending <= batch and estimate + batch < limit
                    and clock - tally.flushed < FLUSH_SECONDS):
                return estimate, start + window - now
            pending, tally.pending, tally.flushed = tally.pending, 0, clock
        count = self._add(key, start, pending)
        with self._lock:
            tally.known = max(tally.known, count)
        return count, start + window - now

    def _add(self, key: str, start: int, hits: int) -> int:
        """Add hits to the shared count; 0 (let through, logged) when it cannot be written."""
        self._hits += 1
        forget = self._hits % 1000 == 0
        if self.database is not None:
            return self._add_to_database(key, start, hits, forget)
        try:
            conn = self._conn()
            count = conn.execute(ADD.format(**HOST), {"k": key, "w": start, "n": hits}
                                 ).fetchone()[0]
            if forget:
                conn.execute(OLD.format(**HOST), {"before": start - 86400})
        except (sqlite3.Error, OSError):  # OSError: its folder went away
            log.warning("rate-limit counters unavailable; letting the request through",
                        exc_info=True)
            return 0
        return count

    def _add_to_database(self, key: str, start: int, hits: int, forget: bool) -> int:
        try:
            with autocommit_connection(self.database) as conn:
                count = conn.execute(text(ADD.format(**FLEET)),
                                     {"k": key, "w": start, "n": hits}).scalar_one()
                if forget:
                    conn.execute(text(OLD.format(**FLEET)), {"before": start - 86400})
        except SQLAlchemyError:
            log.warning("rate-limit counters unavailable; letting the request through",
                        exc_info=True)
            return 0
        return count

    def count(self, key: str, window: int) -> tuple[int, float]:
        now = time.time()
        start = int(now // window) * window
        if self.database is not None:
            try:
                with autocommit_connection(self.database) as conn:
                    found = conn.execute(text(COUNT.format(**FLEET)),
                                         {"k": key, "w": start}).scalar()
            except SQLAlchemyError:
                log.warning("rate-limit counters unavailable", exc_info=True)
                found = None
            return (found or 0), start + window - now
        try:
            row = self._conn().execute(COUNT.format(**HOST), {"k": key, "w": start}).fetchone()
        except (sqlite3.Error, OSError):  # OSError: its folder went away
            log.warning("rate-limit counters unavailable", exc_info=True)
            row = None
        return (row[0] if row else 0), start + window - now


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def counters() -> Counters:
    """The app's shared counters (rate limits, sign-in throttles)."""
    return current_app.extensions["counters"]
