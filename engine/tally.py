"""Group commit for statistics: concurrent recordings, written as one statement.

Every finished generation is recorded (`models:updateModelStats`, `models:recordGenerations`),
and on a busy platform many at once, for the same few models. Written one statement each, they
queue on the models' rows: each waits for the one before it to commit (and, on PostgreSQL, to
reach the disk).

A `Tally` lets the calls of one process that arrive while a statement is in flight join one
batch, which the first of them (its leader) writes as one statement (or, where one statement
cannot hold it, one transaction) adding all of their items. The contract:

- a call returns only after the statement holding its items committed, and fails (and
  changes nothing) if that statement failed: acknowledged means recorded;
- each call learns what the write answered for the whole batch and which items joined after
  its own, so it can answer what a serial order gives it (its own items included, the later
  ones not);
- a call that finds no statement in flight is written at once: no call waits for company.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from flask import current_app

Item = TypeVar("Item")


class Totals(NamedTuple):
    """A model's statistics columns."""

    total_generations: int
    successful_generations: int
    total_time_micros: int


@dataclass
class Batch(Generic[Item]):
    """The items of the calls that share one statement, by call, in the order they joined."""

    calls: list[Sequence[Item]] = field(default_factory=list)
    written: threading.Event = field(default_factory=threading.Event)
    result: Any = None  # what the write answered
    error: BaseException | None = None

    def join(self, items: Sequence[Item]) -> int:
        self.calls.append(items)
        return len(self.calls) - 1

    def items(self) -> list[Item]:
        return [item for call in self.calls for item in call]

    def later(self, place: int) -> list[Item]:
        """The items of the calls that joined after the one in `place`."""
        return [item for call in self.calls[place + 1:] for item in call]


class Tally:
    """The statistics batches of one process, by key."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._joining: dict[Hashable, Batch] = {}  # a batch that calls may still join, by key
        self._writing: set[Hashable] = set()  # keys with a statement in flight

    def waiting(self, key: Hashable) -> int:
        """How many calls wait for the next statement under this key."""
        with self._lock:
            batch = self._joining.get(key)
            return 0 if batch is None else len(batch.calls)

    def writing(self, key: Hashable) -> bool:
        """Whether a statement is in flight under this key."""
        with self._lock:
            return key in self._writing

    def record(self, key: Hashable, items: Sequence[Item],
               write: Callable[[list[Item]], Any]) -> tuple[Any, list[Item]]:
        """Add items; `write(items)` writes a whole batch's items at once and answers what the
        callers need. Returns that answer and the items that joined the batch after these."""
        with self._lock:
            batch = self._joining.get(key)
            leads = batch is None
            if leads:
                batch = self._joining[key] = Batch()
            place = batch.join(items)
            if leads:
                while key in self._writing:  # meanwhile, later calls join this batch
                    self._lock.wait()
                del self._joining[key]
                self._writing.add(key)
        if leads:
            try:
                batch.result = write(batch.items())
            except BaseException as error:
                batch.error = error
            finally:
                with self._lock:
                    self._writing.discard(key)
                    self._lock.notify_all()
                batch.written.set()
        else:
            batch.written.wait()
        if batch.error is not None:
            raise batch.error
        return batch.result, batch.later(place)


def stats_tally() -> Tally:
    return current_app.extensions["stats_tally"]
