"""inputSchema: every regular expression it holds must compile; a bad one is a clear refusal."""

from __future__ import annotations

import pytest

from tests.conftest import catalog_fingerprint, run_as_system
from tests.console import create_accounts, sign_in
from tests.test_catalog import NEW_MODEL, RAY, error

DEEP = "(" * 5000 + ")" * 5000  # past the regular expression parser's recursion limit
BAD = [
    ({"type": "string", "pattern": "a{99999999999}"}, "inputSchema.pattern"),
    ({"properties": {"prompt": {"type": "string", "pattern": "(("}}},
     "inputSchema.properties.prompt.pattern"),
    ({"patternProperties": {"a{99999999999}": {}}},
     "inputSchema.patternProperties.a{99999999999}"),
    ({"items": {"pattern": "[z-a]"}}, "inputSchema.items.pattern"),
    ({"anyOf": [{}, {"pattern": DEEP}]}, "inputSchema.anyOf[1].pattern"),
    ({"additionalProperties": {"pattern": "\\p{L}"}}, "inputSchema.additionalProperties.pattern"),
    ({"properties": {"a": {"properties": {"b": {"patternProperties": {"(": {}}}}}}},
     "inputSchema.properties.a.properties.b.patternProperties.("),
]
GOOD = [
    {"type": "object", "properties": {"prompt": {"type": "string", "pattern": "^[a-z ]{1,50}$"}},
     "patternProperties": {"^x-": {"type": "string"}}},
    {"properties": {"pattern": {"type": "string"}}},  # a property named "pattern"
    {"const": {"pattern": "(("}},  # a value, not a schema
]


@pytest.mark.parametrize("schema, field", BAD, ids=[field for _, field in BAD])
def test_a_pattern_that_does_not_compile_is_refused_on_every_path(seeded, api, schema, field):
    before = catalog_fingerprint(seeded)
    created = api.mutation("models:createModel", {**NEW_MODEL, "inputSchema": schema})
    assert error(created) == {"code": "INVALID_ARGUMENT", "field": field}
    assert field in created["errorMessage"]
    updated = api.mutation("models:updateModel",
                           {"modelId": RAY, "patch": {"inputSchema": schema}})
    assert error(updated) == {"code": "INVALID_ARGUMENT", "field": field}
    catalog = api.value("query", "catalog:exportCatalog")
    catalog["models"][1]["inputSchema"] = schema
    applied = api.mutation("catalog:applyCatalog", {"catalog": catalog})
    assert [e["field"] for e in applied["errorData"]["errors"]] == [f"models[1].{field}"]
    assert catalog_fingerprint(seeded) == before


@pytest.mark.parametrize("schema", GOOD)
def test_schemas_whose_patterns_compile_are_kept(seeded, api, schema):
    updated = api.value("mutation", "models:updateModel",
                        {"modelId": RAY, "patch": {"inputSchema": schema}})
    assert updated["inputSchema"] == schema


def test_the_console_shows_the_refusal(seeded, client):
    import json

    create_accounts(seeded)
    token = sign_in(client, "admin")
    before = catalog_fingerprint(seeded)
    response = client.post("/admin/models/edit/?id=2", data={
        "csrf_token": token, "modelId": RAY, "name": "Ray", "provider": "Luma",
        "costPerSecond": "0.18", "supportedDurations": "5, 9", "supportedQualities": "standard",
        "expectedRevision": "1",
        "qualityMultipliers": json.dumps(run_as_system(seeded, "models:getModelById", {
            "modelId": RAY})["qualityMultipliers"]),  # the price unchanged: no price preview
        "inputSchema": json.dumps({"properties": {"x": {"pattern": "a{99999999999}"}}})})
    assert response.status_code == 200
    # the field by its label (the console never shows `inputSchema`), the path within it kept
    assert "Input schema (JSON Schema) (properties.x.pattern) is not a regular expression" \
        in response.get_data(as_text=True)
    assert catalog_fingerprint(seeded) == before
    assert run_as_system(seeded, "models:getModelById", {"modelId": RAY})["name"] != "Ray"
