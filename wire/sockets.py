"""How many live-query sockets a worker holds, in all and per address, and how many queries
one address subscribes to on it.

Under gunicorn's gthread worker, an open socket holds a thread for as long as it is open.
gunicorn runs SYNC_SOCKETS_PER_WORKER threads more than GUNICORN_THREADS
(config.server_settings), and a worker admits at most that many sockets, so the
GUNICORN_THREADS threads of plain requests are never taken by sockets. One address may hold
at most SYNC_SOCKETS_PER_ADDRESS of a worker's sockets. A socket past either cap is refused
before the upgrade, with 503 `TooManySockets` and `Retry-After` (the Convex clients retry with
backoff).

Each subscription with arguments of its own is run again when what it read changes (statistics
move on every recorded generation), so one address's subscriptions cost the worker in
proportion to their count: it may hold at most SYNC_QUERIES_PER_ADDRESS of them across its
sockets on a worker; an `Add` past that is answered `QueryFailed` (`TooManyQueries`).
"""

from __future__ import annotations

import threading
from collections import Counter


class SocketSlots:
    def __init__(self, per_worker: int, per_address: int) -> None:
        self.per_worker, self.per_address = per_worker, per_address
        self._open: Counter[str | None] = Counter()
        self._queries: Counter[str | None] = Counter()  # subscriptions, by address
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        with self._lock:
            return sum(self._open.values())

    def take(self, address: str | None) -> str | None:
        """Take a slot for a socket from `address`; why not, when it cannot have one."""
        with self._lock:
            if sum(self._open.values()) >= self.per_worker:
                return f"This worker holds its {self.per_worker} live-query sockets; retry later"
            if not _count_in(self._open, address, self.per_address):
                return (f"This address holds {self.per_address} live-query sockets on this "
                        "worker already")
            return None

    def give_back(self, address: str | None) -> None:
        with self._lock:
            _count_out(self._open, address)

    def take_query(self, address: str | None, per_address: int, weight: int = 1) -> bool:
        """Count a subscription of `address` as `weight` queries (what running it weighs:
        engine.runtime.Context.weigh); False when that would pass `per_address`."""
        with self._lock:
            return _count_in(self._queries, address, per_address, weight)

    def give_back_query(self, address: str | None, weight: int = 1) -> None:
        with self._lock:
            _count_out(self._queries, address, weight)


def _count_in(counts: Counter, address: str | None, most: int, count: int = 1) -> bool:
    """`count` more for `address`, unless that passes `most` (under the caller's lock)."""
    if counts[address] + count > most:
        return False
    counts[address] += count
    return True


def _count_out(counts: Counter, address: str | None, count: int = 1) -> None:
    """`count` fewer for `address`; an address holding none is forgotten (under the caller's
    lock)."""
    counts[address] -= count
    if counts[address] <= 0:
        del counts[address]
