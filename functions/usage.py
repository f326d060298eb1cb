"""Usage over time: every generation recorded per model per minute, rolled up, read back.

Each finished generation adds to its model's totals (`model_stats`) and to the model's row for
its minute in `usage_buckets`: generations, successes, failures by error code, the sum of
generation times, a latency histogram in fixed buckets (LATENCY_BOUNDS) and credits. Both in
one statement on PostgreSQL (one transaction on SQLite), group-committed with the process's
concurrent recordings (engine/tally.py): exact under any concurrency, and cheap.

Roll-up (`rollUp`, run by the monitor outside requests, functions/monitor.py): once a whole
hour of minutes is older than USAGE_MINUTE_RETENTION_HOURS, its minute rows become one hour
row; once a whole day of hours is older than USAGE_HOUR_RETENTION_DAYS, its hour rows become
one day row; day rows are kept for USAGE_DAY_RETENTION_DAYS (0: for ever). Rows are moved,
never copied: every generation is counted by exactly one row, so any window reads as the sum
of the rows inside it, at the finest size still kept.

Storage per model per day is bounded: at most 1,440 minute rows while the minutes are kept,
then 24 hour rows, then one day row; each row holds at most USAGE_MAX_ERROR_CODES error codes
(the rarest beyond that are counted under `other`).
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Connection,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from db import get_db
from db.engine import read, together
from db.schema import HISTOGRAM, HISTOGRAM_BUCKETS, ModelStats, RecordedEvent, usage_buckets
from engine.cache import catalog_cache
from engine.errors import FunctionError
from engine.fleet import recording_tick
from engine.runtime import SIGNED_IN, Context, mutation, query
from engine.tally import Totals, stats_tally
from engine.values import v
from functions import models
from functions.documents import MICROS, stats_of
from functions.pricing import TIMESTAMP

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000  # ms
BUCKETS = {"minute": MINUTE, "hour": HOUR, "day": DAY}
MAX_POINTS = 1500  # per getUsage answer: 25 h of minutes, 62 days of hours, 4 years of days
# The latency histogram: upper bounds in seconds (a time equal to a bound counts in its
# bucket); the last bucket holds everything above 1,200 s.
LATENCY_BOUNDS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120,
                  180, 300, 450, 600, 1200)
assert len(LATENCY_BOUNDS) + 1 == HISTOGRAM_BUCKETS
BOUNDS_MICROS = tuple(round(bound * 1_000_000) for bound in LATENCY_BOUNDS)
OTHER = "other"  # the error code that counts codes beyond USAGE_MAX_ERROR_CODES
UNKNOWN = "unknown"  # the error code of a failure recorded without one

GENERATION_TIME = v.number(minimum=0, maximum=86400)
ERROR_CODE = v.string(1, 64, pattern=r"[A-Za-z0-9][A-Za-z0-9_.:-]*",
                      hint="letters, digits, '_', '.', ':' or '-', e.g. TIMEOUT")
CREDITS = v.int(0, 10**12)
EVENT_ID = v.string(1, 100, pattern=r"[!-~]+", hint="printable ASCII with no spaces, e.g. a "
                    "job's id")
USAGE = usage_buckets
STATS = ModelStats.__table__
EVENTS = RecordedEvent.__table__


# Sums of times and credits stop at the largest number a column holds rather than fail: a
# day of generations of 86,400 s each (the most one may take), recorded as fast as the rate
# limit lets one token, passes 2^63 microseconds in under an hour. Counts cannot get there.
LARGEST = 2**63 - 1


def saturated(total, added):
    """total + added, or LARGEST past it (in SQL; `added` is never negative)."""
    largest = literal_column(str(LARGEST), BigInteger)  # in the SQL: statements are compiled
    return case((total > largest - added, largest), else_=total + added)  # once, bound by name


SATURATED = ("time_micros", "credits")


def summed(value) -> int:
    """A sum read back (a float on SQLite, past 2^63 on either), as the answers give it: a
    whole number, at most LARGEST."""
    return min(int(value or 0), LARGEST)


class LargeSum(FunctionElement):
    """SUM of a column whose rows may each hold up to LARGEST (never negative): PostgreSQL's
    sum of bigints is a numeric. SQLite's sum() raises "integer overflow" past 2^63 - 1, so it
    sums the high and low 32 bits apart (neither sum can overflow) and joins them: exact up to
    LARGEST (2^63 - 1), a float beyond (capped at LARGEST when read). (total(), a float
    throughout, lost units above 2^53.)"""

    type = BigInteger()
    inherit_cache = True
    name = "large_sum"


@compiles(LargeSum)
def _large_sum(element, compiler, **kw) -> str:
    return f"sum({compiler.process(element.clauses, **kw)})"


@compiles(LargeSum, "sqlite")
def _large_sum_sqlite(element, compiler, **kw) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"(sum({column} >> 32) * 4294967296 + sum({column} & 4294967295))"


def latency_bucket(micros: int) -> int:
    return bisect_left(BOUNDS_MICROS, micros)


# -- recording -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    """One finished generation, ready to record."""

    model_pk: int
    success: bool
    micros: int
    error: str | None
    credits: int
    minute: int  # the start of its minute (ms)
    recorded_at: int  # when it was recorded (ms)


def generation(model_pk: int, ctx: Context, generationTime: float, success: bool,
               errorCode: str | None = None, credits: int | None = None,
               at: int | None = None, where: str = "") -> Generation:
    """Check one generation's fields together; `where` prefixes the fields' paths."""
    if success and errorCode is not None:
        raise FunctionError("INVALID_ARGUMENT", f"{where}errorCode is for failures: this "
                            "generation succeeded", field=f"{where}errorCode")
    moment = ctx.now if at is None else min(at, ctx.now)  # a clock a little ahead: now
    if at is not None:
        earliest = ctx.now - backfill_ms(ctx.config)
        if at > ctx.now + CLOCK_SKEW_MS:
            raise FunctionError("INVALID_ARGUMENT", f"{where}at ({at}) is in the future; "
                                "record a generation once it has finished", field=f"{where}at")
        if at < earliest:
            raise FunctionError(
                "INVALID_ARGUMENT", f"{where}at ({at}) is older than the "
                f"{backfill_ms(ctx.config) // HOUR} h that can still be recorded (minutes are "
                "kept USAGE_MINUTE_RETENTION_HOURS, less an hour)", field=f"{where}at")
    return Generation(model_pk, success, round(generationTime * 1_000_000),
                      None if success else (errorCode or UNKNOWN), credits or 0,
                      moment - moment % MINUTE, ctx.now)


# How far ahead of this host's clock a caller's may be: a generation that finished "in the
# future" by less is recorded as finished now, not refused with its whole batch.
CLOCK_SKEW_MS = 60_000


def backfill_ms(config) -> int:
    """How far back `at` may be: the minutes' retention less an hour, so that a recording
    never lands in an hour the roll-up is moving (unless clocks differ by an hour)."""
    return (config["USAGE_MINUTE_RETENTION_HOURS"] - 1) * HOUR


def model_pks(model_ids: Iterable[str], field_of=lambda i: "modelId") -> list[int]:
    """The models' primary keys; NOT_FOUND names the first unknown one. A model's key never
    changes (models are never removed), so the last configuration the read cache loaded
    answers, however old, with no check; a model it does not know is looked for in the
    current configuration."""
    wanted = list(model_ids)
    cache = catalog_cache()
    snapshot = cache.latest()
    if snapshot is None or any(snapshot.find(mid) is None for mid in wanted):
        with ExitStack() as stack:  # created since, or nothing loaded yet
            snapshot = cache.snapshot(lambda: stack.enter_context(read(get_db().engine)))
    pks = []
    for index, model_id in enumerate(wanted):
        entry = snapshot.find(model_id)
        if entry is None:
            error = models.not_found(model_id)
            error.data["field"] = field_of(index)
            raise error
        pks.append(entry.pk)
    return pks


class Recorded(NamedTuple):
    """What a batch's write answers: the models' totals after it, and (PostgreSQL) the fleet's
    clock value its transaction ticked."""

    totals: dict[int, Totals]
    ts: int | None


def record(ctx: Context, items: Sequence[Generation]) -> tuple[dict[int, Totals], list]:
    """Record generations with the process's concurrent recordings (engine/tally.py): the
    models' totals after the batch, and the generations recorded after these in it. The
    call's `ts` is the one its batch ticked."""
    recorded, later = stats_tally().record("generations", items, lambda batch: write(ctx, batch))
    ctx.ticked = recorded.ts
    return recorded.totals, later


def totals_after(totals: dict[int, Totals], later: list[Generation], model_pk: int) -> Totals:
    """A model's totals right after a call's own generations, in the batch's serial order."""
    after = totals[model_pk]
    mine = [g for g in later if g.model_pk == model_pk]
    return Totals(after.total_generations - len(mine),
                  after.successful_generations - sum(g.success for g in mine),
                  after.total_time_micros - sum(g.micros for g in mine))


@dataclass
class Bucket:
    """What one usage row adds: its counters, histogram and error codes."""

    generations: int = 0
    successes: int = 0
    time_micros: int = 0
    credits: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)
    errors: Counter = field(default_factory=Counter)

    def add_generation(self, g: Generation) -> None:
        self.generations += 1
        self.successes += g.success
        self.time_micros += g.micros
        self.credits += g.credits
        self.histogram[latency_bucket(g.micros)] += 1
        if g.error is not None:
            self.errors[g.error] += 1

    def add_row(self, row) -> None:
        self.generations += row.generations
        self.successes += row.successes
        self.time_micros += row.time_micros
        self.credits += row.credits
        for i, name in enumerate(HISTOGRAM):
            self.histogram[i] += getattr(row, name)
        self.errors.update(row.errors or {})

    def parameters(self, prefix: str, cap: int) -> dict:
        out = {f"{prefix}g": self.generations, f"{prefix}s": self.successes,
               f"{prefix}t": min(self.time_micros, LARGEST),
               f"{prefix}c": min(self.credits, LARGEST),
               f"{prefix}e": json.dumps(capped(self.errors, cap)) if self.errors else None}
        out.update((f"{prefix}{name}", count) for name, count in zip(HISTOGRAM, self.histogram,
                                                                     strict=True))
        return out


def capped(errors: Counter, cap: int) -> dict[str, int]:
    """At most `cap` codes: the most frequent, and the rest counted under `other` (the rule
    the database applies when it merges a row's codes: MERGE_ERRORS)."""
    if len(errors) <= cap:
        return dict(errors)
    ranked = sorted(errors.items(), key=lambda item: (-item[1], item[0]))
    kept = Counter(dict(ranked[:cap - 1]))
    kept[OTHER] += sum(count for _, count in ranked[cap - 1:])
    return dict(kept)


def write(ctx: Context, items: list[Generation], within: bool = False) -> Recorded:
    """Add a batch of generations to the models' totals and minute rows, all or nothing:
    one statement on PostgreSQL (ticking the fleet's clock first), one transaction on
    SQLite (`within`: in the caller's, already begun). Answers the totals by model, and the
    tick."""
    by_model: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_minute: dict[tuple[int, int], Bucket] = defaultdict(Bucket)
    for g in items:
        totals = by_model[g.model_pk]
        totals[0] += 1
        totals[1] += g.success
        totals[2] += g.micros
        by_minute[(g.model_pk, g.minute)].add_generation(g)
    now = max(g.recorded_at for g in items)
    cap = ctx.config["USAGE_MAX_ERROR_CODES"]
    conn: Connection = ctx.db
    dialect = conn.dialect
    ts = None
    if dialect.name == "postgresql" and len(by_minute) <= ONE_STATEMENT_ROWS:
        params = {**stats_parameters(by_model, now), **usage_parameters(by_minute, cap)}
        result = statement(dialect, "both", len(by_model), len(by_minute), cap).run(
            conn, params).all()
        ts = result[0].ts
    else:  # one transaction, statements of at most CHUNK_ROWS rows (bounded parameters)
        result = []
        with nullcontext(conn) if within else together(conn):
            if dialect.name == "postgresql":  # the clock's row first, as in one statement
                ts = conn.execute(recording_tick()).scalar_one()
            keys = sorted(by_model)
            for first in range(0, len(keys), CHUNK_ROWS):
                chunk = {pk: by_model[pk] for pk in keys[first:first + CHUNK_ROWS]}
                result += statement(dialect, "stats", len(chunk), 0, cap).run(
                    conn, stats_parameters(chunk, now)).all()
            upsert_rows(conn, by_minute, MINUTE // 1000, cap)
    return Recorded({row.model_pk: Totals(row.total_generations, row.successful_generations,
                                          row.total_time_micros) for row in result}, ts)


ONE_STATEMENT_ROWS = 200  # usage rows in PostgreSQL's one statement
CHUNK_ROWS = 500  # rows per statement: 16,000 parameters at most (SQLite allows 32,766)


def stats_parameters(by_model: dict[int, list[int]], now: int) -> dict:
    params: dict = {"now": now}
    for i, pk in enumerate(sorted(by_model)):  # in key order: rows are locked in one order
        count, successes, micros = by_model[pk]
        params.update({f"p{i}": pk, f"g{i}": count, f"s{i}": successes, f"t{i}": micros})
    return params


def usage_parameters(buckets: dict[tuple[int, int], Bucket], cap: int, size: int = MINUTE,
                     ) -> dict:
    params: dict = {"size": size // 1000}
    for j, (pk, start) in enumerate(sorted(buckets)):
        params.update({f"u{j}pk": pk, f"u{j}start": start})
        params.update(buckets[(pk, start)].parameters(f"u{j}", cap))
    return params


def upsert_rows(conn, buckets: dict[tuple[int, int], Bucket], size: int, cap: int) -> None:
    """Add buckets {(model_pk, start): Bucket} of one size (s) to their rows, in key order."""
    keys = sorted(buckets)
    for first in range(0, len(keys), CHUNK_ROWS):
        chunk = {key: buckets[key] for key in keys[first:first + CHUNK_ROWS]}
        statement(conn.dialect, "usage", 0, len(chunk), cap).run(
            conn, usage_parameters(chunk, cap, size * 1000))


# The merge of a row's error codes with those added, keeping at most `cap` codes (the most
# frequent; the rest under `other`), in each database's JSON functions.
MERGE_ERRORS = {
    "postgresql": """CASE WHEN excluded.errors IS NULL THEN usage_buckets.errors ELSE (
 SELECT json_object_agg(c.k, c.n) FROM (
  SELECT CASE WHEN r.cnt <= {cap} OR r.rn < {cap} THEN r.key ELSE 'other' END AS k,
         sum(r.total) AS n
  FROM (SELECT b.key, b.total, row_number() OVER (ORDER BY b.total DESC, b.key) AS rn,
               count(*) OVER () AS cnt
        FROM (SELECT a.key, sum(a.value::bigint) AS total
              FROM (SELECT key, value FROM json_each_text(usage_buckets.errors)
                    UNION ALL SELECT key, value FROM json_each_text(excluded.errors)) AS a
              GROUP BY a.key) AS b) AS r
  GROUP BY 1) AS c) END""",
    "sqlite": """CASE WHEN excluded.errors IS NULL THEN usage_buckets.errors ELSE (
 SELECT json_group_object(k, n) FROM (
  SELECT CASE WHEN cnt <= {cap} OR rn < {cap} THEN key ELSE 'other' END AS k, sum(total) AS n
  FROM (SELECT key, total, row_number() OVER (ORDER BY total DESC, key) AS rn,
               count(*) OVER () AS cnt
        FROM (SELECT key, sum(value) AS total
              FROM (SELECT key, value FROM json_each(usage_buckets.errors)
                    UNION ALL SELECT key, value FROM json_each(excluded.errors))
              GROUP BY key))
  GROUP BY 1)) END""",
}
INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class Prepared:
    """A recording statement compiled once for a dialect: run on the driver with no
    per-call compilation (a multi-row INSERT is not in SQLAlchemy's compiled cache)."""

    sql: str
    order: tuple[str, ...] | None  # the parameters' order (SQLite's `?`); None: by name

    def run(self, conn, params: dict):
        args = params if self.order is None else tuple(params[name] for name in self.order)
        return conn.exec_driver_sql(self.sql, args)


def statement(dialect, kind: str, models_: int, rows: int, cap: int) -> Prepared:
    """The recording statements, compiled once per shape (the most used shapes are kept):
    `stats` adds to model_stats and returns the totals, `usage` adds to usage rows, `both` is
    the two as one PostgreSQL statement (a data-modifying WITH)."""
    return _prepared(dialect, kind, models_, rows, cap)


@lru_cache(maxsize=128)
def _prepared(dialect, kind: str, models_: int, rows: int, cap: int) -> Prepared:
    compiled = _build(dialect.name, kind, models_, rows, cap).compile(dialect=dialect)
    order = None if dialect.paramstyle in ("named", "pyformat") else tuple(compiled.positiontup)
    return Prepared(str(compiled), order)


def _build(dialect: str, kind: str, models_: int, rows: int, cap: int):
    insert = INSERTS[dialect]
    stats = None
    # `both` ticks the fleet's clock (engine/fleet.py). Its rows' values read the tick, so
    # that every recording locks the clock's row before any other: they take turns, in
    # one order, with no deadlock.
    clock = recording_tick().cte("clock") if kind == "both" else None
    now = bindparam("now", type_=BigInteger)
    updated_at = now if clock is None else select(now).select_from(clock).scalar_subquery()
    if models_:
        new = insert(STATS).values([
            {"model_pk": bindparam(f"p{i}"), "total_generations": bindparam(f"g{i}"),
             "successful_generations": bindparam(f"s{i}"),
             "total_time_micros": bindparam(f"t{i}"), "updated_at": updated_at}
            for i in range(models_)])
        stats = new.on_conflict_do_update(index_elements=[STATS.c.model_pk], set_={
            "total_generations": STATS.c.total_generations + new.excluded.total_generations,
            "successful_generations":
                STATS.c.successful_generations + new.excluded.successful_generations,
            "total_time_micros": saturated(STATS.c.total_time_micros,
                                           new.excluded.total_time_micros),
            "updated_at": new.excluded.updated_at,
        }).returning(STATS.c.model_pk, STATS.c.total_generations,
                     STATS.c.successful_generations, STATS.c.total_time_micros)
    usage = None
    if rows:
        new = insert(USAGE).values([
            {"model_pk": bindparam(f"u{j}pk"), "size": bindparam("size"),
             "start": bindparam(f"u{j}start"), "generations": bindparam(f"u{j}g"),
             "successes": bindparam(f"u{j}s"), "time_micros": bindparam(f"u{j}t"),
             "credits": bindparam(f"u{j}c"),
             "errors": bindparam(f"u{j}e", type_=USAGE.c.errors.type),
             **{name: bindparam(f"u{j}{name}") for name in HISTOGRAM}}
            for j in range(rows)])
        added = {name: USAGE.c[name] + new.excluded[name]
                 for name in ("generations", "successes", *HISTOGRAM)}
        added.update((name, saturated(USAGE.c[name], new.excluded[name]))
                     for name in ("time_micros", "credits"))
        added["errors"] = literal_column(MERGE_ERRORS[dialect].format(cap=int(cap)))
        usage = new.on_conflict_do_update(
            index_elements=[USAGE.c.model_pk, USAGE.c.size, USAGE.c.start], set_=added)
    if kind == "stats":
        return stats
    if kind == "usage":
        return usage
    written = stats.cte("s")
    return select(written.c.model_pk, written.c.total_generations,
                  written.c.successful_generations, written.c.total_time_micros,
                  clock.c.ts).add_cte(usage.cte("u"))


@mutation(
    {"events": v.array(v.object({
        "modelId": v.string(1, 200),
        "generationTime": GENERATION_TIME,
        "success": v.boolean(),
        "errorCode": v.optional(ERROR_CODE),
        "credits": v.optional(CREDITS),
        "at": v.optional(TIMESTAMP),
        "eventId": v.optional(EVENT_ID),
    }), 1, 1000)},
    scope="stats:write", atomic=True, changes=("stats",), name="models:recordGenerations",
)
def recordGenerations(ctx: Context, events: list[dict]) -> dict:
    """Record up to 1,000 finished generations at once, all or nothing (`at`: when each
    finished, ms; in the past, for backfill). A generation sent with an `eventId` is recorded
    once per caller: sent again (a retry), it is counted under `duplicates` instead."""
    pks = model_pks((e["modelId"] for e in events), lambda i: f"events[{i}].modelId")
    items = [generation(pk, ctx, **{k: e[k] for k in e if k not in ("modelId", "eventId")},
                        where=f"events[{i}].")
             for i, (pk, e) in enumerate(zip(pks, events, strict=True))]
    ids = event_ids(events)
    if not any(ids):
        record(ctx, items)
        return {"recorded": len(items), "duplicates": 0}
    digests = [event_digest(item, e.get("at")) for item, e in zip(items, events, strict=True)]
    kept, _ = record_once(ctx, items, ids, digests)
    return {"recorded": kept, "duplicates": len(items) - kept}


def event_digest(item: Generation, at: int | None) -> str:
    """What a generation is (its model, outcome, time, error, credits and `at` if given): the
    same in every retry of it, however its values are spelt (a model id's case, 2 or 2.0)."""
    text = json.dumps([item.model_pk, item.success, item.micros, item.error, item.credits, at])
    return hashlib.sha256(text.encode()).hexdigest()


def event_ids(events: list[dict]) -> list[str | None]:
    """Each event's id (None without one); an id given twice in one call is refused."""
    ids, first = [], {}
    for i, e in enumerate(events):
        event_id = e.get("eventId")
        if event_id is not None:
            if event_id in first:
                raise FunctionError("INVALID_ARGUMENT", f"events[{i}].eventId repeats "
                                    f"events[{first[event_id]}].eventId",
                                    field=f"events[{i}].eventId")
            first[event_id] = i
        ids.append(event_id)
    return ids


def record_once(ctx: Context, items: list[Generation], ids: list[str | None],
                digests: list[str], field=lambda i: f"events[{i}].eventId",
                ) -> tuple[int, Recorded | None]:
    """Record the generations whose ids the caller has not recorded yet (and those without an
    id), and remember the new ids, in one transaction: how many were recorded, and what the
    write answered (None when nothing was written). An id recorded
    for another generation (its digest differs) refuses the call: a retry sends the same
    generation, so this is a client's mistake that would lose a generation. Not joined with
    other calls (engine/tally.py), since whether each counts is the caller's own question.

    Ids are inserted in sorted order, before the fleet's clock is ticked: concurrent calls
    lock ids in one order, and the clock after, with no deadlock. The same id sent by two
    calls at once is recorded by the first to commit; the other waits for it, and skips it."""
    conn: Connection = ctx.db
    digest_of = {event_id: digest for event_id, digest in zip(ids, digests, strict=True)
                 if event_id is not None}
    with together(conn):
        remembered = INSERTS[conn.dialect.name](EVENTS).values(
            [{"caller": ctx.identity.name, "event_id": event_id, "recorded_at": ctx.now,
              "digest": digest_of[event_id]} for event_id in sorted(digest_of)]
        ).on_conflict_do_nothing().returning(EVENTS.c.event_id)
        new = set(conn.execute(remembered).scalars())
        _same_as_recorded(conn, ctx.identity.name, ids, digests, new, field)
        kept = [item for item, event_id in zip(items, ids, strict=True)
                if event_id is None or event_id in new]
        recorded = write(ctx, kept, within=True) if kept else None
    if recorded is None:  # all recorded already: this call changed nothing, so nothing is
        ctx.discard = True  # told (its ts is still after the call that recorded them)
    else:
        ctx.ticked = recorded.ts
    return len(kept), recorded


def record_one(ctx: Context, modelId: str, generationTime: float, success: bool,
               errorCode: str | None, credits: int | None, eventId: str | None) -> dict:
    """models:updateModelStats: one generation; the model's totals right after it. With an
    `eventId`, recorded once per caller (as recordGenerations records it), and the answer says
    whether it was a `duplicate` (then the totals are the model's as they are)."""
    (pk,) = model_pks([modelId])
    item = generation(pk, ctx, generationTime, success, errorCode, credits)
    if eventId is not None:
        _, recorded = record_once(ctx, [item], [eventId], [event_digest(item, None)],
                                  field=lambda i: "eventId")
        totals = recorded.totals.get(pk) if recorded is not None else ctx.db.execute(
            select(STATS).where(STATS.c.model_pk == pk)).first()
        return {"modelId": modelId, **stats_of(totals), "duplicate": recorded is None}
    totals, later = record(ctx, [item])
    if pk not in totals:
        raise models.not_found(modelId)
    return {"modelId": modelId, **stats_of(totals_after(totals, later, pk))}


# -- reading ---------------------------------------------------------------------------------

COUNTERS = ("generations", "successes", "time_micros", "credits", *HISTOGRAM)


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The q-quantile of the times a histogram counts (s), linear inside its bucket (the
    last, open bucket answers its lower bound); None when it counts nothing."""
    total = sum(histogram)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            if i == len(LATENCY_BOUNDS):
                return float(LATENCY_BOUNDS[-1])
            lower = LATENCY_BOUNDS[i - 1] if i else 0.0
            share = (rank - seen) / count
            return round(lower + (LATENCY_BOUNDS[i] - lower) * share, 6)
        seen += count
    return float(LATENCY_BOUNDS[-1])


def window_sums(db, size_ms: int, start: int, end: int, model_pk: int | None = None,
                by_model: bool = False) -> list:
    """Sums of the rows of at most `size_ms` in [start, end), by bucket of `size_ms` (and by
    model): every generation counted once, whichever row size holds it now."""
    bucket = (USAGE.c.start - USAGE.c.start % size_ms).label("bucket")
    where = [USAGE.c.size <= size_ms // 1000, USAGE.c.start >= start, USAGE.c.start < end]
    if model_pk is not None:
        where.append(USAGE.c.model_pk == model_pk)
    keys = [USAGE.c.model_pk] if by_model else [bucket]
    query_ = (select(*keys, *((LargeSum if name in SATURATED else func.sum)(
        USAGE.c[name]).label(name) for name in COUNTERS)).where(*where).group_by(*keys))
    return db.execute(query_).all()


def window_errors(db, size_ms: int, start: int, end: int, model_pk: int | None = None,
                  by_model: bool = False) -> dict[int, Counter]:
    """Failures by error code, by bucket (or by model)."""
    bucket = (USAGE.c.start - USAGE.c.start % size_ms).label("bucket")
    key = USAGE.c.model_pk if by_model else bucket
    where = [USAGE.c.size <= size_ms // 1000, USAGE.c.start >= start, USAGE.c.start < end,
             USAGE.c.errors.is_not(None)]
    if model_pk is not None:
        where.append(USAGE.c.model_pk == model_pk)
    out: dict[int, Counter] = defaultdict(Counter)
    for row in db.execute(select(key.label("key"), USAGE.c.errors).where(*where)):
        out[row.key].update(row.errors or {})
    return out


def point(start: int, row, errors: Counter) -> dict:
    generations = int(row.generations) if row is not None else 0
    histogram = [int(getattr(row, name)) for name in HISTOGRAM] if row is not None else []
    successes = int(row.successes) if row is not None else 0
    return {
        "start": start,
        "generations": generations,
        "successes": successes,
        "failures": generations - successes,
        "errors": dict(sorted(errors.items())),
        "averageGenerationTime": (float(Decimal(int(row.time_micros)) / generations / MICROS)
                                  if generations else None),
        "p50GenerationTime": percentile(histogram, 0.5),
        "p95GenerationTime": percentile(histogram, 0.95),
        "p99GenerationTime": percentile(histogram, 0.99),
        "credits": summed(row.credits) if row is not None else 0,
    }


@query({"modelId": v.optional(v.string(1, 200)), "from": TIMESTAMP, "to": TIMESTAMP,
        "bucket": v.literal(*BUCKETS)}, scope=SIGNED_IN, name="models:getUsage")
def getUsage(ctx: Context, bucket: str, modelId: str | None = None, **window: int) -> list:
    """A model's (or every model's) usage over [from, to) in buckets of a minute, an hour or a
    day: one point per bucket, empty ones included."""
    size = BUCKETS[bucket]
    start = window["from"] - window["from"] % size
    if window["to"] <= window["from"]:
        raise FunctionError("INVALID_ARGUMENT", "to must be after from", field="to")
    end = -(-window["to"] // size) * size
    points = (end - start) // size
    if points > MAX_POINTS:
        raise FunctionError(
            "INVALID_ARGUMENT", f"from..to spans {points} {bucket}s; at most {MAX_POINTS} "
            "points are answered: choose a larger bucket or a shorter window", field="to",
            maxPoints=MAX_POINTS)
    model_pk = None if modelId is None else models.cached(ctx, modelId).pk
    rows = {row.bucket: row for row in window_sums(ctx.db, size, start, end, model_pk)}
    errors = window_errors(ctx.db, size, start, end, model_pk)
    return [point(at, rows.get(at), errors.get(at, Counter()))
            for at in range(start, end, size)]


# -- roll-up ---------------------------------------------------------------------------------

ROLL_UP_ROWS = 2000  # rows moved per transaction


def floor_to(moment: int, size: int) -> int:
    return moment - moment % size


@mutation({"limit": v.optional(v.int(1, 100_000))}, scope="admin", internal=True,
          name="usage:rollUp")
def rollUp(ctx: Context, limit: int = ROLL_UP_ROWS) -> dict:
    """Move old minutes into hour rows and old hours into day rows, drop days past their
    retention, and forget event ids as old as the minutes; at most `limit` rows at a time
    (`done`: nothing is left to move)."""
    config = ctx.config
    minutes_before = floor_to(ctx.now - config["USAGE_MINUTE_RETENTION_HOURS"] * HOUR, HOUR)
    hours_before = floor_to(ctx.now - config["USAGE_HOUR_RETENTION_DAYS"] * DAY, DAY)
    moved_minutes = _move(ctx, MINUTE, HOUR, minutes_before, limit)
    moved_hours = _move(ctx, HOUR, DAY, hours_before, limit - moved_minutes)
    dropped = 0
    if config["USAGE_DAY_RETENTION_DAYS"]:
        days_before = floor_to(ctx.now - config["USAGE_DAY_RETENTION_DAYS"] * DAY, DAY)
        dropped = ctx.db.execute(delete(USAGE).where(
            USAGE.c.size == DAY // 1000, USAGE.c.start < days_before)).rowcount
    forgotten = _forget_event_ids(ctx, ctx.now - config["USAGE_MINUTE_RETENTION_HOURS"] * HOUR,
                                  limit)
    return {"minutes": moved_minutes, "hours": moved_hours, "days": dropped,
            "eventIds": forgotten, "done": max(moved_minutes + moved_hours, forgotten) < limit}


def _same_as_recorded(conn: Connection, caller: str, ids: list[str | None], digests: list[str],
                      new: set[str], field) -> None:
    """Refuse the call if an id it sends was recorded for another generation (`field(i)`:
    the path of the i-th id in the call)."""
    old = [event_id for event_id in ids if event_id is not None and event_id not in new]
    if not old:
        return
    recorded = dict(conn.execute(select(EVENTS.c.event_id, EVENTS.c.digest).where(
        EVENTS.c.caller == caller, EVENTS.c.event_id.in_(old))).all())
    for i, (event_id, digest) in enumerate(zip(ids, digests, strict=True)):
        if event_id in recorded and recorded[event_id] != digest:
            raise FunctionError(
                "INVALID_ARGUMENT", f"{field(i)} {json.dumps(event_id)} was recorded for "
                "another generation (another model or other fields): an id names one "
                "generation, sent again only to retry it", field=field(i))


def _forget_event_ids(ctx: Context, before: int, limit: int) -> int:
    """Forget up to `limit` event ids recorded before `before` (ms): a call sent again that
    late is past any retry."""
    oldest = (select(EVENTS.c.caller, EVENTS.c.event_id)
              .where(EVENTS.c.recorded_at < before).limit(limit))
    return ctx.db.execute(delete(EVENTS).where(
        tuple_(EVENTS.c.caller, EVENTS.c.event_id).in_(oldest))).rowcount


def _move(ctx: Context, size: int, into: int, before: int, limit: int) -> int:
    """Move up to `limit` rows of `size` that start before `before` into rows of `into`."""
    if limit <= 0:
        return 0
    where = [USAGE.c.size == size // 1000, USAGE.c.start < before]
    rows = ctx.db.execute(select(USAGE).where(*where)
                          .order_by(USAGE.c.model_pk, USAGE.c.start).limit(limit)).all()
    if not rows:
        return 0
    merged: dict[tuple[int, int], Bucket] = defaultdict(Bucket)
    for row in rows:
        merged[(row.model_pk, floor_to(row.start, into))].add_row(row)
    upsert_rows(ctx.db.connection(), merged, into // 1000, ctx.config["USAGE_MAX_ERROR_CODES"])
    last = rows[-1]
    ctx.db.execute(delete(USAGE).where(
        *where, tuple_(USAGE.c.model_pk, USAGE.c.start) <= tuple_(last.model_pk, last.start)))
    return len(rows)


def minutes_of(window_seconds: int) -> int:
    return max(1, math.ceil(window_seconds / 60))


def recent(db, now: int, window_seconds: int) -> tuple[dict[int, object], int]:
    """Each model's sums over its last minutes (the current one included), and the window's
    length in seconds (whole minutes)."""
    minutes = minutes_of(window_seconds)
    current = floor_to(now, MINUTE)
    start = current - (minutes - 1) * MINUTE
    rows = window_sums(db, MINUTE, start, current + MINUTE, by_model=True)
    return {row.model_pk: row for row in rows}, minutes * 60

