"""Faults: the database restarting under load, a worker killed, a mutation cut off half-way."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
import requests
from alembic import command
from sqlalchemy import create_engine, exc, text
from sqlalchemy.pool import NullPool

from db.engine import TCP_USER_TIMEOUT_MS, engines
from db.revision import alembic_config
from engine.errors import TransportError
from functions.access import authenticate_token
from tests.conftest import catalog_fingerprint, run_as_system
from tests.servers import PostgresServer, wait_for
from wsgi import create_app

QUOTE = {"path": "pricing:getCreditCost",
         "args": {"modelId": "luma/ray-2-720p", "duration": 5, "quality": "high"}}


class Load:
    """Requests in a loop from a few threads, recording every answer."""

    def __init__(self, url: str, body: dict, token: str | None = None, threads: int = 4):
        self.url, self.body, self.token = url, body, token
        self.answers: list[tuple[float, int | str]] = []
        self.acknowledged = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        kind = "mutation" if self.token else "query"
        while not self._stop.is_set():
            try:
                response = requests.post(f"{self.url}/api/{kind}", json=self.body,
                                         headers=headers, timeout=15)
                outcome: int | str = response.status_code
                ok = response.status_code == 200 and response.json()["status"] == "success"
            except requests.RequestException:
                outcome, ok = "dropped", False
            with self._lock:
                self.answers.append((time.monotonic(), outcome))
                self.acknowledged += ok

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def since(self, moment: float) -> list[int | str]:
        return [outcome for at, outcome in self.answers if at >= moment]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_server_that_vanishes_without_a_word_is_noticed_by_the_kernel(app):
    """Every pool's connections carry TCP keepalives and a user timeout: when the network to
    PostgreSQL is cut, a request waiting for an answer fails (503) within
    TCP_USER_TIMEOUT_MS instead of holding its thread for good. (The kernel applies them; a
    cut cannot be made here without root's packet filter, so the sockets are read.)"""
    for pool in engines(app.extensions["catalog_db"].engine):
        with pool.connect() as conn:
            fd = os.dup(conn.connection.dbapi_connection.fileno())
            with socket.socket(fileno=fd) as sock:
                assert sock.getsockopt(socket.IPPROTO_TCP,
                                       socket.TCP_USER_TIMEOUT) == TCP_USER_TIMEOUT_MS
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                assert (sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)) == (10, 5, 3)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_read_on_a_connection_the_database_dropped_is_asked_again_on_a_fresh_one(
        seeded, database_url, make_token):
    """After a restart (here: every session of the database ended), the first read on each
    pooled connection finds it dead; a read (a query, a token's lookup) is asked again once on
    a fresh connection, so no caller sees a 503 for a database that is back. A write is not
    asked again: cut off at its commit, it may have committed."""
    history = ("history:getModelHistory",
               {"modelId": "luma/ray-2-720p", "paginationOpts": {"numItems": 5, "cursor": None}})
    run_as_system(seeded, "models:updateModel",  # each pool holds a connection now
                  {"modelId": "luma/ray-2-720p", "patch": {"name": "Before"}})
    first = run_as_system(seeded, *history)
    token = make_token("stats:write")  # never used: its first request looks it up
    end_every_session(database_url)
    assert authenticate_token(seeded, token).name.startswith("token:")
    end_every_session(database_url)
    assert run_as_system(seeded, *history) == first
    end_every_session(database_url)
    with pytest.raises(TransportError) as refused:
        run_as_system(seeded, "models:updateModel",
                      {"modelId": "luma/ray-2-720p", "patch": {"name": "After"}})
    assert refused.value.status == 503
    assert run_as_system(seeded, "models:getModelById",
                         {"modelId": "luma/ray-2-720p"})["name"] == "Before"


def end_every_session(database_url: str) -> None:
    """What a restart does to pooled connections: every other session of the database ends."""
    ending = create_engine(database_url, poolclass=NullPool)
    with ending.connect() as conn:
        count = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    ending.dispose()
    assert count >= 1


def test_service_survives_a_postgresql_restart(gunicorn, tmp_path):
    server = PostgresServer()
    server.start()
    try:
        server.create_database("catalog")
        url = server.url("catalog")
        command.upgrade(alembic_config(url), "head")
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x",
                          "RATE_LIMIT_STORAGE": str(tmp_path / "limits.db")})
        import seeds

        with app.app_context():
            seeds.load()
        app.extensions["catalog_db"].dispose()
        web = gunicorn(url, workers=2)
        master = web.process.pid
        with Load(web.url, QUOTE) as load:
            wait_for(lambda: load.since(0).count(200) >= 20, 20, "answers before the stop")
            server.stop("fast")
            down = time.monotonic()
            wait_for(lambda: 503 in load.since(down), 20, "503s while the database is down")
            server.start()
            up = time.monotonic()
            wait_for(lambda: requests.post(f"{web.url}/api/query", json=QUOTE,
                                           timeout=5).status_code == 200, 20, "recovery")
            recovered = time.monotonic()
            # Each worker finds its pooled connections dead on its own first try (and asks
            # again on a fresh one); then the service answers again: 40 answers in a row.
            wait_for(lambda: load.since(recovered)[-40:] == [200] * 40, 30,
                     "every worker answering again")
        outcomes = [o for _, o in load.answers]
        assert set(outcomes) <= {200, 503}, set(outcomes)
        assert 503 in load.since(down) and 200 in [o for at, o in load.answers if at < down]
        assert recovered - up < 10
        assert web.process.pid == master and web.process.poll() is None
    finally:
        server.remove()


def test_a_killed_worker_is_replaced_and_loses_nothing(seeded, gunicorn, make_token):
    token = make_token("stats:write", "catalog:write")
    web = gunicorn(seeded.config["DATABASE_URL"], workers=2)
    stats = {"path": "models:updateModelStats",
             "args": {"modelId": "luma/ray-flash-2-540p", "generationTime": 3, "success": True}}
    with Load(web.url, stats, token) as load:
        wait_for(lambda: load.acknowledged > 50, 20, "acknowledged writes before the kill")
        victim = web.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        at_kill = load.acknowledged
        wait_for(lambda: load.acknowledged > at_kill + 50, 30, "writes after the kill")
    wait_for(lambda: len(web.worker_pids()) == 2 and victim not in web.worker_pids(), 20,
             "a replacement worker")
    recorded = run_as_system(seeded, "models:getModelById",
                             {"modelId": "luma/ray-flash-2-540p"})["totalGenerations"]
    assert load.acknowledged > 50
    # every acknowledged update is there; at most the ones in flight at the kill are extra
    assert load.acknowledged <= recorded <= load.acknowledged + 4
    assert set(o for _, o in load.answers) <= {200, "dropped"}


def writer_holds_the_lock(url: str) -> bool:
    """Whether a catalog writer's transaction is open: SQLite's write lock (BEGIN IMMEDIATE
    refused at once), or PostgreSQL's writers' advisory lock."""
    engine = create_engine(url, connect_args={"timeout": 0} if url.startswith("sqlite") else {})
    try:
        with engine.connect() as conn:
            if url.startswith("sqlite"):
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                except exc.OperationalError:
                    return True
                conn.exec_driver_sql("ROLLBACK")
                return False
            return bool(conn.scalar(text("SELECT count(*) FROM pg_locks "
                                         "WHERE locktype = 'advisory' AND granted")))
    finally:
        engine.dispose()


def test_a_mutation_killed_mid_transaction_leaves_nothing(seeded, gunicorn, make_token):
    token = make_token("catalog:write")
    catalog = run_as_system(seeded, "catalog:exportCatalog")
    base = catalog["models"][1]
    catalog["models"] += [dict(base, modelId=f"bulk/m{i:04d}", name=f"Bulk {i}",
                               isDefault=False) for i in range(1500)]
    before = catalog_fingerprint(seeded)
    web = gunicorn(seeded.config["DATABASE_URL"], workers=1)
    answer: list[str] = []

    def apply() -> None:  # takes about 2 s on SQLite, longer on PostgreSQL
        try:
            requests.post(f"{web.url}/api/mutation", json={
                "path": "catalog:applyCatalog", "args": {"catalog": catalog, "reason": "bulk"}},
                headers={"Authorization": f"Bearer {token}"}, timeout=60)
            answer.append("answered")
        except requests.ConnectionError:
            answer.append("dropped")

    sent = threading.Thread(target=apply)
    victim = web.worker_pids()[0]
    sent.start()
    # Killed while its transaction holds the catalog's write lock: mid-transaction, for sure.
    wait_for(lambda: writer_holds_the_lock(seeded.config["DATABASE_URL"]), 30,
             "the apply's transaction")
    os.kill(victim, signal.SIGKILL)
    sent.join()
    assert answer == ["dropped"]
    assert catalog_fingerprint(seeded) == before
    wait_for(lambda: web.worker_pids() and victim not in web.worker_pids(), 20, "a new worker")
    assert requests.get(f"{web.url}/healthz", timeout=5).status_code == 200


def test_a_mutation_failing_half_way_rolls_back(seeded, api, monkeypatch):
    from functions import models

    calls = {"n": 0}
    real = models.record

    def failing(ctx, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # after the old default lost its flag, before the new one has it
            raise RuntimeError("cut off")
        return real(ctx, *args, **kwargs)

    monkeypatch.setattr(models, "record", failing)
    before = catalog_fingerprint(seeded)
    with pytest.raises(RuntimeError):
        with seeded.app_context():
            from engine.runtime import call, system

            call("models:setDefaultModel", {"modelId": "google/veo-3"},
                 identity=system("test"), source="test")
    assert calls["n"] == 2
    assert catalog_fingerprint(seeded) == before
    monkeypatch.undo()
    assert api.value("query", "models:getDefaultModel")["modelId"] == "luma/ray-flash-2-540p"
