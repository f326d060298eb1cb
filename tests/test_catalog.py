"""The catalog's queries and mutations, and its invariants, over the HTTP API."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import catalog_fingerprint

VEO, RAY, FLASH = "google/veo-3", "luma/ray-2-720p", "luma/ray-flash-2-540p"

NEW_MODEL = {
    "modelId": "acme/clip-1",
    "name": "Acme Clip 1",
    "costPerSecond": 0.05,
    "supportedDurations": [10, 4],
    "supportedQualities": ["standard", "high"],
    "provider": "Acme",
}


def error(body: dict) -> dict:
    assert body["status"] == "error", body
    return body["errorData"]


def test_seeded_catalog_is_the_three_default_models(seeded, api):
    active = api.value("query", "models:getActiveModels")
    by_id = {m["modelId"]: m for m in active}
    assert list(by_id) == [VEO, RAY, FLASH]
    veo = by_id[VEO]
    assert (veo["name"], veo["costPerSecond"], veo["fixedDuration"]) == ("Google Veo-3", 0.75, 8)
    assert veo["isPremium"] and veo["category"] == "Premium"
    assert veo["supportedQualities"] == ["standard", "high", "ultra"]
    assert by_id[RAY]["supportedDurations"] == [5, 9] and by_id[RAY]["costPerSecond"] == 0.18
    assert by_id[FLASH]["costPerSecond"] == 0.12 and by_id[FLASH]["category"] == "Budget"
    assert [m["modelId"] for m in active if m["isDefault"]] == [FLASH]
    for doc in active:
        assert isinstance(doc["_id"], str) and doc["_creationTime"] > 1.7e12
    assert api.value("query", "models:getDefaultModel")["modelId"] == FLASH
    assert [m["modelId"] for m in api.value("query", "models:getPremiumModels")] == [VEO]
    luma = api.value("query", "models:getModelsByProvider", {"provider": "Luma"})
    assert [m["modelId"] for m in luma] == [RAY, FLASH]
    assert api.value("query", "models:getModelById", {"modelId": "nope/x"}) is None


def test_create_model_normalizes_and_rejects_duplicates(seeded, api):
    created = api.value("mutation", "models:createModel", NEW_MODEL)
    assert created["supportedDurations"] == [4, 10]
    assert created["maxDuration"] == 10 and created["revision"] == 1
    assert created["isActive"] and not created["isDefault"]
    again = api.mutation("models:createModel", NEW_MODEL)
    assert error(again) == {"code": "DUPLICATE", "field": "modelId"}


def test_setting_default_switches_it_atomically(seeded, api):
    api.value("mutation", "models:setDefaultModel", {"modelId": VEO})
    defaults = [m["modelId"] for m in api.value("query", "models:getActiveModels")
                if m["isDefault"]]
    assert defaults == [VEO]


def test_the_default_cannot_be_deleted_or_deactivated(seeded, api):
    before = catalog_fingerprint(seeded)
    assert error(api.mutation("models:deleteModel", {"modelId": FLASH}))["code"] == \
        "DEFAULT_REQUIRED"
    body = api.mutation("models:updateModel", {"modelId": FLASH, "patch": {"isActive": False}})
    assert error(body)["code"] == "DEFAULT_REQUIRED"
    assert "set another model as the default" in body["errorMessage"]
    assert catalog_fingerprint(seeded) == before


def test_inactive_model_cannot_become_default(seeded, api):
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {"isActive": False}})
    assert error(api.mutation("models:setDefaultModel", {"modelId": RAY}))["code"] == "INACTIVE"


def test_database_allows_only_one_default(seeded):
    engine = create_engine(seeded.config["DATABASE_URL"])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE models SET is_default = true WHERE model_id = :m"), {"m": VEO})
    engine.dispose()


def test_soft_delete_and_restore_keep_everything(seeded, api):
    deleted = api.value("mutation", "models:deleteModel", {"modelId": RAY, "reason": "retired"})
    assert deleted["isDeprecated"] and not deleted["isActive"] and deleted["deprecatedAt"] > 0
    assert RAY not in [m["modelId"] for m in api.value("query", "models:getActiveModels")]
    assert api.value("query", "models:getModelById", {"modelId": RAY})["isDeprecated"]
    restored = api.value("mutation", "models:restoreModel", {"modelId": RAY})
    assert restored["isActive"] and not restored["isDeprecated"] and "deprecatedAt" not in restored
    assert restored["costPerSecond"] == 0.18


def test_locked_model_refuses_changes_but_counts_stats(seeded, make_token, client):
    from tests.conftest import Api

    admin = Api(client, make_token("admin"))
    admin.value("mutation", "models:lockModel", {"modelId": RAY})
    before = catalog_fingerprint(seeded)
    for path, args in [
        ("models:updateModel", {"modelId": RAY, "patch": {"costPerSecond": 0.2}}),
        ("models:deleteModel", {"modelId": RAY}),
        ("models:setDefaultModel", {"modelId": RAY}),
    ]:
        assert error(admin.mutation(path, args))["code"] == "LOCKED", path
    assert catalog_fingerprint(seeded) == before
    taken = admin.mutation("models:duplicateModel", {"modelId": RAY, "newModelId": VEO})
    assert error(taken) == {"code": "DUPLICATE", "field": "newModelId"}
    copy = admin.value("mutation", "models:duplicateModel", {"modelId": RAY, "newModelId": "x/y"})
    assert copy["costPerSecond"] == 0.18 and not copy["isLocked"] and not copy["isActive"]
    stats = admin.value("mutation", "models:updateModelStats",
                        {"modelId": RAY, "generationTime": 3, "success": True})
    assert stats["totalGenerations"] == 1
    admin.value("mutation", "models:unlockModel", {"modelId": RAY})
    patched = admin.value("mutation", "models:updateModel",
                          {"modelId": RAY, "patch": {"costPerSecond": 0.2}})
    assert patched["costPerSecond"] == 0.2


def test_bulk_disable_skips_locked_and_default(seeded, make_token, client):
    from tests.conftest import Api

    admin = Api(client, make_token("admin"))
    admin.value("mutation", "models:lockModel", {"modelId": VEO})
    result = admin.value("mutation", "models:setModelsActive", {"isActive": False})
    assert result["changed"] == [RAY]
    assert {s["modelId"]: s["code"] for s in result["skipped"]} == {
        VEO: "LOCKED", FLASH: "DEFAULT_REQUIRED"}
    active = [m["modelId"] for m in admin.value("query", "models:getActiveModels")]
    assert active == [VEO, FLASH]
    again = admin.value("mutation", "models:setModelsActive",
                        {"isActive": True, "modelIds": [RAY, FLASH]})
    assert again == {"changed": [RAY], "unchanged": [FLASH], "skipped": []}


def test_stale_revision_is_refused(seeded, api):
    model = api.value("query", "models:getModelById", {"modelId": RAY})
    api.value("mutation", "models:updateModel", {
        "modelId": RAY, "patch": {"name": "First"}, "expectedRevision": model["revision"]})
    body = api.mutation("models:updateModel", {
        "modelId": RAY, "patch": {"name": "Second"}, "expectedRevision": model["revision"]})
    assert error(body)["code"] == "STALE_REVISION"
    assert api.value("query", "models:getModelById", {"modelId": RAY})["name"] == "First"


def test_update_checks_cross_field_rules(seeded, api):
    body = api.mutation("models:updateModel", {
        "modelId": RAY, "patch": {"qualityMultipliers": {"4k": 2}}})
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": "qualityMultipliers.4k"}
    body = api.mutation("models:updateModel", {
        "modelId": RAY, "patch": {"fixedDuration": 7}})
    assert error(body)["field"] == "fixedDuration"
    body = api.mutation("models:updateModel", {
        "modelId": RAY, "patch": {"inputSchema": {"type": "nonsense"}}})
    assert error(body)["field"] == "inputSchema"
    body = api.mutation("models:updateModel", {"modelId": RAY, "patch": {"isDefault": True}})
    assert error(body)["field"] == "patch.isDefault"


def test_a_quality_multiplier_must_give_a_price_the_engine_can_hold(seeded, api):
    """costPerSecond x multiplier is a price: more than 20 significant digits is refused when
    it is set, not found by every quote, list page and recommendation after."""
    before = catalog_fingerprint(seeded)
    body = api.mutation("models:updateModel", {"modelId": RAY, "patch": {
        "costPerSecond": 0.123457, "qualityMultipliers": {"high": 1.2345678901234567}}})
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": "qualityMultipliers.high"}
    assert body["errorMessage"] == (
        "qualityMultipliers.high: costPerSecond x 1.2345678901234567 has more than 20 "
        "significant digits: 0.1524160480109715938119; prices are kept exact, so give the "
        "multiplier fewer digits")

    created = api.mutation("models:createModel", {
        **NEW_MODEL, "qualityMultipliers": {"high": 1.2345678901234567}, "costPerSecond": 0.1})
    assert created["status"] == "success"  # 0.12345678901234567: 17 digits
    assert catalog_fingerprint(seeded) != before
    assert api.value("query", "pricing:getCreditCost", {
        "modelId": "acme/clip-1", "duration": 4, "quality": "high"})["usdExact"] == \
        "0.49382715604938268"
    assert api.value("query", "models:recommendModel", {
        "contentType": "video", "usage": {"seconds": 5}})


@pytest.mark.parametrize("date", ["2025-02-30", "2025-13-45", "0000-00-00", "abcd",
                                  "2025-1-05", "2025-01-05T00:00"])
def test_a_deprecation_date_must_exist(seeded, api, date):
    before = catalog_fingerprint(seeded)
    created = api.mutation("models:createModel", {**NEW_MODEL, "deprecationDate": date})
    assert error(created) == {"code": "INVALID_ARGUMENT", "field": "deprecationDate"}
    assert "YYYY-MM-DD" in created["errorMessage"] and date in created["errorMessage"]
    updated = api.mutation("models:updateModel",
                           {"modelId": RAY, "patch": {"deprecationDate": date}})
    assert error(updated)["field"] == "patch.deprecationDate"
    assert catalog_fingerprint(seeded) == before
    leap = api.value("mutation", "models:updateModel",
                     {"modelId": RAY, "patch": {"deprecationDate": "2028-02-29"}})
    assert leap["deprecationDate"] == "2028-02-29"


@pytest.mark.parametrize("field,value", [
    ("name", "Ray \u202eabc"), ("name", "two\nlines"), ("name", "   "), ("name", "a\u200bb"),
    ("name", "a\u2028b"), ("name", "bom\ufeff"), ("provider", "Acme\tLabs"),
    ("version", "1.0\u2066"), ("category", "a\u202eb"), ("category", "tab\there"),
    ("category", "  "),
])
def test_names_shown_in_lists_and_sentences_are_text_on_one_line(seeded, api, field, value):
    """A name in a list column or a console sentence ("Make X the default?"): a direction
    override would turn the console's own words around it, a line break or tab breaks the
    columns of a list. Refused, as a token's name is; nothing changes."""
    before = catalog_fingerprint(seeded)
    body = api.mutation("models:createModel", {**NEW_MODEL, field: value})
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": field}
    assert "text on one line, without control or invisible characters" in body["errorMessage"]
    body = api.mutation("models:updateModel", {"modelId": RAY, "patch": {field: value}})
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": f"patch.{field}"}
    assert catalog_fingerprint(seeded) == before
    for n, name in enumerate(("Модель 🚀 نموذج", "GPT\u00a04o", "می\u200cخواهم",
                              "👨\u200d👩\u200d👧")):  # any script, spaces, joiners, emoji
        made = api.value("mutation", "models:createModel",
                         {**NEW_MODEL, "modelId": f"acme/line-{n}", "name": name})
        assert made["name"] == name
    assert api.value("mutation", "models:updateModel",  # a category may be empty
                     {"modelId": RAY, "patch": {"category": ""}})["category"] == ""


def test_a_refusal_names_the_field_once_and_shows_numbers_short(seeded, api):
    bad = [{"effectiveFrom": None, "components": [{"unit": "second", "price": "-1"}]}]
    created = api.mutation("models:createModel", {
        **{k: v for k, v in NEW_MODEL.items() if k != "costPerSecond"}, "prices": bad})
    assert created["errorMessage"].startswith("prices[0].components[0].price must be a decimal")
    assert "schedule" not in created["errorMessage"]
    huge = api.query("pricing:getCreditCost", {"modelId": RAY, "duration": 1e308})
    assert huge["errorMessage"] == "duration must be at most 3600, got 1e+308"
    far = api.query("pricing:quote", {"modelId": RAY, "usage": {"seconds": 5}, "at": 10**400})
    assert error(far)["field"] == "at" and len(far["errorMessage"]) < 120


def test_a_count_too_large_to_price_is_refused_everywhere(seeded, api):
    """One significant digit, but 10^400 tokens: refused as an argument, never an
    overflowing total (a 500 for anyone, on every quote and recommendation)."""
    api.value("mutation", "models:createModel", {
        "modelId": "acme/chat-1", "name": "Acme Chat", "provider": "Acme",
        "contentType": "chat", "isActive": True, "prices": [{"effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "2.5"}, {"unit": "output_tokens", "price": "10"}]}]})
    for count in (10**400, 10**15 + 1, 1e300):
        quoted = api.query("pricing:quote", {"modelId": "acme/chat-1",
                                             "usage": {"inputTokens": count}})
        assert error(quoted) == {"code": "INVALID_ARGUMENT", "field": "usage.inputTokens"}
        assert quoted["errorMessage"] == \
            "usage.inputTokens must be at most 1,000,000,000,000,000", count
        recommended = api.query("models:recommendModel", {"contentType": "chat",
                                                          "usage": {"inputTokens": count}})
        assert recommended["status"] == "error", recommended
    largest = api.value("query", "pricing:quote", {"modelId": "acme/chat-1",
                                                   "usage": {"inputTokens": 10**15}})
    assert largest["usdExact"] == "2500000000"


@pytest.mark.parametrize("start", [1780272000000000, 10**400, "2027-01-15", "next week",
                                   "1969-12-31T23:59:59Z"])
def test_a_price_starts_before_the_year_10000(seeded, api, start):
    """A start in microseconds (year 58384) or past any clock is refused, not stored to break
    every page and session that shows it."""
    before = catalog_fingerprint(seeded)
    body = api.mutation("models:updateModel", {"modelId": RAY, "patch": {"costPerSecond": None,
        "prices": [{"effectiveFrom": None, "components": [{"unit": "second", "price": "0.2"}]},
                   {"effectiveFrom": start, "components": [{"unit": "second", "price": "0.1"}]}]}})
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": "patch.prices[1].effectiveFrom"}
    assert "2027-01-15T00:00:00Z" in body["errorMessage"]
    assert catalog_fingerprint(seeded) == before


def test_a_price_may_start_at_a_time_with_its_offset(seeded, api):
    updated = api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {
        "costPerSecond": None, "prices": [
            {"effectiveFrom": None, "components": [{"unit": "second", "price": "0.2"}]},
            {"effectiveFrom": "2027-01-15T01:00:00+01:00",
             "components": [{"unit": "second", "price": "0.1"}]}]}})
    assert [e["effectiveFrom"] for e in updated["prices"]] == [None, 1799971200000]


def test_a_provider_is_found_whatever_its_case(seeded, api):
    luma = {m["modelId"] for m in api.value("query", "models:getModelsByProvider",
                                             {"provider": "Luma"})}
    assert luma and all(
        {m["modelId"] for m in api.value("query", "models:getModelsByProvider",
                                         {"provider": spelling})} == luma
        for spelling in ("luma", "LUMA"))
    for spelling in ("Luma", "luma", "lUMA"):
        page = api.value("query", "models:listModels", {
            "paginationOpts": {"numItems": 50, "cursor": None}, "provider": spelling})["page"]
        assert {m["modelId"] for m in page if m["isActive"]} == luma, spelling
    none = api.value("query", "models:listModels", {
        "paginationOpts": {"numItems": 50, "cursor": None}, "provider": "lumax"})
    assert none["page"] == []


def test_an_entry_without_components_prices_nothing_while_in_force(seeded, api):
    """A schedule may say a model is not priced for a while (an entry with no components):
    a quote then is NO_PRICE, and the model still edits, exports and applies as it is."""
    chat = {"modelId": "acme/later", "name": "Later", "provider": "Acme", "contentType": "chat",
            "prices": [{"effectiveFrom": None, "components": []},
                       {"effectiveFrom": 4102444800000, "components": [  # 2100-01-01
                           {"unit": "input_tokens", "price": "1"}]}]}
    api.value("mutation", "models:createModel", chat)
    quoted = api.query("pricing:quote", {"modelId": "acme/later", "usage": {"inputTokens": 10}})
    assert error(quoted) == {"code": "NO_PRICE", "field": "at"}
    assert "lists no components" in quoted["errorMessage"]
    later = api.value("query", "pricing:quote", {"modelId": "acme/later",
                                                 "usage": {"inputTokens": 10**6},
                                                 "at": 4102444800000})
    assert later["usdExact"] == "1"
    renamed = api.value("mutation", "models:updateModel",
                        {"modelId": "acme/later", "patch": {"name": "Renamed"}})
    assert renamed["name"] == "Renamed"
    exported = api.value("query", "catalog:exportCatalog")
    plan = api.value("mutation", "catalog:planCatalog", {"catalog": exported})
    assert plan["created"] == plan["changed"] == plan["deactivated"] == []


def test_first_active_model_becomes_default(app, api):
    created = api.value("mutation", "models:createModel", NEW_MODEL)
    assert created["isDefault"]
    second = api.value("mutation", "models:createModel",
                       {**NEW_MODEL, "modelId": "acme/clip-2", "isDefault": True})
    assert second["isDefault"]
    first = api.value("query", "models:getModelById", {"modelId": "acme/clip-1"})
    assert not first["isDefault"]


def test_list_models_paginates_stably_under_inserts(seeded, api):
    first = api.value("query", "models:listModels",
                      {"paginationOpts": {"numItems": 2, "cursor": None}})
    assert [m["modelId"] for m in first["page"]] == [VEO, RAY] and not first["isDone"]
    api.value("mutation", "models:createModel", NEW_MODEL)
    rest = api.value("query", "models:listModels",
                     {"paginationOpts": {"numItems": 2, "cursor": first["continueCursor"]}})
    assert [m["modelId"] for m in rest["page"]] == [FLASH, "acme/clip-1"]
    end = api.value("query", "models:listModels",
                    {"paginationOpts": {"numItems": 2, "cursor": rest["continueCursor"]}})
    assert end["page"] == [] and end["isDone"]
    premium = api.value("query", "models:listModels",
                        {"paginationOpts": {"numItems": 10, "cursor": None}, "isPremium": True})
    assert [m["modelId"] for m in premium["page"]] == [VEO]
    bad = api.query("models:listModels", {"paginationOpts": {"numItems": 2, "cursor": "zz!"}})
    assert error(bad)["field"] == "paginationOpts.cursor"


def test_model_stats_are_exact_and_do_not_touch_revision(seeded, api):
    for seconds, ok in [(10.5, True), (20.25, True), (30, False)]:
        api.value("mutation", "models:updateModelStats",
                  {"modelId": FLASH, "generationTime": seconds, "success": ok})
    stats = {s["modelId"]: s for s in api.value("query", "models:getModelStats")}
    assert stats[FLASH]["totalGenerations"] == 3
    assert stats[FLASH]["averageGenerationTime"] == pytest.approx(20.25)
    assert stats[FLASH]["successRate"] == pytest.approx(200 / 3)
    assert stats[VEO]["totalGenerations"] == 0
    model = api.value("query", "models:getModelById", {"modelId": FLASH})
    assert model["revision"] == 2 and model["totalGenerations"] == 3
    missing = api.mutation("models:updateModelStats",
                           {"modelId": "no/such", "generationTime": 1, "success": True})
    assert error(missing)["code"] == "NOT_FOUND"


def test_validate_model_capabilities(seeded, api):
    def check(model_id, duration, quality):
        return api.value("query", "models:validateModelCapabilities",
                         {"modelId": model_id, "duration": duration, "quality": quality})

    assert check(RAY, 9, "ultra") == {"valid": True}
    assert check(VEO, 8, "high") == {"valid": True}
    wrong = check(RAY, 7, "high")
    assert wrong["valid"] is False and "5 s, 9 s" in wrong["reason"]
    assert check(VEO, 5, "high")["code"] == "UNSUPPORTED_DURATION"
    assert check(RAY, 5, "4k")["code"] == "UNSUPPORTED_QUALITY"
    assert check(RAY, 5, "4k")["supported"] == ["standard", "high", "ultra"]
    assert check(RAY, 7, "high")["supported"] == [5, 9]
    fixed = api.value("query", "models:validateModelCapabilities",
                      {"modelId": VEO, "quality": "high"})  # Veo always runs 8 s
    assert fixed == {"valid": True}
    assert check("no/such", 5, "high")["code"] == "NOT_FOUND"
    api.value("mutation", "models:deleteModel", {"modelId": RAY})
    assert check(RAY, 5, "high")["code"] == "INACTIVE"


def test_cost_per_second_may_be_written_as_prices_are(seeded, api):
    """"0.20", a decimal string as every other price is written, is 0.20 USD a second; more
    than 6 decimals is refused whichever way it is written."""
    updated = api.value("mutation", "models:updateModel",
                        {"modelId": RAY, "patch": {"costPerSecond": "0.20"}})
    assert updated["costPerSecond"] == 0.2
    for written in ("0.1234567", "999.000000000000001", "1e-3", "-0.5", "0.2.0", "",
                    "٠.٢", "0", "5000"):
        body = api.mutation("models:updateModel",
                            {"modelId": RAY, "patch": {"costPerSecond": written}})
        assert error(body)["code"] == "INVALID_ARGUMENT", written
    assert api.mutation("models:updateModel", {"modelId": RAY, "patch": {
        "costPerSecond": "0.1234567"}})["errorMessage"] == \
        "patch.costPerSecond must have at most 6 decimal places, got 0.1234567"
    assert api.mutation("models:updateModel", {"modelId": RAY, "patch": {
        "costPerSecond": "-1"}})["errorMessage"] == (  # not "must be a number, got a string"
        "patch.costPerSecond must be a number, or a decimal string: 1 to 15 digits, then a "
        'point and digits if any ("0.20"; no sign, no exponent), got "-1"')
