"""What a mutation changed is derived from the statements it ran, not remembered by handlers."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from db.schema import Base, Model
from engine.runtime import call, mutation, system

MARKS = {"catalog", "stats", "access"}


@mutation({}, scope="catalog:write", internal=True)
def renameBehindTheRecord(ctx) -> None:
    """A handler that writes with plain SQL and declares nothing (what a forgetful one does)."""
    ctx.db.execute(text("UPDATE models SET name = 'Renamed' WHERE model_id = 'google/veo-3'"))


@mutation({}, scope="catalog:write", internal=True)
def renameInTheSession(ctx) -> None:
    """The same through the ORM: the session writes it only when it flushes."""
    ctx.db.execute(select(Model).where(Model.model_id == "google/veo-3")).scalar_one().name = (
        "Renamed")


def test_every_table_names_the_mark_its_writes_bump():
    """Declared, every one: a mark, or None for a table no cache reads."""
    assert {t.name: "mark" in t.info and t.info["mark"] in MARKS | {None}
            for t in Base.metadata.sorted_tables} == {
        t.name: True for t in Base.metadata.sorted_tables}


@pytest.mark.parametrize("how", ["renameBehindTheRecord", "renameInTheSession"])
def test_a_write_bumps_its_tables_mark_without_the_handler_saying_so(seeded, how):
    """And the catalog's version: a worker that had read the catalog at that version kept it
    (its mark moved, but the version it then read back had not)."""
    marks = seeded.extensions["catalog_marks"]
    with seeded.app_context():
        assert call("models:getModelById", {"modelId": "google/veo-3"}, identity=system("test"),
                    source="test")["name"] == "Google Veo-3"  # read at this version
        before = {slot: marks.read(slot) for slot in MARKS}
        call(f"test_changes_derived:{how}", {}, identity=system("test"), source="test")
        after = {slot: marks.read(slot) for slot in MARKS}
        # The next read on this (or any) worker sees the write at once.
        model = call("models:getModelById", {"modelId": "google/veo-3"},
                     identity=system("test"), source="test")
    assert after["catalog"] > before["catalog"]
    assert (after["stats"], after["access"]) == (before["stats"], before["access"])
    assert model["name"] == "Renamed"


def test_a_dry_run_bumps_nothing(seeded, api):
    marks = seeded.extensions["catalog_marks"]
    exported = api.value("query", "catalog:exportCatalog", {})
    exported["models"][0]["name"] = "Planned only"
    before = marks.read("catalog")
    api.value("mutation", "catalog:planCatalog", {"catalog": exported})
    assert marks.read("catalog") == before
