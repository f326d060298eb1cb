"""Alembic environment: the URL comes from the app (db/revision.py), the schema from db.schema."""

from alembic import context

from db.engine import MIGRATION_LOCK_KEY, make_engine
from db.schema import Base

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    if connection.dialect.name == "sqlite":
        # A batch migration copies a table, drops the old one and renames the copy. With
        # foreign keys on, dropping `models` would cascade into its history and statistics
        # (SQLite's documented procedure: keys off, outside any transaction, then check them).
        # On the driver's connection, before SQLAlchemy begins: a PRAGMA in a transaction is
        # a no-op.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        # Its write lock from the transaction's start: a second upgrade waits for the first
        # (busy timeout) instead of failing "database is locked" when both read, then write.
        connection = connection.execution_options(sqlite_begin="IMMEDIATE")
    applied = config.attributes.get("applied")  # cli/migrations.py: what to tell the operator
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # SQLite has transactional DDL, but alembic's dialect says not and commits after each
        # migration: an upgrade waiting for the write lock took it between two, and upgraded
        # a half-migrated database under the first. One transaction for the whole run.
        transactional_ddl=True,
        compare_type=True,
        on_version_apply=None if applied is None else (
            lambda *, step, **_: applied.append(step)),
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Before alembic reads the version (or creates its table): a second upgrade waits
            # for the first to commit, then finds nothing to do. Released at commit.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
    if connection.dialect.name == "sqlite":  # (committed: the run was one transaction)
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


run_migrations_online()
