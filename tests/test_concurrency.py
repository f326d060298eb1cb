"""Fast reads, exact writes: the read cache, and correctness under concurrency against gunicorn."""

from __future__ import annotations

import logging
import random
import threading
import time
from decimal import Decimal

import requests

from engine.cache import catalog_cache
from engine.marks import once
from tests.conftest import run_as_system, within_one_window
from tests.test_catalog import FLASH, NEW_MODEL, RAY, VEO


def call(url: str, kind: str, path: str, args: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(f"{url}/api/{kind}", json={"path": path, "args": args},
                             headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_stats_do_not_evict_the_cached_configuration(seeded, api):
    api.value("query", "models:getActiveModels")
    with seeded.app_context():
        cache = catalog_cache()
    reloads = cache.reloads
    for _ in range(5):
        api.value("mutation", "models:updateModelStats",
                  {"modelId": RAY, "generationTime": 2, "success": True})
        assert api.value("query", "models:getModelById", {"modelId": RAY})["revision"] == 1
    assert api.value("query", "models:getModelById", {"modelId": RAY})["totalGenerations"] == 5
    assert cache.reloads == reloads
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {"name": "New"}})
    assert api.value("query", "models:getModelById", {"modelId": RAY})["name"] == "New"
    assert cache.reloads == reloads + 1


def test_a_change_is_visible_to_the_next_read_on_every_worker(seeded, gunicorn, make_token):
    token = make_token("catalog:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=3)
    for round_ in range(1, 16):
        price = round(0.18 + round_ / 100, 2)
        call(server.url, "mutation", "models:updateModel",
             {"modelId": RAY, "patch": {"costPerSecond": price}}, token)
        for _ in range(6):  # a fresh connection each time: spread over the workers
            quote = call(server.url, "query", "pricing:getCreditCost",
                         {"modelId": RAY, "duration": 5, "quality": "high"})["value"]
            assert quote["costPerSecond"] == price


def test_stats_updates_are_exact_under_concurrency(seeded, gunicorn, make_token):
    token = make_token("stats:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2)
    threads, calls = 8, 200
    times = [[Decimal(random.randint(1, 120_000)) / 1000 for _ in range(calls)]
             for _ in range(threads)]
    successes = [[random.random() < 0.9 for _ in range(calls)] for _ in range(threads)]
    failures: list[str] = []
    counts: list[int] = []  # what each call answered: the model's generations, its own included

    def worker(index: int) -> None:
        session = requests.Session()
        for seconds, ok in zip(times[index], successes[index], strict=True):
            response = session.post(f"{server.url}/api/mutation", json={
                "path": "models:updateModelStats",
                "args": {"modelId": FLASH, "generationTime": float(seconds), "success": ok}},
                headers={"Authorization": f"Bearer {token}"}, timeout=60)
            if response.status_code != 200 or response.json()["status"] != "success":
                failures.append(response.text)
            else:
                counts.append(response.json()["value"]["totalGenerations"])

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert failures == []
    total = threads * calls
    # Calls written together (engine/tally.py) still answer as if one after another.
    assert sorted(counts) == list(range(1, total + 1))
    stats = {s["modelId"]: s for s in call(server.url, "query", "models:getModelStats",
                                           {})["value"]}[FLASH]
    assert stats["totalGenerations"] == total
    expected_successes = sum(map(sum, successes))
    assert stats["successRate"] == float(Decimal(expected_successes) * 100 / total)
    expected_average = sum(map(sum, times)) / total
    assert stats["averageGenerationTime"] == float(expected_average)


def test_one_default_holds_under_concurrent_changes(seeded, gunicorn, make_token):
    token = make_token("catalog:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2)
    for i in range(4):
        run_as_system(seeded, "models:createModel", {**NEW_MODEL, "modelId": f"acme/m{i}"})
    ids = [VEO, RAY, FLASH] + [f"acme/m{i}" for i in range(4)]
    outcomes: list[str] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for step in range(25):
            choice = rng.random()
            if choice < 0.5:
                path, args = "models:setDefaultModel", {"modelId": rng.choice(ids)}
            elif choice < 0.7:
                path, args = "models:createModel", {
                    **NEW_MODEL, "modelId": f"acme/t{seed}-{step}", "isDefault": True}
            elif choice < 0.85:
                path, args = "models:deleteModel", {"modelId": rng.choice(ids)}
            else:
                path, args = "models:restoreModel", {"modelId": rng.choice(ids)}
            body = call(server.url, "mutation", path, args, token)
            outcomes.append(body["status"] if body["status"] == "success"
                            else body["errorData"]["code"])

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert set(outcomes) <= {"success", "DEFAULT_REQUIRED", "INACTIVE"}
    assert outcomes.count("success") > 50
    active = call(server.url, "query", "models:getActiveModels", {})["value"]
    defaults = [m["modelId"] for m in active if m["isDefault"]]
    assert len(defaults) == 1
    page = call(server.url, "query", "models:listModels",
                {"paginationOpts": {"numItems": 1000, "cursor": None}})["value"]["page"]
    assert sum(m["isDefault"] for m in page) == 1


# -- what the caches may skip, and what they must not -----------------------------------------


def count_statements(app) -> list[str]:
    """Every SQL statement the app sends from now on, on each of its engines."""
    from sqlalchemy import event

    from db.engine import engines

    sent: list[str] = []
    for target in engines(app.extensions["catalog_db"].engine):
        event.listen(target, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: sent.append(statement))
    return sent


LOOKUPS = [
    ("pricing:getCreditCost", {"modelId": RAY, "duration": 5, "quality": "high"}),
    ("models:getModelById", {"modelId": RAY}),
    ("models:getActiveModels", {}),
    ("models:validateModelCapabilities", {"modelId": RAY, "duration": 5, "quality": "high"}),
]


def test_unchanged_reads_send_no_sql_and_a_change_is_read_at_once(seeded, api, monkeypatch):
    monkeypatch.setattr("engine.marks.RECHECK_SECONDS", 60.0)  # only the marks decide here
    # The rate limit's counts reach the fleet's table in batches, at least every
    # FLUSH_SECONDS and at each minute's start: neither may fall inside the rounds below.
    monkeypatch.setattr("engine.ratelimit.FLUSH_SECONDS", 60.0)
    for path, args in LOOKUPS:
        api.value("query", path, args)
    sent = count_statements(seeded)

    def ten_rounds() -> list[str]:
        # A minute's first hit is flushed, and a recheck come due (in a second attempt, a
        # minute on) is made: both before the count.
        for path, args in LOOKUPS:
            api.value("query", path, args)
        sent.clear()
        for _ in range(10):
            for path, args in LOOKUPS:
                api.value("query", path, args)
        return list(sent)

    # token, rate limit, configuration, statistics: all from memory
    assert within_one_window(ten_rounds) == []
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {"name": "Renamed"}})
    assert api.value("query", "models:getModelById", {"modelId": RAY})["name"] == "Renamed"
    api.value("mutation", "models:updateModelStats",
              {"modelId": RAY, "generationTime": 3, "success": True})
    assert api.value("query", "models:getModelById", {"modelId": RAY})["totalGenerations"] == 1


def test_changes_made_where_the_marks_are_not_shared_are_seen_after_the_recheck(
        seeded, api, make_token, tmp_path, monkeypatch):
    from engine.marks import RECHECK_SECONDS
    from wsgi import create_app

    reader = make_token("catalog:write", name="reader")
    for path, args in LOOKUPS:
        api.value("query", path, args, token=reader)
    # Another host, in effect: the same database, its own marks.
    monkeypatch.setenv("CATALOG_MARKS_DIR", str(tmp_path / "elsewhere"))
    elsewhere = create_app({"DATABASE_URL": seeded.config["DATABASE_URL"], "SECRET_KEY": "x"})
    run_as_system(elsewhere, "models:updateModel",
                  {"modelId": RAY, "patch": {"costPerSecond": 0.5}})
    run_as_system(elsewhere, "models:updateModelStats",
                  {"modelId": RAY, "generationTime": 4, "success": False})
    run_as_system(elsewhere, "access:revokeToken", {"name": "reader"})
    elsewhere.extensions["catalog_db"].dispose()
    # Polled to a deadline far beyond the recheck: the outcome never depends on timing. (On
    # PostgreSQL the fleet's push channel may lengthen it to PUSH_RECHECK_SECONDS.)
    recheck = max(RECHECK_SECONDS, seeded.config["PUSH_RECHECK_SECONDS"])
    deadline = time.monotonic() + max(30, recheck * 6)

    changes = {  # each asked until it is seen (a refused token is not tried again: past
        # INVALID_TOKENS_PER_MINUTE refusals its address would get 429)
        "costPerSecond": lambda: api.value(
            "query", "pricing:getCreditCost", LOOKUPS[0][1])["costPerSecond"] == 0.5,
        "totalGenerations": lambda: api.value(
            "query", "models:getModelById", {"modelId": RAY})["totalGenerations"] == 1,
        "the revoked token": lambda: api.post(
            "query", "models:getActiveModels", token=reader).status_code == 401,
    }
    while changes := {name: seen for name, seen in changes.items() if not seen()}:
        assert time.monotonic() < deadline, f"never seen: {', '.join(changes)}"
        time.sleep(RECHECK_SECONDS / 5)


def test_a_recheck_on_sqlite_keeps_caches_unless_something_was_committed(tmp_path,
                                                                          monkeypatch):
    """On SQLite a cache past its recheck asks SQLite whether anything was committed since it
    was filled (PRAGMA data_version), and is dropped only then; without such a count
    (PostgreSQL's caches) it is dropped at every recheck."""
    import sqlite3

    from db.engine import SqliteCommits
    from engine.marks import Generation, Marks

    monkeypatch.setattr("engine.marks.RECHECK_SECONDS", 0.0)  # every read is a recheck
    path = tmp_path / "catalog.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    marks = Marks(tmp_path / "marks")
    commits = marks.commit_count = SqliteCommits(str(path))
    held = Generation(marks, "catalog")
    try:
        first = held.values()
        first["answer"] = 1
        assert held.values() is first and held.values() is first  # nothing was committed
        writer.execute("INSERT INTO t VALUES (1)")  # a hand-made change, marks untouched
        second = held.values()
        assert second == {} and second is not first
        assert held.values() is second
    finally:
        writer.close()
        commits.close()
    assert commits() is None  # closed: no count, so every recheck drops
    uncounted = Generation(Marks(tmp_path / "other-marks"), "catalog")
    kept = uncounted.values()
    assert uncounted.values() is not kept


def test_caches_that_nest_are_dropped_together(tmp_path, monkeypatch):
    """Caches nest: a held answer is computed from the cached statistics. An answer started
    afresh (a mark moved) after a commit made elsewhere may be computed from statistics read
    before it, as any cache may be that stale until the recheck; but at the recheck both are
    dropped. (Each cache rechecking on its own clock, the answer was renewed under the newer
    count and kept the old statistics for good: a stats recording made on another host was
    never seen on this one, in about one run in three of this module.)"""
    import sqlite3
    from types import SimpleNamespace

    from db.engine import SqliteCommits
    from engine.marks import RECHECK_SECONDS, Generation, Marks

    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr("engine.marks.time", SimpleNamespace(monotonic=lambda: clock.now))
    path = tmp_path / "catalog.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    marks = Marks(tmp_path / "marks")
    commits = marks.commit_count = SqliteCommits(str(path))
    answers, statistics = Generation(marks, "catalog", "stats"), Generation(marks, "stats")
    try:
        answers.values()["answer"] = "computed before the commit"
        clock.now += RECHECK_SECONDS / 2
        statistics.values()["row"] = "read before the commit"
        writer.execute("INSERT INTO t VALUES (1)")  # made elsewhere: no mark here moves
        marks.bump({"catalog"})  # a change here, to the catalog only
        assert answers.values() == {}
        answers.values()["answer"] = f"computed from the row {statistics.values()['row']}"
        clock.now += RECHECK_SECONDS * 0.6  # the next recheck is due
        assert answers.values() == {}
        assert statistics.values() == {}  # read again, not the row from before the commit
        answers.values()["answer"], statistics.values()["row"] = "after", "after"
        kept = answers.values(), statistics.values()
        for _ in range(3):  # nothing committed since: kept at each recheck
            clock.now += RECHECK_SECONDS * 1.5
            assert (answers.values(), statistics.values()) == kept
    finally:
        writer.close()
        commits.close()


def test_commits_are_counted_only_for_a_sqlite_file_another_connection_opens_alike(tmp_path):
    from sqlalchemy import create_engine

    from db.engine import sqlite_file

    for url, expected in [(f"sqlite:///{tmp_path}/c.db", f"{tmp_path}/c.db"),
                          ("sqlite://", None), ("sqlite:///:memory:", None),
                          (f"sqlite:///file:{tmp_path}/c.db?uri=true", None),
                          ("sqlite:///file::memory:?cache=shared&uri=true", None),
                          ("postgresql+psycopg://u@127.0.0.1/db", None)]:
        engine = create_engine(url)
        assert sqlite_file(engine) == expected, url
        engine.dispose()


def test_a_revoked_token_is_refused_by_every_worker_at_once(seeded, gunicorn, make_token):
    token = make_token("stats:write", name="backend")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=3)
    for _ in range(9):  # fresh connections: every worker comes to know the token
        call(server.url, "query", "models:getDefaultModel", {}, token)
    run_as_system(seeded, "access:revokeToken", {"name": "backend"})
    for _ in range(9):
        response = requests.post(f"{server.url}/api/query",
                                 json={"path": "models:getDefaultModel", "args": {}},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert response.status_code == 401, response.text


def test_without_a_usable_marks_folder_a_process_still_reads_its_own_changes(
        database_url, tmp_path, monkeypatch, caplog):
    from wsgi import create_app

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("CATALOG_MARKS_DIR", str(blocked))
    logger = logging.getLogger("catalog.marks")  # "catalog" does not propagate to caplog's root
    logger.addHandler(caplog.handler)
    try:
        app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x"})
    finally:
        logger.removeHandler(caplog.handler)
    assert "change marks unavailable" in caplog.text
    try:
        import seeds

        with app.app_context():
            seeds.load()
        assert run_as_system(app, "models:getModelById", {"modelId": RAY})["name"] != "Mine"
        run_as_system(app, "models:updateModel", {"modelId": RAY, "patch": {"name": "Mine"}})
        assert run_as_system(app, "models:getModelById", {"modelId": RAY})["name"] == "Mine"
    finally:
        app.extensions["catalog_db"].dispose()


def test_a_process_stopped_holding_the_marks_lock_delays_a_write_by_a_bound_only(
        tmp_path, caplog, monkeypatch):
    """A process stopped while it holds the host's marks lock (SIGSTOP, a debugger) costs
    every other writer LOCK_WAIT_SECONDS once per bump, not its answer: the marks move anyway."""
    import fcntl
    import os

    from engine.marks import LOCK_WAIT_SECONDS, Marks

    # the second bump below must come within it, however long this thread is kept waiting
    monkeypatch.setattr("engine.marks.STALLED_SECONDS", 60.0)
    marks = Marks(tmp_path / "marks")
    holder = os.open(marks.path, os.O_RDWR)  # another open file: as another process holds it
    fcntl.flock(holder, fcntl.LOCK_EX)
    logger = logging.getLogger("catalog.marks")
    logger.addHandler(caplog.handler)
    done = threading.Event()
    try:
        before = marks.read_all()
        bumper = threading.Thread(target=lambda: (marks.bump({"catalog"}, tick=True),
                                                  done.set()))
        bumper.start()
        assert done.wait(10 + LOCK_WAIT_SECONDS), "the bump waited on the lock for good"
        after = marks.read_all()
        assert after[0] == before[0] + 1 and after[3] == before[3] + 1
        assert "stayed locked" in caplog.text
        warned = caplog.text.count("stayed locked")
        marks.bump({"catalog"})  # within STALLED_SECONDS: it only tries the lock, no new wait
        assert marks.read_all()[0] == before[0] + 2
        assert caplog.text.count("stayed locked") == warned
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        logger.removeHandler(caplog.handler)
        bumper.join()
    logged = caplog.text
    marks.bump({"stats"})  # the lock is free again: taken at once, nothing logged
    assert marks.read_all()[1] == before[1] + 1 and caplog.text == logged


def ask_at_once(threads: int, ask) -> list:
    """`ask()` from several threads at once; what each got (or the error it raised)."""
    outcomes: list = []

    def one() -> None:
        try:
            outcomes.append(ask())
        except RuntimeError as error:
            outcomes.append(str(error))

    pool = [threading.Thread(target=one) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(10)
    return outcomes


class Watched(dict):
    """Values whose readers are counted when they find a value still being computed."""

    def __init__(self) -> None:
        super().__init__()
        self.found_in_flight = 0
        self.lock = threading.Lock()

    def get(self, key, default=None):
        found = super().get(key, default)
        if found is not None and type(found).__name__ == "_Flight":
            with self.lock:
                self.found_in_flight += 1
        return found


def miss_together(threads: int, values: Watched, compute) -> list:
    """The first thread starts computing and is held there until every other thread has found
    its computation in flight: the overlap is certain, not timed."""
    started, release = threading.Event(), threading.Event()

    def held() -> str:
        if not started.is_set():
            started.set()
            assert release.wait(10)
        return compute()

    outcomes: list = []
    first = threading.Thread(target=lambda: outcomes.extend(ask_at_once(1, ask)))
    ask = lambda: once(values, "key", held)  # noqa: E731
    first.start()
    assert started.wait(10)
    rest = threading.Thread(target=lambda: outcomes.extend(ask_at_once(threads - 1, ask)))
    rest.start()
    deadline = time.monotonic() + 10
    while values.found_in_flight < threads - 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    first.join(10)
    rest.join(10)
    return outcomes


def test_a_value_that_many_threads_miss_at_once_is_computed_once():
    values, computed = Watched(), []

    def compute() -> str:
        computed.append(1)
        return "answer"

    assert miss_together(8, values, compute) == ["answer"] * 8
    assert values.found_in_flight >= 7
    assert computed == [1]
    assert values == {"key": "answer"}


def test_when_computing_a_value_fails_the_threads_waiting_for_it_compute_it_anew():
    values, computed = Watched(), []

    def compute() -> str:
        computed.append(1)
        if len(computed) == 1:
            raise RuntimeError("the database is unavailable")
        return "answer"

    outcomes = miss_together(6, values, compute)
    assert sorted(outcomes) == ["answer"] * 5 + ["the database is unavailable"]
    assert computed == [1, 1]


def test_a_value_not_kept_is_computed_again():
    values, computed = {}, []

    def compute() -> None:
        computed.append(1)

    for _ in range(2):
        assert once(values, "unknown token", compute, keep=lambda found: found is not None) \
            is None
    assert computed == [1, 1]
    assert values == {}
