"""What a query read: the change marks (engine/marks.py) its result depends on.

Derived, not declared: while a call is recorded, the read cache notes what it served
(`catalog` for the configuration, `stats` for statistics), and a handler that reads the
database itself is taken to depend on everything. A result that read only the configuration
cannot change with a statistics write, so a live query need not run again for one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

EVERYTHING = frozenset({"catalog", "stats"})

_reads: ContextVar[set[str] | None] = ContextVar("reads", default=None)
_in_cache: ContextVar[bool] = ContextVar("in_cache", default=False)


@contextmanager
def recording() -> Iterator[set[str]]:
    """Record, into the set yielded, what the calls made inside the block read."""
    reads: set[str] = set()
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


@contextmanager
def cached(*slots: str) -> Iterator[None]:
    """The read cache serves these marks' data; its own database reads count as those."""
    reads = _reads.get()
    if reads is None:
        yield
        return
    reads.update(slots)
    token = _in_cache.set(True)
    try:
        yield
    finally:
        _in_cache.reset(token)


def database() -> None:
    """A handler opened the database itself: its result may depend on anything."""
    reads = _reads.get()
    if reads is not None and not _in_cache.get():
        reads.update(EVERYTHING)
