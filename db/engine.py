"""Engines and transactions for SQLite (a laptop) and PostgreSQL (production)."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Table, create_engine, event, exc, func, select, text
from sqlalchemy.orm import Session

T = TypeVar("T")

# Key of the transaction-level advisory lock that serializes catalog writers on PostgreSQL.
CATALOG_LOCK_KEY = 0x4D43  # "MC"
# Key of the one that serializes migrations (every host's unit runs `flask db upgrade`).
MIGRATION_LOCK_KEY = 0x4D4344  # "MCD"

RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}

# The table a writing statement writes, as every dialect here renders it; a statement that
# begins with WITH may write in each of its parts (PostgreSQL's data-modifying CTEs).
WRITE = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)
WITH = re.compile(r'\s*WITH\b', re.IGNORECASE)
WRITES = re.compile(r'\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)
_written: ContextVar[set[str] | None] = ContextVar("written", default=None)


@contextmanager
def noting_writes() -> Iterator[set[str]]:
    """The names of the tables that statements run in this context write (ORM, Core or text)."""
    tables: set[str] = set()
    token = _written.set(tables)
    try:
        yield tables
    finally:
        _written.reset(token)


@lru_cache(maxsize=256)
def _written_by_with(statement: str) -> frozenset[str]:
    """The tables a WITH statement writes (such statements are few and long: read once)."""
    return frozenset(name.lower() for name in WRITES.findall(statement))


def _note_write(conn, cursor, statement: str, parameters, context, executemany) -> None:
    tables = _written.get()
    if tables is not None:
        if WITH.match(statement):
            tables.update(_written_by_with(statement))
            return
        found = WRITE.match(statement)
        if found:
            tables.add(found.group(1).lower())


def _watch_writes(engine: Engine) -> Engine:
    event.listen(engine, "before_cursor_execute", _note_write)
    return engine



def make_engine(url: str) -> Engine:
    """An engine whose transactions behave the same way on both databases."""
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
        if url not in ("sqlite://", "sqlite:///:memory:"):  # a file both pools share
            # Single statements get their own pool in autocommit, as on PostgreSQL: a checkout
            # then switches no isolation level, and so runs no `PRAGMA read_uncommitted`,
            # which expires every statement SQLite has prepared on that connection.
            _AUTOCOMMIT[engine] = _sqlite_engine(url, autocommit=True)
        return engine
    engine = _postgres_engine(url)
    # Reads and single statements get their own pool, whose connections stay in autocommit:
    # a checkout then costs no isolation-level switch there and back.
    _AUTOCOMMIT[engine] = _postgres_engine(url, isolation_level="AUTOCOMMIT")
    return engine


class SqliteCommits:
    """Whether anything was committed to a SQLite file by another connection: SQLite's own
    count of them (`PRAGMA data_version`), read on a connection of this process's own.

    A value answered is only ever compared with another from the same object: it differs
    when a commit happened between the two reads (or the connection was opened anew). None
    when SQLite cannot answer."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._opened = 0  # connections opened: a new one counts commits afresh
        self._inherited: list[sqlite3.Connection] = []  # never closed in a forked child
        self._closed = False

    def __call__(self) -> int | None:
        with self._lock:
            if self._closed:
                return None
            try:
                if self._conn is None or self._pid != os.getpid():  # first, or after a fork
                    if self._conn is not None:
                        self._inherited.append(self._conn)
                    self._conn = sqlite3.connect(self._path, check_same_thread=False,
                                                 isolation_level=None, timeout=1)
                    self._pid, self._opened = os.getpid(), self._opened + 1
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                self._conn = None
                return None
            return self._opened << 48 | version

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def sqlite_file(engine: Engine) -> str | None:
    """The file of a SQLite engine named by a plain path; None for memory, a URI filename or
    query options (which another connection might not open alike), or another database."""
    url = engine.url
    if (engine.dialect.name != "sqlite" or url.database in (None, "", ":memory:")
            or url.database.startswith("file:") or url.query):
        return None
    return url.database


def _sqlite_engine(url: str, autocommit: bool = False) -> Engine:
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False},
                           **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    if not autocommit:
        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:
            options = conn.get_execution_options()
            if options.get("isolation_level") != "AUTOCOMMIT":
                conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}")

    return _watch_writes(engine)


# A connection whose server vanished without a word (a cut network, a host gone) is closed by
# the kernel: when data it sent is not acknowledged within TCP_USER_TIMEOUT ms (a statement
# waiting for an answer), or when idle keepalives go unanswered (about 25 s). The waiting
# request then fails, and is answered 503, instead of holding its thread for good.
TCP_USER_TIMEOUT_MS = 15_000
# libpq's options for every connection to PostgreSQL: the pools' and the fleet's listener's.
CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10,
                "keepalives_interval": 5, "keepalives_count": 3,
                "tcp_user_timeout": TCP_USER_TIMEOUT_MS}


def _postgres_engine(url: str, **options) -> Engine:
    engine = create_engine(url, pool_size=5, max_overflow=10, pool_timeout=10,
                           connect_args=CONNECT_ARGS, **options)
    _ping_when_idle(engine)
    return _watch_writes(engine)


_AUTOCOMMIT: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def engines(engine: Engine) -> list[Engine]:
    """The engine and, on PostgreSQL, its autocommit twin: every pool it owns."""
    twin = _AUTOCOMMIT.get(engine)
    return [engine] if twin is None else [engine, twin]


def dispose(engine: Engine) -> None:
    for each in engines(engine):
        each.dispose()


@contextmanager
def autocommit_connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose statements commit one by one: reads and single statements."""
    twin = _AUTOCOMMIT.get(engine)
    if twin is not None:
        with twin.connect() as conn:
            yield conn
        return
    with engine.connect() as conn:  # SQLite in memory: one pool
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection that sat idle, instead of pinging on every checkout.

    Under load connections are never idle, so requests pay no extra round trip; after the
    server restarts, the first failure invalidates the whole pool (SQLAlchemy's own disconnect
    handling) and idle connections are replaced before use.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, proxy) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_conn.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as error:  # noqa: BLE001 - any failure means: reconnect
            raise exc.DisconnectionError() from error


# Many new rows of one of these tables in one flush get their keys first (`number_new_rows`).
NUMBERED = ("models", "model_history")
BULK = 20


def reserve_ids(session: Session, table: Table, count: int) -> list[int] | None:
    """`count` fresh primary keys of `table`, in one statement: from its sequence on
    PostgreSQL; after the largest key on SQLite, whose writers hold the database's write lock
    (BEGIN IMMEDIATE) for their whole transaction. None when the table has no sequence."""
    if session.get_bind().dialect.name == "postgresql":
        keys = session.execute(text(
            "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": count}).scalars().all()
        return None if not keys or keys[0] is None else sorted(keys)
    start = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(start + 1, start + 1 + count))


def number_new_rows(session: Session, flush_context=None, instances=None) -> None:
    """Before a flush that inserts many rows of a numbered table (an import, a catalog file, a
    bulk change): give them their keys in one statement, in the order they were added, so that
    they are inserted in one executemany, without fetching each new key back (SQLite answers
    RETURNING row by row, and psycopg spends seconds parsing a thousand-row VALUES list)."""
    pending: dict[str, list] = {}
    for obj in session.new:
        table = getattr(obj, "__table__", None)
        if table is not None and table.name in NUMBERED and obj.id is None:
            pending.setdefault(table.name, []).append(obj)
    for rows in pending.values():
        if len(rows) < BULK:
            continue
        keys = reserve_ids(session, rows[0].__table__, len(rows))
        for row, key in zip(rows, keys or (), strict=False):
            row.id = key


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Session]:
    """One all-or-nothing transaction.

    Writers are serialized: SQLite takes its write lock up front (BEGIN IMMEDIATE);
    PostgreSQL takes a transaction-level advisory lock, after which every statement
    sees every earlier writer's commit.
    """
    postgres_read = not write and engine.dialect.name == "postgresql"
    # PostgreSQL reads run statement by statement: no BEGIN/COMMIT round trips. The catalog
    # configuration is still read at one exact version (engine/cache.py).
    with (autocommit_connection(engine) if postgres_read else engine.connect()) as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE" if write else "DEFERRED")
        elif write:
            conn = conn.execution_options(isolation_level="READ COMMITTED")
        with Session(bind=conn, expire_on_commit=False, autoflush=True) as session:
            if write:
                event.listen(session, "before_flush", number_new_rows)
            if write and engine.dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(CATALOG_LOCK_KEY)))
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


@contextmanager
def read(engine: Engine) -> Iterator[Session]:
    """A read-only session outside any function (sign-in, token checks)."""
    with transaction(engine, write=False) as session:
        yield session


@contextmanager
def single_statement(engine: Engine) -> Iterator[Connection]:
    """For a handler that runs exactly one statement: atomic by itself, in autocommit mode,
    so it costs one round trip and takes no catalog lock (and needs no ORM session)."""
    with autocommit_connection(engine) as conn:
        yield conn


@contextmanager
def together(conn: Connection) -> Iterator[Connection]:
    """Several statements on an autocommit connection as one transaction (SQLite takes its
    write lock at once, as every writer here does). On PostgreSQL, prefer one statement.
    BEGIN and COMMIT go to the driver directly: they write nothing, and SQLAlchemy's
    execution around each costs as much as SQLite's work for a small write."""
    driver = conn.connection.driver_connection
    driver.execute("BEGIN IMMEDIATE" if conn.dialect.name == "sqlite" else "BEGIN")
    try:
        yield conn
    except BaseException:
        try:
            driver.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection is gone: nothing was committed
            conn.invalidate()
        raise
    driver.execute("COMMIT")


def read_again_if_dropped(read: Callable[[], T]) -> T:
    """A read, asked again once on a fresh connection when the pooled one it took had been
    dropped by the database (a restart, an ended session): the pool drops every connection
    of that age then. For reads only: a write cut off at its commit may have committed."""
    try:
        return read()
    except exc.DBAPIError as error:
        if not dropped(error):
            raise
    return read()


def reason(error: BaseException) -> str:
    """The driver's first line, what an operator acts on ('password authentication failed for
    user ...', 'no such table: models'), without SQLAlchemy's statement and parameters."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def dropped(error: exc.DBAPIError) -> bool:
    """Whether an error says the connection was gone (SQLAlchemy then invalidates its pool)."""
    return bool(error.connection_invalidated)


# SQLite's file is gone, unreadable or failing: the database is down, as when a server is.
SQLITE_UNAVAILABLE = ("unable to open database file", "disk i/o error")


def classify_error(error: BaseException) -> str | None:
    """'retry' for a conflict worth retrying, 'unavailable' when the database is down."""
    if not isinstance(error, exc.DBAPIError):
        return None
    message = str(error.orig).lower() if error.orig is not None else ""
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return "retry"
    if "database is locked" in message or "database is busy" in message:
        return "retry"
    if dropped(error) or (sqlstate or "").startswith(("08", "57P")):
        return "unavailable"
    if isinstance(error.orig, sqlite3.Error) and any(c in message for c in SQLITE_UNAVAILABLE):
        return "unavailable"
    if isinstance(error, exc.OperationalError) and sqlstate is None and "sqlite" not in str(
        type(error.orig)
    ):
        return "unavailable"
    return None
