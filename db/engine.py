"""Engines and transactions for SQLite (a laptop) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, exc, func, select
from sqlalchemy.orm import Session

# Key of the transaction-level advisory lock that serializes catalog writers on PostgreSQL.
CATALOG_LOCK_KEY = 0x4D43  # "MC"

RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}


def make_engine(url: str) -> Engine:
    """An engine whose transactions behave the same way on both databases."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Session]:
    """One all-or-nothing transaction.

    Writers are serialized: SQLite takes its write lock up front (BEGIN IMMEDIATE);
    PostgreSQL takes a transaction-level advisory lock, after which every statement
    sees every earlier writer's commit. Readers get one consistent snapshot.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE" if write else "DEFERRED")
        elif write:
            conn = conn.execution_options(isolation_level="READ COMMITTED")
        else:
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with Session(bind=conn, expire_on_commit=False, autoflush=True) as session:
            if write and engine.dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(CATALOG_LOCK_KEY)))
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


@contextmanager
def atomic_update(engine: Engine) -> Iterator[Session]:
    """A short transaction for single-statement atomic updates (no catalog lock)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        else:
            conn = conn.execution_options(isolation_level="READ COMMITTED")
        with Session(bind=conn, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


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
    if error.connection_invalidated or (sqlstate or "").startswith(("08", "57P")):
        return "unavailable"
    if isinstance(error, exc.OperationalError) and sqlstate is None and "sqlite" not in str(
        type(error.orig)
    ):
        return "unavailable"
    return None
