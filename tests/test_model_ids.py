"""Model ids: case-insensitive and canonical (stored and answered in lower case), one grammar."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from db.revision import alembic_config
from tests.conftest import catalog_fingerprint, fresh_database
from tests.test_catalog import NEW_MODEL, RAY, error

PRICE_MAP_IDS = [
    "openai/gpt-4o",
    "bedrock/us-east-1/anthropic.claude-3-5-sonnet-20240620-v1:0",
    "openrouter/anthropic/claude-3-opus",
    "ollama/llama2:13b",
    "fal_ai/fal-ai/flux/dev",
    "vertex_ai/gemini-1.5-pro-002",
    "vertex_ai/claude-3-opus@20240229",
    "gpt-4o",
    "ft:gpt-4o-mini-2024-07-18",
    "cloudflare/@cf/meta/llama-3.1-8b-instruct",
    "openrouter/~openai/gpt-latest",
]
BROKEN_IDS = ["luma/ray-2-720p.", "luma/.ray", "luma/ray..2", "luma//ray", "/luma", "luma/",
              "luma/ray-2-720p/", "-luma/ray", "luma/ray 2", "bedrock/*/x", "lüma/ray",
              "@cf/llama", "~openai/gpt", "cloudflare/@@cf/x", "openrouter/~~x", "luma/@.ray",
              "luma/ray~2", "luma/@/ray"]


@pytest.mark.parametrize("model_id", PRICE_MAP_IDS)
def test_price_map_ids_are_valid(seeded, api, model_id):
    created = api.value("mutation", "models:createModel", {**NEW_MODEL, "modelId": model_id})
    assert created["modelId"] == model_id
    assert api.value("query", "models:getModelById", {"modelId": model_id})["_id"] == \
        created["_id"]


@pytest.mark.parametrize("model_id", BROKEN_IDS)
def test_ids_that_break_the_grammar_are_refused(seeded, api, model_id):
    before = catalog_fingerprint(seeded)
    body = api.mutation("models:createModel", {**NEW_MODEL, "modelId": model_id})
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": "modelId"}
    copy = api.mutation("models:duplicateModel", {"modelId": RAY, "newModelId": model_id})
    assert error(copy) == {"code": "INVALID_ARGUMENT", "field": "newModelId"}
    assert catalog_fingerprint(seeded) == before


@pytest.mark.parametrize("variant", ["Luma/Ray-2-720p", "LUMA/RAY-2-720P"])
def test_an_id_differing_only_by_case_is_the_same_model(seeded, api, variant):
    before = catalog_fingerprint(seeded)
    body = api.mutation("models:createModel", {**NEW_MODEL, "modelId": variant})
    assert error(body) == {"code": "DUPLICATE", "field": "modelId"}
    assert RAY in body["errorMessage"]
    copy = api.mutation("models:duplicateModel", {"modelId": "google/veo-3",
                                                  "newModelId": variant})
    assert error(copy) == {"code": "DUPLICATE", "field": "newModelId"}
    assert catalog_fingerprint(seeded) == before


def test_ids_are_stored_and_answered_in_lower_case(seeded, api):
    created = api.value("mutation", "models:createModel", {**NEW_MODEL, "modelId": "Acme/Clip-9"})
    assert created["modelId"] == "acme/clip-9"
    copy = api.value("mutation", "models:duplicateModel",
                     {"modelId": "ACME/CLIP-9", "newModelId": "Acme/Clip-10"})
    assert copy["modelId"] == "acme/clip-10"
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT model_id FROM models ORDER BY id")).scalars().all()
    engine.dispose()
    assert stored == [m.lower() for m in stored]


def test_every_lookup_is_case_insensitive(seeded, api):
    upper = "LUMA/Ray-2-720P"
    assert api.value("query", "models:getModelById", {"modelId": upper})["modelId"] == RAY
    assert api.value("query", "models:getModelById", {"modelId": RAY + "."}) is None
    assert api.value("query", "models:validateModelCapabilities",
                     {"modelId": upper, "duration": 5, "quality": "high"}) == {"valid": True}
    quote = api.value("query", "pricing:getCreditCost",
                      {"modelId": upper, "duration": 5, "quality": "standard"})
    assert quote["modelId"] == RAY
    assert api.value("query", "models:getModelHealth", {"modelId": upper})["modelId"] == RAY
    assert api.value("query", "pricing:quote",
                     {"modelId": upper, "usage": {"seconds": 5}})["modelId"] == RAY
    stats = api.value("mutation", "models:updateModelStats",
                      {"modelId": upper, "generationTime": 2, "success": True})
    assert stats["modelId"] == RAY and stats["totalGenerations"] == 1
    changed = api.value("mutation", "models:updateModel",
                        {"modelId": upper, "patch": {"name": "Ray"}})
    assert changed["modelId"] == RAY and changed["name"] == "Ray"
    history = api.value("query", "history:getModelHistory",
                        {"modelId": upper, "paginationOpts": {"numItems": 5, "cursor": None}})
    assert [e["modelId"] for e in history["page"]] == [RAY, RAY]
    api.value("mutation", "history:revertModel", {"modelId": upper, "revision": 1})
    result = api.value("mutation", "models:setModelsActive",
                       {"isActive": False, "modelIds": [upper, RAY]})
    assert result["changed"] == [RAY]
    for path in ("models:deleteModel", "models:restoreModel", "models:setDefaultModel",
                 "models:lockModel", "models:unlockModel"):
        assert api.value("mutation", path, {"modelId": upper})["modelId"] == RAY, path
    assert api.value("query", "models:getDefaultModel")["modelId"] == RAY


def test_catalog_files_name_a_model_once_whatever_the_case(seeded, api):
    catalog = api.value("query", "catalog:exportCatalog")
    ray = next(m for m in catalog["models"] if m["modelId"] == RAY)
    ray.update(modelId="Luma/Ray-2-720p", costPerSecond=0.2)
    plan = api.value("mutation", "catalog:applyCatalog", {"catalog": catalog})
    assert plan["created"] == [] and [c["modelId"] for c in plan["changed"]] == [RAY]
    twice = {**catalog, "models": [*catalog["models"], dict(ray, modelId="LUMA/RAY-2-720P")]}
    body = api.mutation("catalog:planCatalog", {"catalog": twice})
    assert error(body)["code"] == "INVALID_ARGUMENT"
    assert body["errorData"]["errors"][0]["message"] == f"{RAY} appears more than once"
    twice["models"][-1]["costPerSecond"] = -1  # an entry with errors of its own is still a twin
    body = api.mutation("catalog:planCatalog", {"catalog": twice})
    assert {e["message"] for e in body["errorData"]["errors"]} >= {f"{RAY} appears more than once"}
    assert len(body["errorData"]["errors"]) == 2 and "nothing was changed" in body["errorMessage"]


def test_the_database_refuses_ids_differing_only_by_case(seeded):
    from sqlalchemy.exc import IntegrityError

    engine = create_engine(seeded.config["DATABASE_URL"])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE models SET model_id = 'LUMA/RAY-2-720P' "
                          "WHERE model_id = 'luma/ray-flash-2-540p'"))
    engine.dispose()


# -- the migration -----------------------------------------------------------------------------

INSERT = text(
    "INSERT INTO models (id, model_id, name, description, version, cost_micros, pricing_unit, "
    "supported_durations, supported_qualities, quality_multipliers, is_premium, is_active, "
    "is_default, is_deprecated, is_locked, provider, category, tags, content_type, revision, "
    "created_at, updated_at) VALUES (:id, :model_id, 'M', '', '1.0', 100000, 'second', '[5]', "
    "'[\"standard\"]', '{}', false, :active, :default, :deleted, false, 'P', '', '[]', "
    "'prompt_to_video', 1, 1, 1)")
HISTORY = text(
    "INSERT INTO model_history (model_pk, model_id, revision, action, actor, source, at, "
    "changes, snapshot) VALUES (:pk, :model_id, 1, 'create', 'x', 'seed', 1, '[]', '{}')")


def old_database(kind, request, tmp_path, rows):
    url = fresh_database(kind, request, tmp_path)
    config = alembic_config(url)
    command.downgrade(config, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        for pk, (model_id, active, default, deleted) in enumerate(rows, 1):
            conn.execute(INSERT, {"id": pk, "model_id": model_id, "active": active,
                                  "default": default, "deleted": deleted})
            conn.execute(HISTORY, {"pk": pk, "model_id": model_id})
    return url, config, engine


def models(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT model_id, is_active, is_default, is_deprecated "
                                 "FROM models ORDER BY id")).all()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_lowers_ids_and_repairs_states(kind, request, tmp_path):
    url, config, engine = old_database(kind, request, tmp_path, [
        ("Luma/Ray-2-720p", True, False, True),  # active and deleted
        ("Google/Veo-3", False, True, False),  # a default that is off, while others are on
        ("acme/clip", True, False, False),
    ])
    command.upgrade(config, "0003")
    assert models(engine) == [("luma/ray-2-720p", False, False, True),
                              ("google/veo-3", False, False, False),
                              ("acme/clip", True, True, False)]
    with engine.connect() as conn:
        history = conn.execute(text("SELECT model_id FROM model_history ORDER BY id")).scalars()
        assert list(history) == ["luma/ray-2-720p", "google/veo-3", "acme/clip"]
    command.downgrade(config, "0001")
    assert [row[0] for row in models(engine)] == ["luma/ray-2-720p", "google/veo-3",
                                                  "acme/clip"]
    command.upgrade(config, "head")
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_refuses_ids_that_collide_under_the_rule(kind, request, tmp_path):
    url, config, engine = old_database(kind, request, tmp_path, [
        ("luma/ray-2-720p", True, True, False),
        ("Luma/Ray-2-720p", True, False, False),
        ("luma/ray-2-720p.", True, False, False),
    ])
    with pytest.raises(RuntimeError) as refused:
        command.upgrade(config, "0003")
    message = str(refused.value)
    assert "row 2: 'Luma/Ray-2-720p' is the same id as 'luma/ray-2-720p' (row 1)" in message
    assert "row 3: 'luma/ray-2-720p.' breaks the id rule" in message
    assert [row[0] for row in models(engine)] == ["luma/ray-2-720p", "Luma/Ray-2-720p",
                                                  "luma/ray-2-720p."]
    with engine.connect() as conn:
        # 0003 refused and left nothing of its own (0002, on the way, may have been kept)
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() in (
            "0001", "0002")
    engine.dispose()
