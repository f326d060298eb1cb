"""Alembic history on both databases, and the operators' commands."""

from __future__ import annotations

import json
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from db.revision import alembic_config
from db.schema import Base
from tests.conftest import ROOT, Api, fresh_database


# SQLite's reflection skips expression indexes (uq_models_model_id_lower) and says so;
# PostgreSQL's compares them.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_downgrade_upgrade_and_models_match(kind, request, tmp_path):
    url = fresh_database(kind, request, tmp_path)
    config = alembic_config(url)
    command.downgrade(config, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    engine.dispose()
    assert diff == []


def test_db_commands(runner):
    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0, result.output
    assert "0007 (head)" in result.output
    said = runner.invoke(args=["db", "upgrade"], catch_exceptions=False).output
    assert said == "The database is at 0007; nothing to do.\n"
    older = runner.invoke(args=["db", "upgrade", "0006"], catch_exceptions=False).output
    assert older == ("The database is at 0007, past 0006; nothing to do (to go back: "
                     "flask --app wsgi db downgrade 0006).\n")


def test_a_downgrade_asks_before_it_drops_data(app, runner):
    """A downgrade drops what later migrations added, with its data: it asks first (no
    answer is no), and says what it did; upgrade says so too."""
    refused = runner.invoke(args=["db", "downgrade"], input="\n", catch_exceptions=False)
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert "from 0007 to one migration back? It drops the tables" in refused.output
    assert "0007 (head)" in runner.invoke(args=["db", "current"]).output
    done = runner.invoke(args=["db", "downgrade", "--yes"], catch_exceptions=False)
    assert done.output == "Downgraded the database from 0007 to 0006.\n"
    again = runner.invoke(args=["db", "upgrade"], catch_exceptions=False)
    assert again.output == "Upgraded the database from 0006 to 0007.\n"
    two = runner.invoke(args=["db", "downgrade", "-2", "--yes"], catch_exceptions=False)
    assert two.output == "Downgraded the database from 0007 to 0005.\n"
    behind = runner.invoke(args=["db", "current"], catch_exceptions=False).output
    assert behind == "0005 (behind: flask --app wsgi db upgrade)\n"
    unknown = runner.invoke(args=["db", "downgrade", "9999"], catch_exceptions=False)
    assert unknown.exit_code == 1 and "[y/N]" not in unknown.output  # refused before asking
    assert "Can't locate revision identified by '9999'" in unknown.output
    runner.invoke(args=["db", "upgrade"], catch_exceptions=False)
    relative = runner.invoke(args=["db", "downgrade", "head-1", "--yes"], catch_exceptions=False)
    assert relative.output == "Downgraded the database from 0007 to 0006.\n"  # alembic's form
    same = runner.invoke(args=["db", "downgrade", "0006"], catch_exceptions=False)
    assert same.output == "The database is at 0006; nothing to do.\n"  # asked nothing
    runner.invoke(args=["db", "upgrade"], catch_exceptions=False)


def test_a_downgrade_of_a_database_it_cannot_downgrade_says_why(app, runner):
    engine = app.extensions["catalog_db"].engine
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    ahead = runner.invoke(args=["db", "downgrade", "--yes"], catch_exceptions=False)
    assert ahead.exit_code == 1
    assert "0099, a newer release's schema: downgrade it with that release" in ahead.output
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    never = runner.invoke(args=["db", "downgrade", "--yes"], catch_exceptions=False)
    assert never.output == "The database was never migrated; nothing to downgrade.\n"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version VALUES ('0007')"))


def test_a_host_of_an_older_release_starts_on_a_newer_schema(app, runner):
    """A rolling deploy: the new release migrated the database; a host of the old one that
    restarts runs `db upgrade` first (its unit's ExecStartPre) and must not fail there."""
    engine = app.extensions["catalog_db"].engine
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    said = runner.invoke(args=["db", "upgrade"], catch_exceptions=False)
    assert said.exit_code == 0, said.output
    assert said.output == "The database is at 0099, a newer release's schema; nothing to do.\n"
    current = runner.invoke(args=["db", "current"], catch_exceptions=False)
    assert current.output == "0099 (a newer release's schema)\n"
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0007'"))


def test_seed_is_idempotent(app, runner):
    from tests.conftest import catalog_fingerprint

    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0 and "Seeded 3 model(s)" in first.output
    after_first = catalog_fingerprint(app)
    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0 and "nothing changed" in second.output
    assert catalog_fingerprint(app) == after_first


def test_tokens_create_prints_the_token_last(seeded, runner, client):
    result = runner.invoke(args=["tokens", "create", "backend", "--scope", "stats:write"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    api = Api(client, token)
    assert api.value("mutation", "models:updateModelStats",
                     {"modelId": "google/veo-3", "generationTime": 2, "success": True})
    assert api.post("mutation", "models:setDefaultModel",
                    {"modelId": "google/veo-3"}).status_code == 403
    listed = runner.invoke(args=["tokens", "list"])
    assert "backend" in listed.output and token not in listed.output
    revoked = runner.invoke(args=["tokens", "revoke", "backend"])
    assert revoked.exit_code == 0 and revoked.output == "Revoked backend\n"
    again = runner.invoke(args=["tokens", "revoke", "backend"])  # changes nothing, says so
    assert again.exit_code == 0 and again.output.startswith("backend was revoked already (20")
    assert api.post("mutation", "models:updateModelStats",
                    {"modelId": "google/veo-3", "generationTime": 2,
                     "success": True}).status_code == 401
    bad = runner.invoke(args=["tokens", "create", "x", "--scope", "root"])
    assert bad.exit_code != 0
    assert runner.invoke(args=["tokens", "create", "backend-2", "--scope", "stats:write"]
                         ).exit_code == 0
    again = runner.invoke(args=["tokens", "create", "backend", "--scope", "stats:write"])
    assert again.exit_code != 0
    assert "it is revoked" in again.output and "e.g. backend-3" in again.output, again.output
    taken = runner.invoke(args=["tokens", "create", "live", "--scope", "stats:write"])
    assert taken.exit_code == 0
    twice = runner.invoke(args=["tokens", "create", "live", "--scope", "stats:write"])
    assert "already exists" in twice.output and "revoked" not in twice.output, twice.output


def test_a_listing_read_only_in_part_is_not_an_error(app, runner, tmp_path):
    """`flask tokens list | head -1` exits 0, as `catalog export | head -1` does: the listing
    is written at once, so a reader that stops early is not a broken pipe."""
    import os
    import subprocess
    import sys

    for n in range(30):
        assert runner.invoke(args=["tokens", "create", f"job-runner-{n}", "--scope",
                                   "stats:write"]).exit_code == 0
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"],
           "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "test-secret"}
    listing = subprocess.Popen([flask, "--app", "wsgi", "tokens", "list"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert listing.stdout.readline().startswith(b"name\tprefix")
    listing.stdout.close()  # as `head -1` does
    assert listing.wait(timeout=60) == 0, listing.stderr.read().decode()


def test_production_hashes_passwords_with_scrypt():
    """The tests hash with a cheap method (tests/conftest.py); what ships is scrypt."""
    from config import Config

    assert Config.from_environ(ROOT / "instance", {})["PASSWORD_HASH_METHOD"] == "scrypt"


def test_users_create_reads_the_password_from_stdin(app, runner):
    from sqlalchemy.orm import Session

    from functions.access import authenticate_password

    result = runner.invoke(args=["users", "create", "Ops@Example.com", "--role", "editor"],
                           input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    engine = app.extensions["catalog_db"].engine
    with Session(engine) as session:
        method = app.config["PASSWORD_HASH_METHOD"]
        account = authenticate_password(session, "ops@example.com", "correct horse battery",
                                        method)
        assert account is not None and account.identity.role == "editor"
        assert authenticate_password(session, "ops@example.com", "wrong password!",
                                     method) is None
        stored = session.scalar(text("SELECT password_hash FROM users"))
        assert stored.startswith(f"{method}$")  # new passwords by the configured method
    short = runner.invoke(args=["users", "create", "b@example.com", "--role", "viewer"],
                          input="short\n")
    assert short.exit_code != 0 and "at least 12" in short.output
    dup = runner.invoke(args=["users", "create", "ops@example.com", "--role", "viewer"],
                        input="another long password\n")
    assert dup.exit_code != 0 and "already exists" in dup.output
    empty = runner.invoke(args=["users", "create", "c@example.com", "--role", "viewer"],
                          input="")
    assert empty.exit_code == 2 and "no password on standard input" in empty.output


def test_bootstrap_creates_admin_and_token_once(app, runner):
    first = runner.invoke(args=["bootstrap"])
    assert first.exit_code == 0
    assert "admin@catalog.local" in first.output and "mc_" in first.output
    second = runner.invoke(args=["bootstrap"])
    assert second.exit_code == 0 and second.output == ""


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_every_kind_migration_keeps_a_video_catalog_and_goes_back(kind, request, tmp_path):
    """0004 turns free-text content types into kinds, keeps the old text in `task`, carries
    history snapshots over, and downgrades back to the very same rows."""
    url = fresh_database(kind, request, tmp_path)
    config = alembic_config(url)
    command.downgrade(config, "0001")
    engine = create_engine(url)
    row = {"model_id": "acme/animate", "name": "Animate", "description": "", "version": "1",
           "cost_micros": 83_333, "pricing_unit": "second", "supported_durations": "[5]",
           "supported_qualities": '["standard"]', "max_duration": 5, "fixed_duration": None,
           "quality_multipliers": "{}", "is_premium": False, "is_active": True,
           "is_default": True, "is_deprecated": False, "is_locked": False, "provider": "Acme",
           "category": "", "tags": "[]", "content_type": "image_to_video",
           "input_schema": None, "replicate_model_id": None, "model_parameters": None,
           "requirements": None, "revision": 1, "created_at": 1, "updated_at": 1,
           "deprecated_at": None}
    snapshot = {"modelId": "acme/animate", "contentType": "image_to_video",
                "costPerSecond": 0.083333}
    with engine.begin() as conn:
        columns = ", ".join(row)
        conn.execute(text(f"INSERT INTO models ({columns}) VALUES "
                          f"({', '.join(':' + k for k in row)})"), row)
        conn.execute(text("INSERT INTO model_history (model_pk, model_id, revision, action, "
                          "actor, source, at, changes, snapshot) VALUES (1, 'acme/animate', 1, "
                          "'create', 'test', 'test', 1, '[]', :s)"), {"s": json.dumps(snapshot)})

    def read():
        with engine.connect() as conn:
            model = conn.execute(text("SELECT * FROM models")).mappings().one()
            history = conn.execute(text("SELECT snapshot FROM model_history")).scalar_one()
        return dict(model), history if isinstance(history, dict) else json.loads(history)

    before = read()
    command.upgrade(config, "head")
    model, history = read()
    assert (model["content_type"], model["task"], model["cost_micros"]) == (
        "video", "image_to_video", 83_333)
    inputs = model["input_modalities"]
    assert (json.loads(inputs) if isinstance(inputs, str) else inputs) == ["image", "text"]
    assert history["contentType"] == "video" and history["task"] == "image_to_video"
    command.downgrade(config, "0001")
    assert read() == before
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_usage_and_health_migration_goes_back_with_a_readable_history(kind, request, tmp_path):
    """0005's downgrade drops its tables and the two model fields, and takes those fields out of
    history, so that 0004's code reads (and reverts to) every entry."""
    from tests.conftest import run_as_system
    from wsgi import create_app

    url = fresh_database(kind, request, tmp_path)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
    import seeds

    with app.app_context():
        seeds.load()
    run_as_system(app, "models:updateModel", {"modelId": "google/veo-3", "patch": {
        "healthPolicy": {"minGenerations": 5}, "pauseWhenFailing": True, "name": "Veo"}})
    run_as_system(app, "models:updateModelStats",
                  {"modelId": "google/veo-3", "generationTime": 3, "success": True})
    app.extensions["catalog_db"].dispose()
    config = alembic_config(url)
    command.downgrade(config, "0004")
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert not tables & {"usage_buckets", "model_health", "health_alerts", "webhooks",
                         "webhook_deliveries", "monitor_leases"}
    assert "health_policy" not in {c["name"] for c in inspect(engine).get_columns("models")}
    with engine.connect() as conn:
        history = conn.execute(text("SELECT snapshot, changes FROM model_history "
                                    "WHERE model_id = 'google/veo-3' ORDER BY revision")).all()
    engine.dispose()
    last = [json.loads(x) if isinstance(x, str) else x for x in history[-1]]
    assert "healthPolicy" not in last[0] and "pauseWhenFailing" not in last[0]
    assert last[1] == [{"field": "name", "old": "Google Veo-3", "new": "Veo"}]
    command.upgrade(config, "head")


def test_upgrades_started_together_wait_for_one_another(postgres, tmp_path):
    """Every host's unit runs `flask db upgrade` before it starts: the second of two upgrades
    started together waits for the first's commit, then finds nothing to do."""
    import os
    import subprocess
    import sys

    from db.engine import MIGRATION_LOCK_KEY
    from tests.servers import wait_for

    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    url = postgres.url(name)
    engine = create_engine(url)
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    env = {**os.environ, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / "instance"),
           "SECRET_KEY": "test-secret"}
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                   "AND objid = :key AND NOT granted")
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        upgrades = [subprocess.Popen([flask, "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True) for _ in range(2)]
        try:
            with engine.connect() as probe:
                wait_for(lambda: probe.execute(waiting, {"key": MIGRATION_LOCK_KEY}).scalar() == 2
                         or any(u.poll() is not None for u in upgrades), 60,
                         "both upgrades to wait for the migration lock")
                assert all(u.poll() is None for u in upgrades), [u.communicate() for u in upgrades]
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        outputs = [u.communicate(timeout=120)[0] for u in upgrades]
    assert [u.returncode for u in upgrades] == [0, 0], outputs
    assert sorted(o.strip().splitlines()[-1] for o in outputs) == [  # each says what it did
        "The database is at 0007; nothing to do.", "Upgraded the database from none to 0007."]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0007"
    engine.dispose()


@pytest.mark.waits
def test_upgrades_started_together_on_sqlite_take_turns(tmp_path):
    """On SQLite too (a laptop's two terminals, a unit and a person): each upgrade takes the
    write lock from its transaction's start, so the others wait their turn instead of failing
    'database is locked' when both had read and then both wanted to write."""
    import os
    import subprocess
    import sys

    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
           "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "test-secret"}
    upgrades = [subprocess.Popen([flask, "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(4)]
    outputs = [u.communicate(timeout=120)[0] for u in upgrades]
    assert [u.returncode for u in upgrades] == [0] * 4, outputs
    assert sorted(o.strip().splitlines()[-1] for o in outputs) == [
        *["The database is at 0007; nothing to do."] * 3,
        "Upgraded the database from none to 0007."]


class _SeenFromOutside(list):
    """The steps an upgrade applied; at each, what another connection then reads of the
    database: its alembic revision, or None before alembic's table is committed."""

    def __init__(self, path) -> None:
        super().__init__()
        self.path, self.seen = path, []

    def append(self, step) -> None:
        import sqlite3

        super().append(step)
        outside = sqlite3.connect(self.path)
        try:
            has = outside.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'")
            self.seen.append(outside.execute("SELECT version_num FROM alembic_version")
                             .fetchone()[0] if has.fetchone() else None)
        finally:
            outside.close()


def test_an_upgrade_on_sqlite_commits_once_at_its_end(tmp_path):
    """Alembic commits after each migration on SQLite (its dialect says it has no
    transactional DDL): between two, an upgrade waiting for the write lock took it, found the
    database half way and upgraded it too, and the first then failed 'table fleet_clock
    already exists'. One transaction: until the last step, others see no migration at all."""
    path = tmp_path / "fresh.db"
    applied = _SeenFromOutside(path)
    command.upgrade(alembic_config(f"sqlite:///{path}", applied), "head")
    assert len(applied) == 7 and applied.seen == [None] * 7
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0007"
    engine.dispose()


def _unmigrated(kind, request, tmp_path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'unmigrated.db'}"
    postgres = request.getfixturevalue("postgres")
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    return postgres.url(name)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_nobody_migrated_says_what_to_run(kind, request, tmp_path, monkeypatch):
    """Not migrated, or migrated by an older release: /healthz answers 503 (a balancer keeps the
    host out), every call a 503 SchemaNotReady naming the command, the CLI one line of it.
    A database one migration behind says so to the balancer. A newer release's revision (a
    rolling deploy) keeps the host in."""
    from wsgi import create_app

    url = _unmigrated(kind, request, tmp_path)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret"})
    client = app.test_client()
    query = {"path": "models:getActiveModels", "args": {}, "format": "json"}
    stats = {"path": "models:updateModelStats", "format": "json",
             "args": {"modelId": "google/veo-3", "generationTime": 2, "success": True}}

    def refused(schema):
        health = client.get("/healthz")
        assert (health.status_code, health.json["schema"]) == (503, schema)
        assert "flask --app wsgi db upgrade" in health.json["message"]
        if schema == "behind":  # what the older schema holds is served; the rest is refused
            assert client.post("/api/query", json=query).status_code == 200
            cli = app.test_cli_runner()
            assert cli.invoke(args=["seed"], catch_exceptions=False).exit_code == 0
            made = cli.invoke(args=["tokens", "create", "backend", "--scope", "stats:write"],
                              catch_exceptions=False)
            token = made.output.strip().splitlines()[-1]
            once = {**stats, "args": {**stats["args"], "eventId": "job-1"}}  # 0007's table
            answer = client.post("/api/mutation", json=once,
                                 headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 503, answer.json
            assert answer.json["code"] == "SchemaNotReady"
            return
        for answer in (client.post("/api/query", json=query),
                       client.post("/api/mutation", json=stats,
                                   headers={"Authorization": "Bearer mc_abcdefgh_secret"})):
            assert answer.status_code == 503, answer.data
            assert answer.json["code"] == "SchemaNotReady"
            assert "flask --app wsgi db upgrade" in answer.json["message"]
        listed = app.test_cli_runner().invoke(args=["tokens", "list"], catch_exceptions=False)
        assert listed.exit_code == 1
        assert "run `flask --app wsgi db upgrade`" in listed.output, listed.output

    refused("missing")
    command.upgrade(alembic_config(url), "0006")
    refused("behind")
    command.upgrade(alembic_config(url), "head")
    health = client.get("/healthz")
    assert (health.status_code, health.json) == (200, {"status": "ok", "database": "ok",
                                                       "schema": "current"})
    assert client.post("/api/query", json=query).json["status"] == "success"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    health = client.get("/healthz")
    assert (health.status_code, health.json["schema"]) == (200, "ahead")
    app.extensions["catalog_db"].dispose()


def test_the_cli_says_in_one_line_what_it_cannot_reach(app, runner, tmp_path):
    """A database down (or a wrong password), an unknown revision, a file that cannot be
    written: one line on standard error and exit 1, never a traceback."""
    written = runner.invoke(args=["catalog", "export", str(tmp_path / "no" / "such" / "x.json")],
                            catch_exceptions=False)
    assert written.exit_code == 1
    assert "No such file or directory" in written.output, written.output
    unknown = runner.invoke(args=["db", "upgrade", "zzz"], catch_exceptions=False)
    assert unknown.exit_code == 1
    assert "Can't locate revision identified by 'zzz'" in unknown.output, unknown.output
    from db import Database

    app.extensions["catalog_db"].dispose()
    app.extensions["catalog_db"] = Database(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    for args in (["tokens", "list"], ["seed"], ["monitor", "run", "--once"], ["db", "current"]):
        down = runner.invoke(args=args, catch_exceptions=False)
        assert down.exit_code == 1, (args, down.output)
        assert "unable to open database file" in down.output, (args, down.output)
        assert "try again shortly" not in down.output  # a client's advice, not an operator's


def test_the_monitor_as_a_service_outlives_a_failing_round(tmp_path):
    """`flask monitor run` (the README's service) on a database it cannot use yet: each round
    says why in one line, and the next round comes (it had exited at the first)."""
    import os
    import subprocess
    import sys

    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'not-migrated.db'}",
           "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "test-secret",
           "MONITOR_INTERVAL_SECONDS": "1"}
    import queue
    import threading

    monitor = subprocess.Popen([flask, "--app", "wsgi", "monitor", "run"], cwd=ROOT, env=env,
                               stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in monitor.stderr],
                     daemon=True).start()
    try:  # two rounds, one line each (a silent monitor fails here, within the deadline)
        said = [lines.get(timeout=30) for _ in range(2)]
        assert monitor.poll() is None, said
    finally:
        monitor.terminate()
        monitor.wait(timeout=30)
    for line in said:
        assert line.startswith("warning: this round failed, the next is in 1 s: "), said
        assert "flask --app wsgi db upgrade" in line


def test_a_column_the_database_lacks_is_known_by_each_of_its_messages(tmp_path):
    """SQLite names a missing column one way in a SELECT, another in an INSERT: both are a
    schema behind this release's, not the code's own bug."""
    from sqlalchemy.exc import DBAPIError

    from db.revision import undefined_object

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER)"))
    for statement in ("SELECT b FROM t", "INSERT INTO t (a, b) VALUES (1, 2)",
                      "SELECT * FROM missing"):
        with pytest.raises(DBAPIError) as refused, engine.begin() as conn:
            conn.execute(text(statement))
        assert undefined_object(refused.value), statement
    engine.dispose()


def test_a_background_round_that_fails_says_why_in_its_line(caplog):
    """The monitor thread inside each worker: a round the database refuses (down, not
    migrated) is one warning line with the reason; only an unknown failure, a bug, carries its
    traceback (each round had logged a whole traceback)."""
    from engine.background import Periodic
    from engine.errors import TransportError
    from tests.servers import wait_for

    failures = iter([TransportError(503, "SchemaNotReady", "run flask --app wsgi db upgrade"),
                     ValueError("a bug")])

    def work():
        raise next(failures, StopIteration())

    with caplog.at_level("WARNING", logger="catalog.monitor"):
        rounds = Periodic("test-rounds", 0.01, work).start()
        try:
            wait_for(lambda: sum("a round failed" in r.getMessage()
                                 for r in caplog.records) >= 2, 10, "two failed rounds")
        finally:
            rounds.stop()
    said = [r for r in caplog.records if "a round failed" in r.getMessage()][:2]
    assert said[0].getMessage() == ("test-rounds: a round failed: run flask --app wsgi db "
                                    "upgrade") and not said[0].exc_info
    assert said[1].getMessage() == "test-rounds: a round failed: a bug" and said[1].exc_info
