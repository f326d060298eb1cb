"""The read cache: the catalog's configuration in memory, keyed by the catalog version.

Every catalog change bumps `catalog_state.version` in its own transaction. A query reads that
version first; when it matches, the configuration comes from memory, and otherwise it is
reloaded at exactly that version. So a read never sees a configuration older than the last
commit before it, on any worker. Statistics change on every generation and are not cached: they
are read live and merged in, so recording a generation never throws the configuration away.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.schema import CatalogState, Model, ModelStats
from functions.documents import config_document, stats_of

# Above this many models, a page's statistics are read in one pass over the table.
STATS_IN_LIST_LIMIT = 500


@dataclass(frozen=True)
class Entry:
    """One model, frozen at a catalog version: its row (read-only) and its document part."""

    pk: int
    model: Model
    config: dict  # the document without statistics


@dataclass(frozen=True)
class Snapshot:
    version: int
    entries: list[Entry]  # in creation order (pk)
    by_model_id: dict[str, Entry] = field(default_factory=dict)
    pks: list[int] = field(default_factory=list)
    active: list[Entry] = field(default_factory=list)

    def find(self, model_id: str) -> Entry | None:
        return self.by_model_id.get(model_id)

    @property
    def default(self) -> Entry | None:
        return next((e for e in self.active if e.model.is_default), None)

    def after(self, pk: int) -> list[Entry]:
        return self.entries[bisect_right(self.pks, pk):]


def _load(session: Session, version: int) -> Snapshot:
    rows = session.scalars(select(Model).order_by(Model.id)).all()
    for row in rows:
        session.expunge(row)  # detached and never written: safe to share between threads
    entries = [Entry(row.id, row, config_document(row)) for row in rows]
    return Snapshot(
        version, entries, {e.model.model_id: e for e in entries}, [e.pk for e in entries],
        [e for e in entries if e.model.is_active and not e.model.is_deprecated],
    )


class CatalogCache:
    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self.reloads = 0

    def snapshot(self, session: Session) -> Snapshot:
        """The configuration at the catalog's current version (never older than this read)."""
        version = _version(session)
        current = self._snapshot
        if current is not None and current.version == version:
            return current
        with self._lock:
            current = self._snapshot
            if current is not None and current.version == version:
                return current
            loaded = self._reload(session, version)
            if current is None or loaded.version > current.version:
                self._snapshot = loaded
            return loaded

    def _reload(self, session: Session, version: int) -> Snapshot:
        # Reads may run statement by statement: the rows belong to `version` only if no
        # change committed while they were read, which the version read after them tells.
        while True:
            loaded = _load(session, version)
            self.reloads += 1
            after = _version(session)
            if after == version:
                return loaded
            version = after


VERSION = select(CatalogState.version).where(CatalogState.id == 1)
STATS = ModelStats.__table__


def _version(session: Session) -> int:
    # On every query's path: a Core statement on the session's connection, no ORM work.
    return session.connection().execute(VERSION).scalar_one()


def catalog_cache() -> CatalogCache:
    cache = current_app.extensions.get("catalog_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("catalog_cache", CatalogCache())
    return cache


def with_stats(session: Session, entries: list[Entry]) -> list[dict]:
    """Documents for these entries, with their live statistics merged in."""
    if not entries:
        return []
    query = select(STATS)
    if len(entries) <= STATS_IN_LIST_LIMIT:
        query = query.where(STATS.c.model_pk.in_([e.pk for e in entries]))
    stats = {row.model_pk: row for row in session.connection().execute(query)}
    return [{**e.config, **stats_of(stats.get(e.pk))} for e in entries]
