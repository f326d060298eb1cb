"""The commit clock of one process: `ts` on mutation answers, `minTs` on queries, bad `minTs`
refused, and the push channel's listener losing its connection and coming back by itself.
(Three hosts on one PostgreSQL: tests/test_fleet.py.)"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from engine.fleet import APPLICATION_NAME, TICK_SQL
from tests.conftest import settle_fleet
from tests.servers import wait_for

COST = {"modelId": "luma/ray-2-720p"}


def _update(api, cost: float) -> dict:
    return api.mutation("models:updateModel",
                        {"modelId": "luma/ray-2-720p", "patch": {"costPerSecond": cost}})


def test_mutation_answers_carry_a_ts_that_min_ts_reads(seeded, api):
    first = _update(api, 0.21)
    second = _update(api, 0.22)
    assert first["status"] == second["status"] == "success"
    assert isinstance(first["ts"], int) and second["ts"] > first["ts"]
    answer = api.query("models:getModelById", COST, minTs=second["ts"])
    assert answer["value"]["costPerSecond"] == 0.22
    assert "ts" not in answer  # a query's answer is as before


def test_a_refused_mutation_answers_as_before(seeded, api):
    answer = api.mutation("models:updateModel", {"modelId": "nope/none", "patch": {}})
    assert answer["status"] == "error" and "ts" not in answer


@pytest.mark.parametrize("bad", ["12", -1, 1.5, True, 2**63, [1], {"ts": 1}])
def test_a_bad_min_ts_is_a_400(seeded, api, bad):
    response = api.post("query", "models:getActiveModels", minTs=bad)
    assert response.status_code == 400
    assert response.get_json()["code"] == "BadMinTs"


def test_a_min_ts_not_seen_in_time_is_a_503_with_retry_after(seeded, api):
    seeded.config["MIN_TS_WAIT_SECONDS"] = 0.2
    ts = _update(api, 0.23)["ts"]
    response = api.post("query", "models:getActiveModels", minTs=ts + 1_000_000)
    assert response.status_code == 503
    assert response.get_json()["code"] == "NotYetSeen"
    assert response.headers["Retry-After"] == "1"
    assert api.query("models:getActiveModels", minTs=ts)["status"] == "success"


def _listener_pids(url: str) -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                "AND datname = current_database()"),
                {"name": APPLICATION_NAME}))
    finally:
        engine.dispose()


def _terminate(url: str, pids: list[int]) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


def test_a_lost_listener_falls_back_to_rechecking_and_comes_back(app, api, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the push channel is PostgreSQL's")
    import seeds

    with app.app_context():
        seeds.load()
    fleet, marks = app.extensions["fleet"], app.extensions["catalog_marks"]
    ts = _update(api, 0.24)["ts"]
    wait_for(lambda: fleet.listening and fleet.seen >= ts, 10, "the listener")
    assert marks.recheck_seconds == app.config["PUSH_RECHECK_SECONDS"]
    pids = _listener_pids(database_url)
    assert pids
    _terminate(database_url, pids)
    # Without the channel: the short recheck at once, and minTs answered from the clock row.
    wait_for(lambda: fleet.reconnects >= 1 or not fleet.listening, 10, "the loss noticed")
    ts = _update(api, 0.25)["ts"]
    assert api.query("models:getModelById", COST, minTs=ts)["value"]["costPerSecond"] == 0.25
    wait_for(lambda: fleet.listening and fleet.reconnects >= 1, 15, "the listener back")
    assert marks.recheck_seconds == app.config["PUSH_RECHECK_SECONDS"]
    assert set(_listener_pids(database_url)).isdisjoint(pids)
    ts = _update(api, 0.26)["ts"]
    wait_for(lambda: fleet.seen >= ts, 10, "a change heard by push again")


def test_without_the_channel_a_min_ts_reads_afresh_once_and_a_future_ts_is_refused(seeded,
                                                                                   api):
    """A process that does not hear the channel answers `minTs` from the clock row: a
    committed ts resets its caches once (not on every request: that would let any caller
    keep the host's caches cold), and a ts no write was answered is refused without waiting."""
    if seeded.extensions["catalog_db"].engine.dialect.name != "postgresql":
        pytest.skip("the push channel is PostgreSQL's")
    from engine.fleet import Fleet

    marks = seeded.extensions["catalog_marks"]
    deaf = Fleet(marks, lambda: seeded.extensions["catalog_db"].engine, push_recheck=5)
    deaf.stop()  # it never listens: a host whose channel is down
    ts = _update(api, 0.27)["ts"]
    settle_fleet(seeded)  # the app's own listener bumps the mark when it hears the change
    before = marks.read("catalog")
    assert deaf.reached(ts, timeout=5) is True
    reset = marks.read("catalog")
    assert reset > before  # read afresh
    assert deaf.reached(ts, timeout=5) is True
    assert marks.read("catalog") == reset  # once for that change
    assert deaf.reached(ts + 1_000_000, timeout=5) is False


STATS = {"modelId": "luma/ray-2-720p", "generationTime": 12.5, "success": True}


def test_a_recording_ticks_the_clock_in_its_own_statement_before_any_row(seeded, api):
    """Recordings move the clock in their own transaction, its row locked before any other:
    while another transaction holds the clock's row, a recording waits holding no row of the
    statistics; it then answers the value its statement ticked."""
    if seeded.extensions["catalog_db"].engine.dialect.name != "postgresql":
        pytest.skip("the fleet's clock is PostgreSQL's")
    engine = create_engine(seeded.config["DATABASE_URL"])
    outcome: list[dict] = []
    try:
        with engine.connect() as holder, \
                engine.connect().execution_options(isolation_level="AUTOCOMMIT") as probe:
            before = holder.execute(text(
                "SELECT ts FROM fleet_clock WHERE id = 1 FOR UPDATE")).scalar_one()
            holder_pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
            recording = threading.Thread(target=lambda: outcome.append(
                api.mutation("models:updateModelStats", STATS)))
            recording.start()
            wait_for(lambda: probe.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"),
                {"holder": holder_pid}).scalar(), 10, "the recording waiting for the clock's row")
            # No row of the statistics is held by the waiting recording (else: an error).
            free = probe.execute(text("SELECT model_pk FROM model_stats FOR UPDATE NOWAIT"))
            assert len(free.all()) == probe.execute(text(
                "SELECT count(*) FROM model_stats")).scalar_one()
            holder.rollback()
            recording.join(10)
    finally:
        engine.dispose()
    (answer,) = outcome
    assert answer["status"] == "success"
    assert answer["ts"] == before + 1


def test_a_listener_that_missed_ticks_bumps_the_statistics(seeded):
    """Ticks a listener never heard of are recordings' (theirs notify later, together): a
    notification past the next value moves the statistics' mark with its own."""
    from engine.fleet import Fleet

    marks = seeded.extensions["catalog_marks"]
    fleet = Fleet(marks, lambda: seeded.extensions["catalog_db"].engine, push_recheck=5)
    fleet.stop()
    fleet._note("5 catalog")
    stats, catalog = marks.read("stats"), marks.read("catalog")
    fleet._note("6 catalog")  # the next value: nothing was missed
    assert marks.read("stats") == stats and marks.read("catalog") > catalog
    fleet._note("9 catalog")  # 7 and 8 were not heard
    assert marks.read("stats") > stats
    assert fleet.seen == 9


def _postgres_only(app) -> None:
    if app.extensions["catalog_db"].engine.dialect.name != "postgresql":
        pytest.skip("the fleet's clock is PostgreSQL's")


def test_a_recording_whose_announcement_was_lost_is_read_afresh(seeded, api):
    """A worker killed right after a recording never announces it: a `minTs` naming it is
    still answered, from the database afresh, once its wait has passed, and at once from
    then on."""
    _postgres_only(seeded)
    fleet, marks = seeded.extensions["fleet"], seeded.extensions["catalog_marks"]
    heard = _update(api, 0.28)["ts"]
    wait_for(lambda: fleet.listening and fleet.seen >= heard, 10, "the listener")
    engine = create_engine(seeded.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:  # what a recording's statement does, announced by no one
            lost = conn.execute(text(TICK_SQL)).scalar_one()
    finally:
        engine.dispose()
    catalog = marks.read("catalog")
    assert fleet.reached(lost, timeout=0.2) is True  # not heard of in its wait
    assert fleet.seen < lost and marks.read("catalog") > catalog  # read afresh
    again = marks.read("catalog")
    assert fleet.reached(lost, timeout=5) is True and marks.read("catalog") == again


def test_a_stopping_fleet_announces_what_it_owes(seeded):
    """A recording's announcement is sent when its worker's fleet stops, not lost with it."""
    _postgres_only(seeded)
    import psycopg

    from engine.fleet import CHANNEL, Fleet

    engine = seeded.extensions["catalog_db"].engine
    fleet = Fleet(seeded.extensions["catalog_marks"], lambda: engine, push_recheck=5)
    url = seeded.config["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        fleet._herald.announce(123_456)
        fleet.stop()
        payloads = [note.payload for note in listener.notifies(timeout=5, stop_after=1)]
    assert payloads == ["123456 stats"]


def test_a_stop_while_the_herald_sends_still_sends():
    """The herald's own flush had taken what was owed and only then asked whether the fleet
    had stopped: a stop between the two (its own flush finding nothing) lost the announcement.
    Here the herald is held between the two while the fleet stops."""
    from engine.fleet import Herald

    sent: list[int] = []
    paused, resumed = threading.Event(), threading.Event()

    class Stopped(threading.Event):
        def is_set(self) -> bool:
            if threading.current_thread() is herald_thread and not paused.is_set():
                paused.set()  # it has taken what is owed
                resumed.wait(10)
            return super().is_set()

    stopped = Stopped()
    herald = Herald(sent.append, stopped)
    herald._latest = 123_456  # owed, as after announce()
    herald_thread = threading.Thread(target=herald.flush)
    herald_thread.start()
    assert paused.wait(10)
    stopping = threading.Thread(target=lambda: (herald.flush(), stopped.set()))  # Fleet.stop
    stopping.start()
    stopping.join(0.5)  # it waits for the herald's flush (before the fix, it was done)
    resumed.set()
    herald_thread.join(10)
    stopping.join(10)
    assert sent == [123_456] and stopped.is_set()


def test_a_mutation_that_ticked_itself_but_changed_more_is_ticked_again(seeded, caplog):
    """Only recordings may skip the notification: any other change is ticked and notified
    as usual (and the slip is logged), never answered with a 500 after its commit."""
    _postgres_only(seeded)
    fleet = seeded.extensions["fleet"]
    before = fleet.committed_ts()
    ts = fleet.committed({"catalog"}, ticked=before)
    assert ts is not None and ts > before
    assert "ticked the clock itself" in caplog.text


def test_a_listener_that_cannot_connect_says_why(seeded, caplog):
    """A wrong database name or password shows in the log by the server's own words, once,
    without a traceback (it had been 'fleet listener lost its connection' alone)."""
    if seeded.extensions["catalog_db"].engine.dialect.name != "postgresql":
        pytest.skip("the push channel is PostgreSQL's")
    from sqlalchemy import create_engine

    from engine.fleet import Fleet
    from tests.servers import wait_for

    url = seeded.extensions["catalog_db"].engine.url.set(database="no_such_catalog")
    wrong = create_engine(url)
    fleet = Fleet(seeded.extensions["catalog_marks"], lambda: wrong, push_recheck=5)
    with caplog.at_level("WARNING", logger="catalog.fleet"):
        fleet.start()
        try:
            wait_for(lambda: any("lost its connection" in r.getMessage()
                                 for r in caplog.records), 10, "the listener's warning")
        finally:
            fleet.stop()
    [said] = [r for r in caplog.records if "lost its connection" in r.getMessage()]
    assert 'database "no_such_catalog" does not exist' in said.getMessage()
    assert not said.exc_info  # no traceback for a cause the driver names
    wrong.dispose()
