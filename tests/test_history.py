"""History: one entry per change from every path, field by field; revert; stale revisions."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text

from tests.conftest import Api, run_as_system
from tests.test_catalog import FLASH, RAY, VEO, error

PAGE = {"numItems": 50, "cursor": None}


def history(api, model_id, page=PAGE):
    return api.value("query", "history:getModelHistory",
                     {"modelId": model_id, "paginationOpts": page})


def test_every_change_writes_one_entry_with_who_why_and_what(seeded, api):
    api.value("mutation", "models:updateModel", {
        "modelId": RAY, "patch": {"costPerSecond": 0.2, "tags": ["x"]}, "reason": "new price"})
    api.value("mutation", "models:updateModelStats",
              {"modelId": RAY, "generationTime": 1, "success": True})
    entries = history(api, RAY)["page"]
    assert [e["action"] for e in entries] == ["update", "create"]
    latest = entries[0]
    assert latest["revision"] == 2 and latest["reason"] == "new price"
    assert latest["actor"].startswith("token:") and latest["source"] == "http"
    assert {c["field"]: (c["old"], c["new"]) for c in latest["changes"]} == {
        "costPerSecond": (0.18, 0.2), "tags": (["budget", "720p", "video"], ["x"])}
    assert latest["snapshot"]["costPerSecond"] == 0.2
    assert entries[1]["source"] == "seed" and entries[1]["actor"] == "seed"


def test_default_switch_is_recorded_on_both_models(seeded, api):
    api.value("mutation", "models:setDefaultModel", {"modelId": VEO})
    assert history(api, VEO)["page"][0]["action"] == "set-default"
    assert history(api, FLASH)["page"][0]["action"] == "unset-default"


def test_no_op_update_writes_nothing(seeded, api):
    before = history(api, RAY)["page"]
    model = api.value("mutation", "models:updateModel",
                      {"modelId": RAY, "patch": {"costPerSecond": 0.18}})
    assert model["revision"] == 1 and history(api, RAY)["page"] == before


def test_history_pages_newest_first(seeded, api):
    for price in (0.2, 0.21, 0.22):
        api.value("mutation", "models:updateModel",
                  {"modelId": RAY, "patch": {"costPerSecond": price}})
    first = history(api, RAY, {"numItems": 2, "cursor": None})
    assert [e["revision"] for e in first["page"]] == [4, 3] and not first["isDone"]
    rest = history(api, RAY, {"numItems": 2, "cursor": first["continueCursor"]})
    assert [e["revision"] for e in rest["page"]] == [2, 1] and rest["isDone"]


def test_history_needs_a_caller(seeded, client):
    response = Api(client).post("query", "history:getModelHistory",
                                {"modelId": RAY, "paginationOpts": PAGE})
    assert response.status_code == 401


def test_revert_brings_back_a_revision_as_a_new_change(seeded, api):
    api.value("mutation", "models:updateModel", {
        "modelId": RAY, "patch": {"costPerSecond": 0.3, "supportedDurations": [5, 9, 12]}})
    reverted = api.value("mutation", "history:revertModel",
                         {"modelId": RAY, "revision": 1, "reason": "mistake"})
    assert reverted["costPerSecond"] == 0.18 and reverted["supportedDurations"] == [5, 9]
    assert reverted["revision"] == 3
    latest = history(api, RAY)["page"][0]
    assert latest["action"] == "revert" and latest["reason"] == "mistake"
    missing = api.mutation("history:revertModel", {"modelId": RAY, "revision": 99})
    assert error(missing) == {"code": "NOT_FOUND", "field": "revision"}
    run_as_system(seeded, "models:lockModel", {"modelId": RAY})
    assert error(api.mutation("history:revertModel",
                              {"modelId": RAY, "revision": 1}))["code"] == "LOCKED"


def test_a_dry_run_of_a_revert_answers_as_the_revert_would_and_writes_nothing(seeded, api):
    """`dryRun`: the model as the revert would leave it, or the refusal it would meet (here
    the default switched off while others are on, which only the whole change can see), and
    no row, history entry or held answer changes."""
    api.value("mutation", "models:updateModel", {"modelId": RAY,
                                                 "patch": {"costPerSecond": 0.3}})
    before = api.value("query", "models:getModelById", {"modelId": RAY})
    entries = history(api, RAY)["page"]
    dry = api.value("mutation", "history:revertModel",
                    {"modelId": RAY, "revision": 1, "dryRun": True})
    assert dry["costPerSecond"] == 0.18 and dry["revision"] == 3
    assert api.value("query", "models:getModelById", {"modelId": RAY}) == before
    assert history(api, RAY)["page"] == entries
    api.value("mutation", "models:setDefaultModel", {"modelId": VEO})
    off = api.value("mutation", "models:updateModel",
                    {"modelId": FLASH, "patch": {"isActive": False}})["revision"]
    api.value("mutation", "models:updateModel", {"modelId": FLASH, "patch": {"isActive": True}})
    api.value("mutation", "models:setDefaultModel", {"modelId": FLASH})
    refused = api.mutation("history:revertModel",
                           {"modelId": FLASH, "revision": off, "dryRun": True})
    assert error(refused) == {"code": "DEFAULT_REQUIRED", "field": "modelId"}
    assert refused == api.mutation("history:revertModel", {"modelId": FLASH, "revision": off})


def saved_under_older_rules(app, model_id: str, revision: int, **values) -> None:
    """Rewrite a revision's snapshot with `values`, as rules older than today's let it be."""
    engine = create_engine(app.config["DATABASE_URL"])
    with engine.begin() as conn:
        where = "WHERE model_id = :m AND revision = :r"
        snapshot = conn.execute(text(f"SELECT snapshot FROM model_history {where}"),
                                {"m": model_id, "r": revision}).scalar_one()
        if isinstance(snapshot, str):  # SQLite's JSON comes as text
            snapshot = json.loads(snapshot)
        conn.execute(text(f"UPDATE model_history SET snapshot = :s {where}"),
                     {"s": json.dumps({**snapshot, **values}), "m": model_id, "r": revision})
    engine.dispose()


def test_a_revision_saved_under_older_rules_is_refused_not_restored(seeded, api):
    """A revert applies an edit's checks: a value today's rules refuse (here a name longer
    than they allow, as a revision saved before the rule was) is named, and nothing changes."""
    saved_under_older_rules(seeded, RAY, 1, name="n" * 300)
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {"name": "Ray"}})
    body = api.mutation("history:revertModel", {"modelId": RAY, "revision": 1})
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": "name"}
    assert body["errorMessage"] == ("name must be at most 200 characters, got 300: the "
                                    "revision holds a value the rules no longer allow")
    model = api.value("query", "models:getModelById", {"modelId": RAY})
    assert model["name"] == "Ray" and model["revision"] == 2
    assert [e["revision"] for e in history(api, RAY)["page"]] == [2, 1]


def test_a_value_a_revert_keeps_is_kept_as_an_edit_keeps_it(seeded, api):
    """A longest duration saved under older rules, still the model's: undoing a later edit of
    another field is not refused for it, as an edit of another field is not."""
    saved_under_older_rules(seeded, RAY, 1, maxDuration=5000)
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE models SET max_duration = 5000 WHERE model_id = :m"),
                     {"m": RAY})
        conn.execute(text("UPDATE catalog_state SET version = version + 1"))
    engine.dispose()
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {"tags": ["x"]}})
    reverted = api.value("mutation", "history:revertModel", {"modelId": RAY, "revision": 1})
    assert reverted["maxDuration"] == 5000 and reverted["tags"] == ["budget", "720p", "video"]


def test_history_is_written_in_the_same_transaction(seeded, api):
    """A change refused half-way leaves neither the change nor its history."""
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM model_history")).scalar()
    # the patch is valid field by field, but the default cannot be switched off
    body = api.mutation("models:updateModel", {
        "modelId": FLASH, "patch": {"name": "Renamed", "isActive": False}})
    assert error(body)["code"] == "DEFAULT_REQUIRED"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model_history")).scalar() == count
        name = conn.execute(text("SELECT name FROM models WHERE model_id = :m"),
                            {"m": FLASH}).scalar()
    engine.dispose()
    assert name == "Luma Ray Flash 2-540p"
