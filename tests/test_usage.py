"""Usage over time (functions/usage.py): what each recording adds to its minute, how minutes
roll up into hours and days, and what models:getUsage answers; exact under concurrency."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
import requests
from sqlalchemy import create_engine, func, select

from db.schema import usage_buckets
from engine.errors import FunctionError
from engine.runtime import call, system
from functions.usage import LATENCY_BOUNDS, capped, latency_bucket, percentile
from tests.conftest import Api, catalog_fingerprint
from tests.test_catalog import FLASH, RAY, VEO

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
# "Now" (ms) for the tests: half way through the last whole hour before the clock's, so that
# their windows never straddle a boundary they did not choose, and a recording at it sent over
# HTTP (which reads the real clock) is within the retention it may go back. (A fixed moment had
# run out of that retention as the days passed: a test failed from one day on.)
_CLOCK = int(time.time() * 1000)
NOW = _CLOCK - _CLOCK % HOUR - HOUR + 30 * MINUTE


def run(app, path: str, args: dict | None = None, now: int | None = NOW):
    with app.app_context():
        return call(path, args, identity=system("test"), source="test", now=now)


def event(model: str, seconds: float, success: bool = True, **extra) -> dict:
    return {"modelId": model, "generationTime": seconds, "success": success, **extra}


def usage(app, bucket: str, start: int, end: int, model: str | None = None,
          now: int = NOW) -> list[dict]:
    args = {"from": start, "to": end, "bucket": bucket, **({"modelId": model} if model else {})}
    return run(app, "models:getUsage", args, now=now)


def rows(app) -> list:
    engine = create_engine(app.config["DATABASE_URL"])
    with engine.connect() as conn:
        out = conn.execute(select(usage_buckets).order_by(
            usage_buckets.c.model_pk, usage_buckets.c.size, usage_buckets.c.start)).all()
    engine.dispose()
    return out


def test_a_recording_adds_to_its_model_minute(seeded):
    run(seeded, "models:updateModelStats",
        {"modelId": RAY, "generationTime": 12.5, "success": True, "credits": 162})
    run(seeded, "models:updateModelStats", {"modelId": RAY, "generationTime": 30,
                                            "success": False, "errorCode": "TIMEOUT"})
    answer = run(seeded, "models:updateModelStats",
                 {"modelId": RAY, "generationTime": 0.05, "success": False}, now=NOW + 1000)
    assert answer == {"modelId": RAY, "totalGenerations": 3,
                      "averageGenerationTime": float(Decimal("42.55") / 3),
                      "successRate": float(Decimal(100) / 3)}
    series = usage(seeded, "minute", NOW - 2 * MINUTE, NOW + MINUTE, RAY)
    assert [p["start"] for p in series] == [NOW - 2 * MINUTE, NOW - MINUTE, NOW]
    assert series[0]["generations"] == series[1]["generations"] == 0
    assert series[0]["p50GenerationTime"] is None and series[0]["averageGenerationTime"] is None
    point = series[2]
    assert {k: point[k] for k in ("generations", "successes", "failures", "errors", "credits")} \
        == {"generations": 3, "successes": 1, "failures": 2, "credits": 162,
            "errors": {"TIMEOUT": 1, "unknown": 1}}
    assert point["averageGenerationTime"] == float(Decimal("42.55") / 3)
    # p50 lies in the bucket holding 12.5 s: (10, 15]; p99 in the one holding 30 s: (20, 30].
    assert 10 < point["p50GenerationTime"] <= 15 and 20 < point["p99GenerationTime"] <= 30
    # Other models, and the catalog's configuration, are untouched.
    assert usage(seeded, "minute", NOW, NOW + MINUTE, FLASH)[0]["generations"] == 0
    assert run(seeded, "models:getModelById", {"modelId": RAY})["revision"] == 1


def test_record_generations_backfills_its_minutes_and_totals(seeded):
    events = [event(VEO, 8 + i, i % 4 != 0, at=NOW - 90 * MINUTE + i * 20_000, credits=600,
                    **({} if i % 4 else {"errorCode": "NSFW" if i % 8 else "TIMEOUT"}))
              for i in range(12)]
    events.append(event(FLASH, 3.25, at=NOW))
    assert run(seeded, "models:recordGenerations", {"events": events}) == {"recorded": 13,
                                                                            "duplicates": 0}
    series = usage(seeded, "minute", NOW - 90 * MINUTE, NOW - 86 * MINUTE, VEO)
    assert [p["generations"] for p in series] == [3, 3, 3, 3]
    assert [p["failures"] for p in series] == [1, 1, 1, 0]  # events 0, 4 and 8
    assert [p["errors"] for p in series] == [{"TIMEOUT": 1}, {"NSFW": 1}, {"TIMEOUT": 1}, {}]
    assert sum(p["credits"] for p in series) == 12 * 600
    hour = usage(seeded, "hour", NOW - 2 * HOUR, NOW, VEO)
    # Buckets overlapping [from, to): the hour before last, the last, and this one.
    assert [p["generations"] for p in hour] == [0, 12, 0]
    veo = run(seeded, "models:getModelById", {"modelId": VEO})
    assert veo["totalGenerations"] == 12 and veo["successRate"] == 75.0
    everyone = usage(seeded, "hour", NOW - HOUR, NOW + 1)
    assert [p["generations"] for p in everyone] == [12, 1]


def test_a_generation_from_a_clock_a_little_ahead_is_recorded_as_finished_now(seeded):
    """Up to CLOCK_SKEW_MS ahead of this host's clock: recorded in this minute, not refused
    with its whole batch."""
    assert run(seeded, "models:recordGenerations", {"events": [
        event(FLASH, 2), event(RAY, 1, at=NOW + 300), event(RAY, 1, at=NOW + MINUTE)]})[
        "recorded"] == 3
    minute = NOW - NOW % MINUTE
    assert [(p["start"], p["generations"]) for p in usage(seeded, "minute", minute,
                                                          minute + 2 * MINUTE, RAY)] == [
        (minute, 2), (minute + MINUTE, 0)]


@pytest.mark.parametrize(("bad", "field", "words"), [
    (event("nope/model", 1), "events[1].modelId", "No model"),
    (event(RAY, 1, at=NOW + MINUTE + 1), "events[1].at", "in the future"),
    (event(RAY, 1, at=NOW - 47 * HOUR - 1), "events[1].at", "older than the 47 h"),
    (event(RAY, 1, True, errorCode="E"), "events[1].errorCode", "for failures"),
    (event(RAY, -1), "events[1].generationTime", "at least 0"),
    (event(RAY, 1, False, errorCode="no spaces"), "events[1].errorCode", "not valid"),
    (event(RAY, 1, credits=1.5), "events[1].credits", "whole number"),
])
def test_record_generations_is_all_or_nothing(seeded, bad, field, words):
    before = catalog_fingerprint(seeded), rows(seeded)
    with pytest.raises(FunctionError) as refused:
        run(seeded, "models:recordGenerations", {"events": [event(FLASH, 2), bad]})
    assert refused.value.data["field"] == field and words in refused.value.message
    assert (catalog_fingerprint(seeded), rows(seeded)) == before


def test_record_generations_takes_at_most_1000_events(seeded, api):
    body = api.mutation("models:recordGenerations", {"events": [event(RAY, 1)] * 1001})
    assert body["errorData"] == {"code": "INVALID_ARGUMENT", "field": "events"}
    assert api.value("mutation", "models:recordGenerations",
                     {"events": [event(RAY, 1)] * 1000}) == {"recorded": 1000,
                                                             "duplicates": 0}


def test_a_backfill_of_many_minutes_is_one_transaction_with_its_ts(seeded, api):
    """Past ONE_STATEMENT_ROWS minute rows, PostgreSQL records in one transaction of several
    statements (ticking the clock in it): each answer's `ts` is its own, and minTs reads it."""
    from functions.usage import ONE_STATEMENT_ROWS

    minutes = ONE_STATEMENT_ROWS + 50
    events = [event(RAY, 2, at=NOW - (i + 1) * MINUTE) for i in range(minutes)]
    before = api.query("models:getModelById", {"modelId": RAY})["value"]["totalGenerations"]
    first = api.mutation("models:recordGenerations", {"events": events})
    second = api.mutation("models:recordGenerations", {"events": events[:1]})
    assert first["value"]["recorded"] == minutes and second["value"]["recorded"] == 1
    assert second["ts"] > first["ts"]  # each moved the clock, in their order
    after = api.query("models:getModelById", {"modelId": RAY}, minTs=second["ts"])
    assert after["value"]["totalGenerations"] == before + minutes + 1
    assert len(rows(seeded)) >= minutes


def test_get_usage_is_for_signed_in_callers_and_bounded(seeded, client, make_token):
    args = {"from": NOW - HOUR, "to": NOW, "bucket": "minute"}
    anonymous = Api(client).post("query", "models:getUsage", args)
    assert anonymous.status_code == 401
    assert anonymous.get_json()["code"] == "Unauthenticated"
    reader = Api(client, make_token("stats:write"))
    assert len(reader.value("query", "models:getUsage", args)) == 60
    too_long = reader.query("models:getUsage", {**args, "from": NOW - 26 * HOUR})
    assert too_long["errorData"] == {"code": "INVALID_ARGUMENT", "field": "to",
                                     "maxPoints": 1500}
    assert "1560 minutes" in too_long["errorMessage"]
    backwards = reader.query("models:getUsage", {**args, "to": NOW - HOUR})
    assert backwards["errorData"]["field"] == "to"
    unknown = reader.query("models:getUsage", {**args, "modelId": "nope/x"})
    assert unknown["errorData"]["code"] == "NOT_FOUND"
    assert reader.post("query", "models:getUsage", {**args, "bucket": "week"}).get_json()[
        "errorData"]["field"] == "bucket"


def test_minutes_roll_up_into_hours_and_hours_into_days_exactly(seeded):
    rng = random.Random(7)
    start = NOW - 46 * HOUR
    events = [event(rng.choice([RAY, FLASH]), rng.uniform(0.01, 2000), rng.random() < 0.8,
                    at=start + rng.randrange(46 * HOUR), credits=rng.randrange(50))
              for _ in range(900)]
    for i, e in enumerate(events):
        if not e["success"]:
            e["errorCode"] = f"E{i % 3}"
    run(seeded, "models:recordGenerations", {"events": events})
    day_start = start - start % DAY
    by_day = usage(seeded, "day", day_start, NOW + 1)
    by_hour = usage(seeded, "hour", start, NOW + 1, RAY)
    assert sum(p["generations"] for p in by_day) == 900

    later = NOW + 30 * HOUR  # the first 28 hours of minutes are now older than 48 h
    moved = run(seeded, "usage:rollUp", {}, now=later)
    assert moved["minutes"] > 0 and moved["done"]
    sizes = Counter(row.size for row in rows(seeded))
    assert set(sizes) == {60, 3600}
    assert min(row.start for row in rows(seeded) if row.size == 60) >= later - 48 * HOUR - HOUR
    assert usage(seeded, "day", day_start, NOW + 1, now=later) == by_day
    assert usage(seeded, "hour", start, NOW + 1, RAY, now=later) == by_hour
    assert run(seeded, "usage:rollUp", {}, now=later) == {
        "minutes": 0, "hours": 0, "days": 0, "eventIds": 0, "done": True}

    months = NOW + 95 * DAY  # every minute and hour is old: only day rows remain
    run(seeded, "usage:rollUp", {"limit": 7}, now=months)  # a few rows per transaction
    while not run(seeded, "usage:rollUp", {"limit": 7}, now=months)["done"]:
        pass
    assert {row.size for row in rows(seeded)} == {86400}
    assert usage(seeded, "day", day_start, NOW + 1, now=months) == by_day
    assert all(p["generations"] == 0 for p in usage(seeded, "hour", start, NOW, now=months))


def test_day_rows_are_kept_for_ever_unless_a_retention_is_set(seeded):
    run(seeded, "models:recordGenerations", {"events": [event(RAY, 3, at=NOW - HOUR)]})
    far = NOW + 400 * DAY
    run(seeded, "usage:rollUp", {}, now=far)
    assert [row.size for row in rows(seeded)] == [86400]
    seeded.config["USAGE_DAY_RETENTION_DAYS"] = 365
    assert run(seeded, "usage:rollUp", {}, now=far)["days"] == 1
    assert rows(seeded) == []


def test_error_codes_per_row_are_capped_and_counted_under_other(seeded):
    seeded.config["USAGE_MAX_ERROR_CODES"] = 3
    for codes in (["A", "A", "A", "B", "B"], ["C", "D", "D", "E"]):
        run(seeded, "models:recordGenerations", {"events": [
            event(RAY, 1, False, errorCode=code) for code in codes]})
    (point,) = usage(seeded, "minute", NOW, NOW + 1, RAY)
    assert point["failures"] == 9
    # The two most frequent (ties by code: B before D), the rest under `other`.
    assert point["errors"] == {"A": 3, "B": 2, "other": 4}
    assert sum(point["errors"].values()) == 9


def test_capped_keeps_the_most_frequent_codes():
    assert capped(Counter({"a": 5, "b": 1, "c": 1, "d": 2}), 3) == {"a": 5, "d": 2, "other": 2}
    assert capped(Counter({"a": 1, "b": 1}), 3) == {"a": 1, "b": 1}


def test_percentiles_are_read_from_the_histogram():
    histogram = [0] * (len(LATENCY_BOUNDS) + 1)
    assert percentile(histogram, 0.5) is None
    for seconds in [1.2] * 50 + [2.5] * 45 + [700] * 5:
        histogram[latency_bucket(round(seconds * 1e6))] += 1
    assert 1 < percentile(histogram, 0.5) <= 1.5
    assert 2 < percentile(histogram, 0.95) <= 3
    assert 600 < percentile(histogram, 0.99) <= 1200
    assert latency_bucket(1_000_000) == LATENCY_BOUNDS.index(1)  # a bound counts in its bucket
    histogram = [0] * (len(LATENCY_BOUNDS) + 1)
    histogram[-1] = 3  # beyond the last bound: its lower bound
    assert percentile(histogram, 0.5) == LATENCY_BOUNDS[-1]


# -- under concurrency, against gunicorn -----------------------------------------------------


def test_recordings_are_exact_under_concurrency(seeded, gunicorn, make_token):
    """8 threads x 200 calls on 2 workers: 4 threads call updateModelStats (with error codes and
    credits), 4 call recordGenerations with 5 backfilled events each. Totals, minute buckets,
    error codes and credits come out exact."""
    token = make_token("stats:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2, MONITOR_INTERVAL_SECONDS="0")
    threads, calls = 8, 200
    base = int(time.time() * 1000)
    base -= base % MINUTE
    rng = random.Random(11)
    plans: list[list[dict]] = []
    for index in range(threads):
        plan = []
        for _ in range(calls):
            if index < 4:
                ok = rng.random() < 0.8
                plan.append({"path": "models:updateModelStats", "args": {
                    "modelId": FLASH, "generationTime": rng.randrange(1, 60_000) / 1000,
                    "success": ok, "credits": rng.randrange(100),
                    **({} if ok else {"errorCode": rng.choice(["TIMEOUT", "NSFW"])})}})
            else:
                plan.append({"path": "models:recordGenerations", "args": {"events": [
                    event(rng.choice([VEO, RAY]), rng.randrange(1, 600_000) / 1000,
                          ok := rng.random() < 0.7, credits=rng.randrange(1000),
                          at=base - rng.randrange(1, 31) * MINUTE + rng.randrange(MINUTE),
                          **({} if ok else {"errorCode": rng.choice(["E1", "E2", "E3"])}))
                    for _ in range(5)]}})
        plans.append(plan)
    failures: list[str] = []
    counts: list[int] = []

    def worker(plan: list[dict]) -> None:
        with requests.Session() as session:
            for body in plan:
                response = session.post(f"{server.url}/api/mutation", json=body, timeout=60,
                                        headers={"Authorization": f"Bearer {token}"})
                answer = response.json() if response.status_code == 200 else {}
                if answer.get("status") != "success":
                    failures.append(response.text)
                elif body["path"] == "models:updateModelStats":
                    counts.append(answer["value"]["totalGenerations"])

    pool = [threading.Thread(target=worker, args=(plan,)) for plan in plans]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert failures == []
    assert sorted(counts) == list(range(1, 4 * calls + 1))  # a serial order, group commit or not

    direct = [b["args"] for plan in plans[:4] for b in plan]
    events = [e for plan in plans[4:] for b in plan for e in b["args"]["events"]]

    def read(path: str, args: dict):
        response = requests.post(f"{server.url}/api/query", json={"path": path, "args": args},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return response.json()["value"]

    flash = read("models:getUsage", {"modelId": FLASH, "from": base - HOUR,
                                     "to": base + 2 * HOUR, "bucket": "hour"})
    assert sum(p["generations"] for p in flash) == len(direct)
    assert sum(p["successes"] for p in flash) == sum(a["success"] for a in direct)
    assert sum(p["credits"] for p in flash) == sum(a["credits"] for a in direct)
    errors = Counter()
    for p in flash:
        errors.update(p["errors"])
    assert errors == Counter(a["errorCode"] for a in direct if not a["success"])
    for model in (VEO, RAY):
        mine = [e for e in events if e["modelId"] == model]
        series = read("models:getUsage", {
            "modelId": model, "from": base - 31 * MINUTE, "to": base, "bucket": "minute"})
        expected = Counter(e["at"] - e["at"] % MINUTE for e in mine)
        assert {p["start"]: p["generations"] for p in series if p["generations"]} == expected
        failed = Counter(e["at"] - e["at"] % MINUTE for e in mine if not e["success"])
        assert {p["start"]: p["failures"] for p in series if p["failures"]} == failed
        assert sum(p["credits"] for p in series) == sum(e["credits"] for e in mine)
        stats = read("models:getModelById", {"modelId": model})
        assert stats["totalGenerations"] == len(mine)
        total_time = sum(Decimal(str(e["generationTime"])) for e in mine)
        assert stats["averageGenerationTime"] == float(total_time / len(mine))
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.connect() as conn:
        recorded = conn.scalar(select(func.sum(usage_buckets.c.generations)))
    engine.dispose()
    assert recorded == len(direct) + len(events)


def test_sums_of_credits_past_2_53_stay_exact(seeded):
    """SQLite summed as a float (total()): 10^16 + 1 credits came back as 10^16."""
    for _ in range(10):
        run(seeded, "models:recordGenerations", {"events": [
            event(RAY, 1, credits=10**12) for _ in range(1000)]})
    run(seeded, "models:recordGenerations", {"events": [event(RAY, 1, credits=1)]})
    (point,) = usage(seeded, "minute", NOW, NOW + 1, RAY)
    assert point["credits"] == 10 * 1000 * 10**12 + 1


def test_sums_of_times_and_credits_stop_at_the_largest_a_column_holds(seeded):
    """Generations of 86,400 s each, recorded as fast as the rate limit allows, pass 2^63
    microseconds within an hour: the sums saturate rather than fail every later recording
    of that model (PostgreSQL) or the roll-up."""
    from functions.usage import LARGEST, STATS

    first = NOW - 46 * HOUR - NOW % HOUR
    run(seeded, "models:recordGenerations", {"events": [
        event(RAY, 86400, at=first, credits=10**12),
        event(RAY, 86400, at=first + MINUTE, credits=10**12)]})
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(usage_buckets.update().values(time_micros=LARGEST - 5,
                                                   credits=LARGEST - 5))
        conn.execute(STATS.update().values(total_time_micros=LARGEST - 5))
    answer = run(seeded, "models:updateModelStats", {"modelId": RAY, "generationTime": 86400,
                                                     "success": True, "credits": 10**12},
                 now=first)
    assert answer["totalGenerations"] == 3
    moved = run(seeded, "usage:rollUp", {}, now=NOW + 30 * HOUR)
    assert moved["minutes"] == 2
    with engine.connect() as conn:
        totals = conn.execute(select(STATS.c.total_time_micros)).scalars().all()
        assert sorted(totals) == [LARGEST - 5, LARGEST - 5, LARGEST]  # Ray's, and two others
        (hour,) = conn.execute(select(usage_buckets)).all()
    engine.dispose()
    assert (hour.size, hour.generations, hour.time_micros, hour.credits) == (
        3600, 3, LARGEST, LARGEST)
    run(seeded, "models:recordGenerations", {"events": [  # a minute row in the same hour
        event(RAY, 86400, at=first + 2 * MINUTE, credits=10**12)]})
    (hour_point,) = usage(seeded, "hour", first, first + HOUR, RAY)
    assert hour_point["generations"] == 4
    assert hour_point["credits"] == LARGEST  # summed past 2^63 (SQLite's SUM raised: a 500),
    # answered at the largest a 64-bit integer holds
