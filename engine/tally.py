"""Group commit for statistics: concurrent recordings of one model, written as one statement.

Every finished generation calls `models:updateModelStats`, and on a busy platform many of them
at once for the same few models. Written one statement each, they queue on the model's row:
each waits for the one before it to commit (and, on PostgreSQL, to reach the disk).

A `Tally` lets the calls of one process that arrive while a statement for their model is in
flight join one batch, which the first of them (its leader) writes as one statement adding
all of their increments. The contract is unchanged:

- a call returns only after the statement holding its increment committed, and fails (and
  changes nothing) if that statement failed: acknowledged means recorded;
- each call gets the totals a serial order of the batch gives: its own increment included,
  the ones after it in the batch not;
- a call that finds no statement in flight for its model is written at once: no call waits
  for company.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from flask import current_app


class Totals(NamedTuple):
    """A model's statistics columns."""

    total_generations: int
    successful_generations: int
    total_time_micros: int


@dataclass
class Batch:
    """The increments of the calls that share one statement, in the order they joined."""

    successes: list[int] = field(default_factory=list)
    micros: list[int] = field(default_factory=list)
    now: int = 0
    written: threading.Event = field(default_factory=threading.Event)
    totals: Totals | None = None  # after the statement; None: no such model
    error: BaseException | None = None

    def join(self, success: int, micros: int, now: int) -> int:
        self.successes.append(success)
        self.micros.append(micros)
        self.now = max(self.now, now)
        return len(self.successes) - 1

    def increments(self) -> tuple[int, int, int, int]:
        """The batch's increments and its time: one statement's parameters."""
        return len(self.successes), sum(self.successes), sum(self.micros), self.now

    def totals_after(self, place: int) -> Totals | None:
        """The totals right after the call in `place`: the later calls' increments taken off."""
        if self.totals is None:
            return None
        later = slice(place + 1, None)
        return Totals(self.totals.total_generations - len(self.successes[later]),
                      self.totals.successful_generations - sum(self.successes[later]),
                      self.totals.total_time_micros - sum(self.micros[later]))


class Tally:
    """The statistics batches of one process, by model."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._joining: dict[str, Batch] = {}  # a batch that calls may still join, by model
        self._writing: set[str] = set()  # models with a statement in flight

    def waiting(self, model_id: str) -> int:
        """How many calls for this model wait for the next statement."""
        with self._lock:
            batch = self._joining.get(model_id)
            return 0 if batch is None else len(batch.successes)

    def record(self, model_id: str, success: int, micros: int, now: int,
               write: Callable[[int, int, int, int], Sequence[int] | None]) -> Totals | None:
        """Add one generation; `write(count, successes, micros, now)` runs one statement that
        adds a batch's increments and returns the model's totals (None: no such model)."""
        with self._lock:
            batch = self._joining.get(model_id)
            leads = batch is None
            if leads:
                batch = self._joining[model_id] = Batch()
            place = batch.join(success, micros, now)
            if leads:
                while model_id in self._writing:  # meanwhile, later calls join this batch
                    self._lock.wait()
                del self._joining[model_id]
                self._writing.add(model_id)
        if leads:
            try:
                written = write(*batch.increments())
                batch.totals = None if written is None else Totals(*written)
            except BaseException as error:
                batch.error = error
            finally:
                with self._lock:
                    self._writing.discard(model_id)
                    self._lock.notify_all()
                batch.written.set()
        else:
            batch.written.wait()
        if batch.error is not None:
            raise batch.error
        return batch.totals_after(place)


def stats_tally() -> Tally:
    return current_app.extensions["stats_tally"]
