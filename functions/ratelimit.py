"""Fixed-window counters shared by every gunicorn worker on the host (a small SQLite file).

Used for the API's rate limit (per token, or per address without one) and for throttling
failed sign-ins (per account and per address). One atomic UPSERT per hit.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("catalog.ratelimit")
SCHEMA = """
CREATE TABLE IF NOT EXISTS hits (
    key TEXT NOT NULL,
    window INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key, window)
) WITHOUT ROWID
"""


class Counters:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._hits = 0

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
        try:
            conn = self._conn()
            count = conn.execute(
                "INSERT INTO hits (key, window, count) VALUES (?, ?, 1) "
                "ON CONFLICT (key, window) DO UPDATE SET count = count + 1 RETURNING count",
                (key, start),
            ).fetchone()[0]
            self._hits += 1
            if self._hits % 1000 == 0:
                conn.execute("DELETE FROM hits WHERE window < ?", (start - 86400,))
        except sqlite3.Error:
            log.warning("rate-limit counters unavailable; letting the request through",
                        exc_info=True)
            return 0, start + window - now
        return count, start + window - now

    def count(self, key: str, window: int) -> tuple[int, float]:
        now = time.time()
        start = int(now // window) * window
        try:
            row = self._conn().execute(
                "SELECT count FROM hits WHERE key = ? AND window = ?", (key, start)).fetchone()
        except sqlite3.Error:
            log.warning("rate-limit counters unavailable", exc_info=True)
            row = None
        return (row[0] if row else 0), start + window - now

    def clear(self, key: str) -> None:
        try:
            self._conn().execute("DELETE FROM hits WHERE key = ?", (key,))
        except sqlite3.Error:
            log.warning("rate-limit counters unavailable", exc_info=True)


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
