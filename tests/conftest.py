"""Fixtures: the app on SQLite and on a real PostgreSQL server that the tests start themselves."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from flask import Flask
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import Engine, create_engine, event, text
from werkzeug.routing import Rule

from db.revision import alembic_config
from engine.runtime import call, system
from tests.servers import Gunicorn, PostgresServer
from wsgi import create_app

ROOT = Path(__file__).resolve().parent.parent
DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def marks_folder(tmp_path_factory):
    """The change marks of the tests' databases, out of the host's shared folder (and inherited
    by the servers the tests start)."""
    folder = tmp_path_factory.mktemp("marks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CATALOG_MARKS_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    command.upgrade(alembic_config(f"sqlite:///{path}"), "head")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres) -> str:
    postgres.create_database("catalog_template")
    command.upgrade(alembic_config(postgres.url("catalog_template")), "head")
    return "catalog_template"


@pytest.fixture(scope="session")
def sqlite_seeded_template(sqlite_template, tmp_path_factory) -> Path:
    """The template with the seed models loaded (by `seeds.load`, as `seeded` does): a test
    that asks for `seeded` starts from a copy, and its own load finds nothing to do."""
    import sqlite3

    import seeds

    folder = tmp_path_factory.mktemp("sqlite-seeded")
    path = folder / "seeded.db"
    shutil.copy(sqlite_template, path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSTANCE_PATH", str(folder / "instance"))
        app = create_app({"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "template"})
        with app.app_context():
            seeds.load()
        app.extensions["catalog_db"].dispose()
    with sqlite3.connect(path) as conn:  # all of it in the file itself, none in its WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def fresh_database(kind: str, request, tmp_path: Path, seeded: bool = False) -> str:
    """A migrated database of the given kind for one test: empty, or on SQLite holding the
    seed models already when `seeded` (loading them was a sixth of the quick tests' time;
    the `seeded` fixture's own load then finds nothing to do)."""
    if kind == "sqlite":
        template = request.getfixturevalue("sqlite_seeded_template" if seeded
                                           else "sqlite_template")
        path = tmp_path / "catalog.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    postgres = request.getfixturevalue("postgres")
    template = request.getfixturevalue("postgres_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name, template=template)
    return postgres.url(name)


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    return fresh_database(request.param, request, tmp_path,
                          seeded="seeded" in request.fixturenames)


class CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept for every app the tests make in this process: each app
    has an environment of its own, which compiled every page's templates again (a sixth of the
    quick tests' time). A template is taken from here only while its source is unchanged."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


WERKZEUG_COMPILE_BUILDER = Rule._compile_builder


def shared_url_builders(compile_builder):
    """Werkzeug's URL builders, compiled once for every app the tests make in this process.

    For each URL rule of each new app, werkzeug writes and compiles a Python function that
    builds the rule's URLs (`Rule._compile_builder`): two thirds of `create_app`'s time, and a
    tenth of the quick tests'. The function depends only on the rule's text, its parsed parts
    and the names of its defaults (it reaches the rule's converters through the rule it is
    bound to), so rules that agree on those share one. A rule with a default for one of its
    own variables bakes that default in, through its converter: those are compiled as before.
    """
    built: dict[tuple, object] = {}

    def shared(rule, append_unknown: bool = True):
        defaults = rule.defaults or {}
        if any(dynamic and part in defaults for dynamic, part in rule._trace):
            return compile_builder(rule, append_unknown)
        key = (rule.rule, tuple(rule._trace), tuple(defaults), append_unknown)
        if key not in built:
            built[key] = compile_builder(rule, append_unknown)
        return built[key]

    return shared


@pytest.fixture(scope="session", autouse=True)
def compiled_once():
    """Every app the tests make in this process shares its compiled templates and URL builders
    (the `app` fixture's and those a test makes itself)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Flask, "jinja_options", {"bytecode_cache": CompiledTemplates()})
        patch.setattr(Rule, "_compile_builder", shared_url_builders(WERKZEUG_COMPILE_BUILDER))
        yield


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        # Console accounts sign in in most console tests: scrypt's cost would be most of the
        # quick suite's time. The servers the slow tests start sign in with production's scrypt,
        # the default (checked in test_migrations_and_cli.py).
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    })
    yield app
    app.extensions["catalog_db"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def seeded(app):
    import seeds

    with app.app_context():
        seeds.load()
    settle_fleet(app)
    return app


def settle_fleet(app) -> None:
    """On PostgreSQL, wait until the app's listener has heard every change committed so far.
    It bumps the change marks of each notification it hears, its own process's included (and
    every mark once on connecting: it may have missed changes), at a moment of its own: a test
    that counts marks after a write must not see those bumps land mid-count."""
    from tests.servers import wait_for

    fleet = app.extensions["fleet"]
    fleet.start()
    if not fleet.postgres:
        return
    wait_for(lambda: fleet.listening, 10, "the fleet's listener")
    committed = fleet.committed_ts()
    assert committed is not None, "the fleet's clock could not be read"
    wait_for(lambda: fleet.seen >= committed, 10, f"the fleet's listener to hear ts {committed}")


def run_as_system(app, path: str, args: dict | None = None):
    with app.app_context():
        return call(path, args, identity=system("test"), source="test")


@pytest.fixture
def make_token(app):
    def make(*scopes: str, name: str | None = None) -> str:
        args = {"name": name or f"token-{uuid.uuid4().hex[:8]}", "scopes": list(scopes)}
        return run_as_system(app, "access:createToken", args)["token"]

    return make


class Api:
    """A caller of the HTTP API, as a client would be."""

    def __init__(self, client, token: str | None = None):
        self.client, self.token = client, token

    def post(self, endpoint: str, path: str, args=None, token: str | None = None, **body):
        token = token or self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        payload = {"path": path, "args": {} if args is None else args, "format": "json", **body}
        return self.client.post(f"/api/{endpoint}", json=payload, headers=headers)

    def query(self, path: str, args=None, **kw) -> dict:
        response = self.post("query", path, args, **kw)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def mutation(self, path: str, args=None, **kw) -> dict:
        response = self.post("mutation", path, args, **kw)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def value(self, endpoint: str, path: str, args=None, **kw):
        body = getattr(self, endpoint)(path, args, **kw)
        assert body["status"] == "success", body
        return body["value"]


@pytest.fixture
def api(client, make_token) -> Api:
    return Api(client, make_token("catalog:write", "stats:write"))


def within(seconds: float, fn, *args):
    """fn(*args), or a failure once `seconds` have passed (the client's calls block)."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(fn, *args).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


def within_one_window(attempt, margin: float = 3.0):
    """Run `attempt` inside one minute (the limits' window): it starts at least `margin`
    seconds before the next boundary. If a boundary passed while it ran anyway, the hits made
    after it count in the new minute: the next attempt starts in the minute after that."""
    for _ in range(2):
        left = 60 - time.time() % 60
        if left < margin:
            time.sleep(left + 0.01)  # waits for the clock, decides nothing
        window = int(time.time() // 60)
        outcome = attempt()
        if int(time.time() // 60) == window:
            return outcome
        time.sleep(60 - time.time() % 60 + 0.01)
    raise AssertionError("two minute boundaries in a row")


def token_lookups():
    """A list that collects every statement that reads service tokens, and how to stop."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args):
        if "api_tokens" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    return seen, lambda: event.remove(Engine, "before_cursor_execute", note)


def single_lookups(statements: list[str]) -> list[str]:
    """The lookups of one token each, among the statements `token_lookups` collected."""
    return [statement for statement in statements if "api_tokens.prefix =" in statement]


def catalog_fingerprint(app) -> dict:
    """Everything a change could touch, to prove that a refused request changed nothing."""
    engine = create_engine(app.config["DATABASE_URL"])
    with engine.connect() as conn:
        out = {
            table: conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()
            for table in ("models", "model_stats", "model_history", "catalog_state")
        }
    engine.dispose()
    return out


@pytest.fixture
def errors_logged():
    """Every record at ERROR or above, from the app, Flask, werkzeug or anywhere."""
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Collect(logging.ERROR)
    loggers = [logging.getLogger(name) for name in ("", "catalog", "werkzeug")]
    for logger in loggers:
        logger.addHandler(handler)
    yield seen
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def live_server(app):
    """The app served in this process by a real (werkzeug) server: sockets, no fork."""
    from tests.sync_client import LiveServer

    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def gunicorn(tmp_path):
    """Start the app under gunicorn with the production settings; stopped after the test."""
    started: list[Gunicorn] = []

    def start(database_url: str, workers: int = 2, **env) -> Gunicorn:
        server = Gunicorn(ROOT, database_url, tmp_path / f"instance{len(started)}",
                          workers=workers, env=env)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()



CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright, one for the session (every browser test module
    shares it: a second Playwright in the same process cannot start)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        yield browser
        browser.close()


# Fixtures that start a server, Node or Chromium: a test that uses one is marked `slow`.
SLOW_FIXTURES = {"gunicorn", "browser", "postgres", "postgres_template"}


def pytest_collection_modifyitems(items):
    """`slow` is derived from what a test starts, so it cannot be forgotten: gunicorn, Node,
    Chromium, or a PostgreSQL server (every `postgresql` case of a database fixture). The
    tests marked `waits` go first."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        on_postgres = "postgresql" in getattr(getattr(item, "callspec", None), "id", "")
        if fixtures & SLOW_FIXTURES or on_postgres or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    # The tests that wait for real time first: run in parallel (`make quick`), the others fill
    # their waits, where in file order the last of them (test_quote, test_sync) waited alone.
    items.sort(key=lambda item: item.get_closest_marker("waits") is None)
