"""The read cache: the catalog's configuration and statistics in memory, kept exact.

Every catalog change bumps `catalog_state.version` in its own transaction and, once committed,
the host's `catalog` mark (engine/marks.py). A query serves the configuration from memory
while that mark is unchanged; when it has moved (or the memory is older than RECHECK_SECONDS),
it reads the version, and reloads the configuration at exactly that version if it changed. So a
read never sees a configuration older than the last change acknowledged before it, on any worker.

Statistics change on every generation and are kept apart, under their own `stats` mark: a
recorded generation drops only the statistics, never the configuration.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.schema import CatalogState, Model, ModelStats
from engine import reads
from engine.marks import Generation, Marks

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
    by_model_id: dict[str, Entry] = field(default_factory=dict)  # by key(modelId)
    pks: list[int] = field(default_factory=list)
    active: list[Entry] = field(default_factory=list)
    key: Callable[[str], str] = str  # a modelId as the catalog spells it (its canonical form)
    # What readers derive from this snapshot (the list's indexes), built once on first use.
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    def derived(self, name: object, build: Callable[[Snapshot], object]) -> object:
        """`build(self)`, computed once per snapshot (a racing thread may compute it too; both
        answers are equal, one is kept)."""
        found = self.memo.get(name)
        if found is None:
            found = self.memo.setdefault(name, build(self))
        return found

    def find(self, model_id: str) -> Entry | None:
        return self.by_model_id.get(self.key(model_id))

    @property
    def default(self) -> Entry | None:
        return next((e for e in self.active if e.model.is_default), None)

    def after(self, pk: int) -> list[Entry]:
        return self.entries[bisect_right(self.pks, pk):]


def _load(session: Session, version: int, document: Callable[[Model], dict],
          key: Callable[[str], str]) -> Snapshot:
    rows = session.scalars(select(Model).order_by(Model.id)).all()
    for row in rows:
        session.expunge(row)  # detached and never written: safe to share between threads
    entries = [Entry(row.id, row, document(row)) for row in rows]
    return Snapshot(
        version, entries, {key(e.model.model_id): e for e in entries}, [e.pk for e in entries],
        [e for e in entries if e.model.is_active and not e.model.is_deprecated], key,
    )


class CatalogCache:
    """`document` makes a model's document (less statistics); `stats` a statistics row's part;
    `key` the form of a modelId under which models are found (the catalog's id rule)."""

    def __init__(self, marks: Marks, document: Callable[[Model], dict],
                 stats: Callable[[ModelStats | None], dict],
                 key: Callable[[str], str] = str) -> None:
        self._document, self._stats_of, self._key = document, stats, key
        self._no_stats = stats(None)
        self._config = Generation(marks, "catalog")
        self._stats = Generation(marks, "stats")
        self._latest: Snapshot | None = None
        self._lock = threading.Lock()
        self.reloads = 0

    def snapshot(self, db: Callable[[], Session]) -> Snapshot:
        """The configuration, no older than the last change acknowledged before this read."""
        with reads.cached("catalog"):
            held = self._config.values()
            snapshot = held.get("snapshot")
            if snapshot is None:
                held["snapshot"] = snapshot = self._at_version(db())
            return snapshot

    def latest(self) -> Snapshot | None:
        """The last configuration loaded, however old (None before the first): enough for what
        never changes once a model exists, such as its primary key."""
        return self._latest

    def _at_version(self, session: Session) -> Snapshot:
        version = _version(session)
        current = self._latest
        if current is not None and current.version == version:
            return current
        with self._lock:
            current = self._latest
            if current is not None and current.version == version:
                return current
            loaded = self._reload(session, version)
            if current is None or loaded.version > current.version:
                self._latest = loaded
            return loaded

    def _reload(self, session: Session, version: int) -> Snapshot:
        # Reads may run statement by statement: the rows belong to `version` only if no
        # change committed while they were read, which the version read after them tells.
        while True:
            loaded = _load(session, version, self._document, self._key)
            self.reloads += 1
            after = _version(session)
            if after == version:
                return loaded
            version = after

    def documents(self, db: Callable[[], Session], entries: list[Entry]) -> list[dict]:
        """Documents for these entries, with their statistics merged in."""
        with reads.cached("stats"):
            held = self._stats.values()
            missing = [e.pk for e in entries if e.pk not in held]
            if missing:
                query = select(STATS)
                if len(missing) <= STATS_IN_LIST_LIMIT:
                    query = query.where(STATS.c.model_pk.in_(missing))
                rows = {row.model_pk: self._stats_of(row)
                        for row in db().connection().execute(query)}
                held.update({pk: rows.get(pk, self._no_stats) for pk in missing})
            return [{**e.config, **held[e.pk]} for e in entries]


VERSION = select(CatalogState.version).where(CatalogState.id == 1)
STATS = ModelStats.__table__


def bump_version(db: Session) -> None:
    """Once per transaction (the flag is the session's): readers only need to know that the
    catalog changed. The runtime calls it for every writer's transaction that wrote a catalog
    table (engine/runtime.py), so a handler that forgets it cannot leave a worker's
    configuration at a version that worker already read."""
    if db.info.get("catalog_version_bumped"):
        return
    db.info["catalog_version_bumped"] = True
    db.execute(update(CatalogState).where(CatalogState.id == 1)
               .values(version=CatalogState.version + 1))


def _version(session: Session) -> int:
    # A Core statement on the session's connection, no ORM work.
    return session.connection().execute(VERSION).scalar_one()


def catalog_cache() -> CatalogCache:
    return current_app.extensions["catalog_cache"]
