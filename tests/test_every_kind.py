"""Every kind of model in one catalog: the spec's fields, kind rules and list filters."""

from __future__ import annotations

from tests.test_catalog import FLASH, RAY, VEO, error

CHAT = {
    "modelId": "openai/gpt-4o",
    "name": "GPT-4o",
    "provider": "OpenAI",
    "contentType": "chat",
    "inputModalities": ["text", "image"],
    "outputModalities": ["text"],
    "capabilities": ["vision", "tools", "structured_output"],
    "contextWindow": 128000,
    "maxOutputTokens": 16384,
    "deprecationDate": "2026-06-30",
    "successorModelId": "openai/gpt-5",
    "isActive": False,
    "prices": [{"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": "2.5"},
        {"unit": "cache_read_tokens", "price": "1.25"},
        {"unit": "output_tokens", "price": "10"}]}],
}


def page(api, **filters) -> list[str]:
    answer = api.value("query", "models:listModels",
                       {"paginationOpts": {"numItems": 100, "cursor": None}, **filters})
    return [m["modelId"] for m in answer["page"]]


def test_a_chat_model_keeps_its_fields_and_has_no_video_ones(seeded, api):
    created = api.value("mutation", "models:createModel", CHAT)
    assert {k: created[k] for k in CHAT} == CHAT
    assert "costPerSecond" not in created and created["supportedDurations"] == []
    refused = api.mutation("models:createModel", {**CHAT, "modelId": "openai/x",
                                                  "supportedDurations": [5]})
    assert error(refused) == {"code": "INVALID_ARGUMENT", "field": "supportedDurations"}
    unknown = api.mutation("models:createModel", {**CHAT, "modelId": "openai/y",
                                                  "capabilities": ["telepathy"]})
    assert error(unknown)["field"] == "capabilities[0]"


def test_a_kind_left_out_is_not_taken_as_video_for_a_price_video_does_not_have(seeded, api):
    """A model created without contentType is video, which is priced per second or per clip:
    one priced by tokens alone is refused, naming the field left out, where it was stored as
    video and refused every video quote. A kind given is taken; a gap (an entry with no
    components) says nothing of the kind."""
    untyped = {k: val for k, val in CHAT.items() if k not in (
        "contentType", "inputModalities", "outputModalities", "contextWindow",
        "maxOutputTokens")}
    before = page(api)
    refused = api.mutation("models:createModel", untyped)
    assert error(refused) == {"code": "INVALID_ARGUMENT", "field": "contentType"}
    assert refused["errorMessage"] == (
        "contentType is video when not given, and prices[0] prices cache_read_tokens, "
        "input_tokens, output_tokens, not video's seconds or requests: give the model's "
        "contentType")
    assert page(api) == before
    assert api.value("mutation", "models:createModel", CHAT)["contentType"] == "chat"
    clip = api.value("mutation", "models:createModel", {
        "modelId": "acme/clip", "name": "Clip", "provider": "Acme", "prices": [
            {"effectiveFrom": None, "components": [{"unit": "second", "price": "0.1"},
                                                   {"unit": "input_image", "price": "0.01"}]},
            {"effectiveFrom": 1_900_000_000_000, "components": []},  # a gap: not priced
            {"effectiveFrom": 1_900_000_100_000, "components": [
                {"unit": "request", "price": "0.5"}]}]})
    assert clip["contentType"] == "video"


def test_seed_schema_fields_are_taken_as_the_seed_sends_them(seeded, api):
    created = api.value("mutation", "models:createModel", {
        "modelId": "luma/ray-3", "name": "Ray 3", "provider": "Luma", "costPerSecond": 0.2,
        "supportedDurations": [5], "supportedQualities": ["standard"], "isDeprecated": False,
        "isDefault": False, "logoUrl": "https://example.com/luma.png",
        "estimatedTimeSeconds": 40})
    assert (created["logoUrl"], created["estimatedTimeSeconds"]) == (
        "https://example.com/luma.png", 40)
    deleted = api.value("mutation", "models:createModel", {
        "modelId": "luma/ray-0", "name": "Ray 0", "provider": "Luma", "costPerSecond": 0.2,
        "supportedDurations": [5], "supportedQualities": ["standard"], "isDeprecated": True})
    assert deleted["isDeprecated"] and not deleted["isActive"]


def test_list_models_filters_by_kind_provider_capability_and_text(seeded, api):
    api.value("mutation", "models:createModel", CHAT)
    assert page(api, contentType="chat") == ["openai/gpt-4o"]
    assert page(api, contentType="video") == [VEO, RAY, FLASH]
    assert page(api, capability="vision") == ["openai/gpt-4o"]
    assert page(api, capability="audio_sync") == [VEO]
    assert page(api, provider="Luma", isActive=True) == [RAY, FLASH]
    assert page(api, search="RAY") == [RAY, FLASH]
    assert page(api, search="gpt-4", isActive=False) == ["openai/gpt-4o"]
    bad = api.query("models:listModels", {"paginationOpts": {"numItems": 5, "cursor": None},
                                          "contentType": "hologram"})
    assert error(bad)["field"] == "contentType"
