"""Group commit of statistics (engine/tally.py): the recordings that arrive while a statement
is in flight share the next statement, and each call still gets the answer a serial order
gives it."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from decimal import Decimal

from sqlalchemy import event, select, update

from db.engine import engines
from db.schema import Model, ModelStats
from engine.tally import Tally, Totals
from tests.conftest import run_as_system
from tests.servers import wait_for
from tests.test_catalog import FLASH

STATS = ModelStats.__table__


@contextmanager
def row_held(app, model_id: str):
    """Another transaction holds the model's statistics row (on SQLite, the write lock)."""
    engine = app.extensions["catalog_db"].engine
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(update(STATS)
                     .where(STATS.c.model_pk == select(Model.id)
                            .where(Model.model_id == model_id).scalar_subquery())
                     .values(updated_at=STATS.c.updated_at))
        try:
            yield
        finally:
            transaction.rollback()


@contextmanager
def stats_statements(app):
    """The statements that record generations (the models' totals with their usage rows), run
    meanwhile."""
    pools = engines(app.extensions["catalog_db"].engine)  # on PostgreSQL, an autocommit twin
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO model_stats" in statement:  # with its usage rows (functions/usage.py)
            seen.append(statement)

    for engine in pools:
        event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        for engine in pools:
            event.remove(engine, "before_cursor_execute", note)


def test_calls_during_a_write_share_the_next_statement_in_a_serial_order(seeded):
    tally: Tally = seeded.extensions["stats_tally"]
    seconds = {"first": Decimal("1.5"), **{f"c{i}": Decimal(i + 2) for i in range(5)}}
    success = {"first": True, **{f"c{i}": i % 2 == 0 for i in range(5)}}
    answers: dict[str, dict] = {}

    def record(name: str) -> None:
        answers[name] = run_as_system(seeded, "models:updateModelStats", {
            "modelId": FLASH, "generationTime": float(seconds[name]), "success": success[name]})

    first = threading.Thread(target=record, args=("first",))
    others = [threading.Thread(target=record, args=(f"c{i}",)) for i in range(5)]
    with stats_statements(seeded) as statements:
        with row_held(seeded, FLASH):
            first.start()
            # Its write is under way, held by the row (on SQLite, by the write lock).
            wait_for(lambda: tally.writing("generations"), 10, "the first call's write")
            for thread in others:
                thread.start()
            wait_for(lambda: tally.waiting("generations") == 5, 10,
                     "five calls waiting for a statement")
            assert len(statements) <= 1  # the others wait while the first is in flight
        for thread in [first, *others]:
            thread.join(30)
    assert len(statements) == 2
    assert answers["first"]["totalGenerations"] == 1

    # Each call's answer is the totals right after its own generation, in one serial order.
    in_order = sorted(answers, key=lambda name: answers[name]["totalGenerations"])
    assert [answers[name]["totalGenerations"] for name in in_order] == [1, 2, 3, 4, 5, 6]
    for count in range(1, 7):
        answer, done = answers[in_order[count - 1]], in_order[:count]
        assert answer["averageGenerationTime"] == float(sum(seconds[n] for n in done) / count)
        assert answer["successRate"] == float(
            Decimal(sum(success[n] for n in done)) * 100 / count)
    last = answers[in_order[-1]]
    stats = run_as_system(seeded, "models:getModelById", {"modelId": FLASH})
    assert {key: stats[key] for key in last} == last


def test_a_lone_call_is_written_at_once(seeded):
    with stats_statements(seeded) as statements:
        answer = run_as_system(seeded, "models:updateModelStats",
                               {"modelId": FLASH, "generationTime": 4, "success": False})
    assert len(statements) == 1
    assert answer == {"modelId": FLASH, "totalGenerations": 1, "averageGenerationTime": 4.0,
                      "successRate": 0.0}


class Row:
    """A statistics row for the tally alone: each write adds a batch's items (micros) and
    answers the totals; the first write waits until released; the writes numbered in
    `failing` fail."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.totals, self.writes = Totals(0, 0, 0), []
        self.failing = failing
        self.started, self.release = threading.Event(), threading.Event()

    def write(self, items: list[int]) -> Totals:
        self.writes.append(len(items))
        if len(self.writes) == 1:
            self.started.set()
            assert self.release.wait(10)
        if len(self.writes) in self.failing:
            raise RuntimeError(f"write {len(self.writes)} failed")
        self.totals = Totals(self.totals.total_generations + len(items),
                             self.totals.successful_generations + len(items),
                             self.totals.total_time_micros + sum(items))
        return self.totals


def run_batches(tally: Tally, row: Row, later: int) -> dict[int, object]:
    """One call, then `later` calls that arrive while its write is in flight."""
    outcomes: dict[int, object] = {}

    def record(index: int) -> None:
        try:
            outcomes[index] = tally.record("m", [1000 * (index + 1)], row.write)
        except RuntimeError as error:
            outcomes[index] = str(error)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(later + 1)]
    threads[0].start()
    assert row.started.wait(10)
    for thread in threads[1:]:
        thread.start()
    wait_for(lambda: tally.waiting("m") == later, 10, "the later calls waiting")
    row.release.set()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_a_failed_statement_fails_every_call_in_its_batch_and_only_those():
    tally, row = Tally(), Row(failing=frozenset({2}))
    outcomes = run_batches(tally, row, later=4)
    assert row.writes == [1, 4]
    assert outcomes[0] == (Totals(1, 1, 1000), [])
    assert [outcomes[i] for i in range(1, 5)] == ["write 2 failed"] * 4
    assert tally.record("m", [7], row.write) == (Totals(2, 2, 1007), [])  # nothing left held


def test_each_call_learns_which_items_joined_after_its_own():
    row = Row()
    outcomes = run_batches(Tally(), row, later=3)
    assert row.writes == [1, 3]
    totals, later = {i: o[0] for i, o in outcomes.items()}, {i: o[1] for i, o in
                                                             outcomes.items()}
    assert totals[1] == totals[2] == totals[3] == Totals(4, 4, 10_000)
    # In the batch's order, each call's successors are the calls that joined after it.
    order = sorted(range(1, 4), key=lambda i: -len(later[i]))
    assert [len(later[i]) for i in order] == [2, 1, 0]
    assert later[order[0]] == [1000 * (i + 1) for i in order[1:]]
