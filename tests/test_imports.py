"""Importing public price maps (issue 17): conversion, plan, apply, what an import never does,
local edits, scheduled prices, the CLI, and the two price references after an import."""

from __future__ import annotations

import copy
import json
import math
import re
from decimal import Decimal

import pytest
from genai_prices.types import Usage

from engine.errors import FunctionError
from engine.runtime import Identity, call, system
from functions import ids, imports, prices, sources
from tests.conftest import catalog_fingerprint, run_as_system
from tests.test_price_references import (
    GENAI_USAGE,
    LITELLM,
    camel,
    genai_cases,
    genai_models,
    litellm_cases,
)

DAY = 86_400_000

# A small map in LiteLLM's format (1.110.2): the committed reference entries the importer
# reads, plus what it must report rather than import.
EXTRA = {
    "openai/gpt-4o-test-2": {  # already starts with its provider: the key is the id
        "litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 5e-06,
        "output_cost_per_token": 1.5e-05, "max_input_tokens": 128000, "max_output_tokens": 16384,
        "supports_function_calling": True, "supports_vision": True,
        "supports_prompt_caching": True, "supports_response_schema": True,
        "supports_something_new": True, "deprecation_date": "2026-10-01",
        "successor_model": "gpt-5-test", "supported_modalities": ["text", "image"],
        "supported_output_modalities": ["text", "code"]},
    "Mixed/Case-Model": {"litellm_provider": "Mixed", "mode": "completion",
                         "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
    "cohere-rerank-test": {"litellm_provider": "cohere", "mode": "rerank",
                           "input_cost_per_query": 0.002},
    "omni-moderation-test": {"litellm_provider": "openai", "mode": "moderation",
                             "input_cost_per_token": 0.0},
    "bedrock/*/1-month-commitment/cohere.command-test": {
        "litellm_provider": "bedrock", "mode": "chat", "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06},
    "deepseek-test": {"litellm_provider": "deepseek", "mode": "chat",
                      "input_cost_per_token": 2.7e-07, "output_cost_per_token": 1.1e-06},
    "deepseek/deepseek-test": {"litellm_provider": "deepseek", "mode": "chat",
                               "input_cost_per_token": 2.8e-07,
                               "output_cost_per_token": 1.1e-06},
    "kimi-test": {"litellm_provider": "moonshot", "mode": "chat",
                  "input_cost_per_token": 6e-07, "output_cost_per_token": 2.5e-06},
    "moonshot/kimi-test": {"litellm_provider": "moonshot", "mode": "chat",
                           "input_cost_per_token": 6e-07, "output_cost_per_token": 2.5e-06},
    "claude-latest-test": {"alias_of": "claude-sonnet-test"},
    "fireworks-size-class-test": {"input_cost_per_token": 2e-07, "output_cost_per_token": 2e-07},
    "sample_spec": {"mode": "one of: chat, embedding, ..."},
}


def litellm_map(**changes) -> dict:
    data = {**copy.deepcopy(LITELLM), **copy.deepcopy(EXTRA)}
    for key, entry in changes.items():
        data[key] = {**data[key], **entry}
    return data


def args(conversion: sources.Conversion, **options) -> dict:
    return {**conversion.args(), "options": options}


def plan(app, conversion, **options) -> dict:
    return run_as_system(app, "catalog:planImport", args(conversion, **options))


def apply(app, conversion, reason="import", **options) -> dict:
    return run_as_system(app, "catalog:importPrices",
                         {**args(conversion, **options), "reason": reason})


def model(app, model_id):
    return run_as_system(app, "models:getModelById", {"modelId": model_id})


def history(app, model_id) -> list[dict]:
    return run_as_system(app, "history:getModelHistory",
                         {"modelId": model_id, "paginationOpts": {"numItems": 100,
                                                                  "cursor": None}})["page"]


def quote(app, model_id, usage, options=None, at=None) -> dict:
    body = {"modelId": model_id, "usage": usage}
    if options:
        body["options"] = options
    if at is not None:
        body["at"] = at
    return run_as_system(app, "pricing:quote", body)


def reported(conversion) -> dict[str, list[str]]:
    return {key: item["reasons"] for item in conversion.not_representable
            for key in item["keys"]}


# -- conversion (pure) -----------------------------------------------------------------------


def test_litellm_ids_kinds_and_fields():
    converted = sources.convert("litellm", litellm_map())
    by_id = {m["modelId"]: m for m in converted.models}
    # the key when it starts with its provider, else <provider>/<key>; canonical lower case
    assert "openai/gpt-4o-test-2" in by_id and "openai/gpt-4o-test" in by_id
    assert by_id["mixed/case-model"]["keys"] == ["Mixed/Case-Model"]
    assert by_id["mixed/case-model"]["fields"]["contentType"] == "chat"  # completion
    # every mode that has a price, as its content type
    kinds = {mid: m["fields"]["contentType"] for mid, m in by_id.items()}
    assert kinds["openai/o3-test"] == "chat"  # responses
    assert kinds["openai/text-embedding-test"] == "embedding"
    assert kinds["openai/tts-1-test"] == "speech"
    assert kinds["openai/whisper-1-test"] == "transcription"
    assert kinds["openai/sora-2-test"] == "video"
    assert kinds["vertex_ai-image-models/imagen-3-test"] == "image"
    # image keys by size and quality: one model, priced by size and quality
    dalle = by_id["openai/dall-e-3"]
    assert sorted(dalle["keys"]) == sorted(k for k in LITELLM if k.endswith("/dall-e-3"))
    whens = [c.get("when") for c in dalle["fields"]["prices"][0]["components"]]
    assert {"size": "1024x1792", "quality": "hd"} in whens
    assert "text_to_image" in dalle["fields"]["capabilities"]
    # capabilities, context window, max output, deprecation, successor, modalities
    fields = by_id["openai/gpt-4o-test-2"]["fields"]
    assert sorted(fields["capabilities"]) == ["prompt_caching", "response_schema", "tools",
                                              "vision"]
    assert fields["contextWindow"] == 128000 and fields["maxOutputTokens"] == 16384
    assert fields["deprecationDate"] == "2026-10-01"
    assert fields["successorModelId"] == "openai/gpt-5-test"
    assert fields["inputModalities"] == ["text", "image"]
    assert fields["outputModalities"] == ["text"]
    assert by_id["openai/gpt-4o-test-2"]["notes"] == [
        "supported_output_modalities code left out (not a modality of the spec)"]
    assert fields["prices"] == [{"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": "5"}, {"unit": "output_tokens", "price": "15"}]}]
    assert "contextWindow" not in by_id["openai/sora-2-test"]["fields"]  # not a video field
    # two keys for one model at one price: one model, both keys
    assert by_id["moonshot/kimi-test"]["keys"] == ["moonshot/kimi-test", "kimi-test"]


def test_litellm_reports_every_entry_it_does_not_import_by_key():
    data = litellm_map()
    converted = sources.convert("litellm", data)
    imported = {key for m in converted.models for key in m["keys"]}
    why = reported(converted)
    assert imported | set(why) == set(data) - {"sample_spec"}  # nothing dropped silently
    assert not imported & set(why)
    assert why["cohere-rerank-test"] == ["mode 'rerank': the catalog has no content type for it"]
    assert why["omni-moderation-test"] == [
        "mode 'moderation': the catalog has no content type for it"]
    assert why["bedrock/*/1-month-commitment/cohere.command-test"][0].startswith(
        "its model id breaks the id grammar")
    assert why["claude-latest-test"] == ["an alias of claude-sonnet-test (no price of its own)"]
    assert why["fireworks-size-class-test"][0].startswith("no litellm_provider")
    assert why["deepseek-test"] == ["the same model id as the key deepseek/deepseek-test, "
                                    "which is imported, with another price or mode"]
    assert "citation_cost_per_token is not expressed" in why["odd-test"]  # the converter's
    assert converted.entries == len(data) - 1
    unpriced = {"claude-latest-test"}
    assert converted.priced == converted.entries - len(unpriced)
    assert {i["priced"] for i in converted.not_representable
            if i["keys"] == ["claude-latest-test"]} == {False}


def test_litellm_values_that_are_no_number_or_no_word_are_reported_not_a_crash():
    """NaN and infinity (json.load reads both), and a list where a word belongs, once ended
    the whole conversion in a ValueError, OverflowError or TypeError."""
    chat = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06,
            "output_cost_per_token": 2e-06}
    converted = sources.convert("litellm", {
        "openai/nan-window": {**chat, "max_input_tokens": math.nan},
        "openai/endless-output": {**chat, "max_output_tokens": math.inf},
        "openai/listed-mode": {**chat, "mode": ["chat"]},
        "openai/odd-modalities": {**chat, "supported_modalities": [["text"], "text"]},
        "openai/open-tier": {**chat, "tiered_pricing": [
            {"range": [0, math.inf], "input_cost_per_token": 1e-06}]},
    })
    by_id = {m["modelId"]: m for m in converted.models}
    assert sorted(by_id) == ["openai/endless-output", "openai/nan-window",
                             "openai/odd-modalities", "openai/open-tier"]
    assert "contextWindow" not in by_id["openai/nan-window"]["fields"]
    assert "maxOutputTokens" not in by_id["openai/endless-output"]["fields"]
    assert by_id["openai/odd-modalities"]["fields"]["inputModalities"] == ["text"]
    assert by_id["openai/odd-modalities"]["notes"] == [
        "supported_modalities ['text'] left out (not a modality of the spec)"]
    assert by_id["openai/open-tier"]["fields"]["prices"][0]["components"][0] == {
        "unit": "input_tokens", "price": "1"}
    assert reported(converted) == {
        "openai/listed-mode": ["mode ['chat']: the catalog has no content type for it"]}


def test_litellm_provider_filter():
    converted = sources.convert("litellm", litellm_map(), providers=["GEMINI"])
    assert {m["fields"]["provider"] for m in converted.models} == {"gemini"}
    assert converted.entries == sum(1 for e in litellm_map().values()
                                    if e.get("litellm_provider") == "gemini")


@pytest.mark.sweep
def test_genai_prices_every_model_is_imported_or_reported():
    converted = sources.convert("genai-prices")
    everything = {f"{p.id}/{m.id}" for p, m in genai_models()}
    imported = {key for m in converted.models for key in m["keys"]}
    why = reported(converted)
    assert imported | set(why) == everything and not imported & set(why)
    assert all(m["modelId"] == m["keys"][0].lower() for m in converted.models)
    grammar = {k for k, r in why.items() if r[0].startswith("its model id breaks")}
    assert grammar == {k for k in everything if not re.fullmatch(ids.PATTERN, k)}
    assert not grammar  # cloudflare's @cf/ and openrouter's ~x/ are ids (functions/ids.py)
    assert {"cloudflare/@cf/meta/llama-3.1-8b-instruct", "openrouter/~openai/gpt-latest"} <= {
        m["modelId"] for m in converted.models}
    assert why["groq/whisper-large-v3"] == [
        "groq bills at least 10 s of audio per request (genai-prices ModelInfo.calc_price, in "
        "code)"]
    ocr = {k for k, r in why.items() if "document page" in r[0]}
    assert ocr and all(k.startswith("mistral/") for k in ocr)
    # typed by price they read as chat or embedding: a free moderation model was "cheapest"
    tasks = {k for k, r in why.items() if "genai-prices names no task" in r[0]}
    assert {"openai/moderation", "cloudflare/@cf/baai/bge-reranker-base"} <= tasks
    assert why["openai/moderation"] == ["a moderation model, as its id says (genai-prices names "
                                        "no task): the catalog has no content type for it"]
    assert len(why) == 2 + len(ocr) + len(tasks)
    by_id = {m["modelId"]: m["fields"] for m in converted.models}
    claude = by_id["anthropic/claude-2"]
    assert claude["contextWindow"] == 200000 and claude["provider"] == "Anthropic"
    assert claude["contentType"] == "chat" and claude["name"] == "Claude 2.0 / 2.1"
    deprecated = [m for m in converted.models if m["fields"]["tags"] == ["deprecated"]]
    assert len(deprecated) == sum(1 for p, m in genai_models() if m.deprecated
                                  and f"{p.id}/{m.id}" in imported)
    assert {"embedding", "speech", "transcription"} <= set(f["contentType"]
                                                          for f in by_id.values())


def test_a_bad_entry_is_refused_with_every_error_and_changes_nothing(app):
    converted = sources.convert("litellm", litellm_map())
    bad = copy.deepcopy(converted.models)
    bad[0]["fields"]["prices"] = [{"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": 0.5}]}]
    bad[1]["fields"]["contentType"] = "hologram"
    bad[2]["modelId"] = bad[3]["modelId"]
    before = catalog_fingerprint(app)
    for path in ("catalog:planImport", "catalog:importPrices"):
        with pytest.raises(FunctionError) as refused:
            run_as_system(app, path, {"source": "litellm", "models": bad, "reason": "x"})
        errors = refused.value.data["errors"]
        assert [e["entry"] for e in errors] == [0, 1, 3]
        assert "models[0].fields.prices" in errors[0]["field"]
    assert catalog_fingerprint(app) == before


def test_bad_arguments_over_http_are_clear_errors(client, make_token):
    token = make_token("catalog:write")
    for body in ({"source": "nope", "models": []},
                 {"source": "litellm", "models": [{"keys": []}]},
                 {"source": "litellm", "models": "x"},
                 {"source": "litellm", "models": [], "options": {"at": -1}},
                 {"source": "litellm", "models": [], "options": {"activate": "yes"}}):
        response = client.post("/api/mutation", headers={"Authorization": f"Bearer {token}"},
                               json={"path": "catalog:planImport", "args": body})
        assert response.status_code == 200
        assert response.get_json()["status"] == "error", body
    anonymous = client.post("/api/mutation", json={"path": "catalog:importPrices", "args": {
        "source": "litellm", "models": [], "reason": "x"}})
    assert anonymous.status_code == 401


# -- plan and apply --------------------------------------------------------------------------


def test_plan_changes_nothing_and_apply_creates_inactive_models(seeded):
    converted = sources.convert("litellm", litellm_map())
    default = run_as_system(seeded, "models:getDefaultModel")["modelId"]
    before = catalog_fingerprint(seeded)
    planned = plan(seeded, converted)
    assert catalog_fingerprint(seeded) == before
    assert planned["counts"]["created"] == len(converted.models)
    assert planned["notRepresentable"] == converted.not_representable
    reranks = sum(1 for entry in litellm_map().values()
                  if isinstance(entry, dict) and entry.get("mode") == "rerank")
    assert planned["notRepresentableByReason"]["mode 'rerank': the catalog has no content type "
                                               "for it"] == reranks
    version = planned.pop("catalogVersion")
    with pytest.raises(FunctionError) as stale:  # a plan made at another catalog: refused
        run_as_system(seeded, "catalog:importPrices", {
            **args(converted), "reason": "first import", "planVersion": version - 1})
    assert stale.value.code == "STALE_PLAN" and catalog_fingerprint(seeded) == before
    applied = run_as_system(seeded, "catalog:importPrices", {
        **args(converted), "reason": "first import", "planVersion": version})
    assert applied == planned
    created = model(seeded, "openai/gpt-4o-test-2")
    assert created["isActive"] is False and created["contextWindow"] == 128000
    entry = history(seeded, "openai/gpt-4o-test-2")[0]
    assert (entry["source"], entry["action"], entry["reason"]) == (
        "import:litellm", "import", "first import")
    # the seed models, not in the source, stay as they were; the default too
    active = run_as_system(seeded, "models:getActiveModels")
    assert {m["modelId"] for m in active} == {"google/veo-3", "luma/ray-2-720p",
                                              "luma/ray-flash-2-540p"}
    assert run_as_system(seeded, "models:getDefaultModel")["modelId"] == default
    # the same map again: nothing to do
    again = plan(seeded, converted)
    assert again["counts"]["unchanged"] == len(converted.models)
    assert again["created"] == again["priceChanges"] == again["fieldChanges"] == []


def test_activate_and_the_first_default(app):
    converted = sources.convert("litellm", litellm_map(), providers=["openai"])
    planned = plan(app, converted, activate=True)
    first = converted.models[0]["modelId"]
    assert planned["newDefault"] == first
    apply(app, converted, activate=True)
    assert run_as_system(app, "models:getDefaultModel")["modelId"] == first
    assert len(run_as_system(app, "models:getActiveModels")) == len(converted.models)


def test_an_embeddings_typical_request_is_its_input_alone(seeded):
    """LiteLLM prices an embedding's output at 0: its typical request is 1M input tokens, as
    the README says, not 1M input + 1M output."""
    embedding = {"litellm_provider": "openai", "mode": "embedding",
                 "input_cost_per_token": 2e-08, "output_cost_per_token": 0.0}
    apply(seeded, sources.convert("litellm", {"text-embedding-test": embedding}))
    planned = plan(seeded, sources.convert("litellm", {"text-embedding-test": {
        **embedding, "input_cost_per_token": 3e-08}}))
    (change,) = planned["priceChanges"]
    assert (change["usage"], change["oldUsd"], change["newUsd"], change["changePercent"]) == (
        "1M input tokens", "0.02", "0.03", "50")


def test_price_and_field_changes_show_old_new_and_percent(seeded):
    apply(seeded, sources.convert("litellm", litellm_map()))
    changed = litellm_map(**{
        "openai/gpt-4o-test-2": {"input_cost_per_token": 6e-06, "max_output_tokens": 32768},
        "imagen-3-test": {"output_cost_per_image": 0.05}})
    planned = plan(seeded, sources.convert("litellm", changed))
    prices = {c["modelId"]: c for c in planned["priceChanges"]}
    chat = prices["openai/gpt-4o-test-2"]
    assert chat["components"] == [{"unit": "input_tokens", "old": "5", "new": "6"}]
    assert chat["usage"] == "1M input + 1M output tokens"
    assert (chat["oldUsd"], chat["newUsd"], chat["changePercent"]) == ("20", "21", "5")
    image = prices["vertex_ai-image-models/imagen-3-test"]
    assert (image["usage"], image["oldUsd"], image["newUsd"], image["changePercent"]) == (
        "1 image", "0.04", "0.05", "25")
    assert planned["fieldChanges"] == [{
        "modelId": "openai/gpt-4o-test-2", "keys": ["openai/gpt-4o-test-2"],
        "changes": [{"field": "maxOutputTokens", "old": 16384, "new": 32768}]}]
    assert planned["counts"]["changed"] == 2


def test_a_change_of_many_orders_of_magnitude_has_its_percent():
    """The percent was quantized at 28 digits: a change from the smallest price to a large one
    ended the plan in a 500."""
    from functions.imports import price_change

    def priced(price: str) -> list[dict]:
        return [{"effectiveFrom": None, "components": [{"unit": "image", "price": price}]}]

    change = price_change(priced("0.00000000000000000001"), priced("999999"), 0)
    assert (change["oldUsd"], change["newUsd"]) == ("0.00000000000000000001", "999999")
    assert change["changePercent"] == "9999989999999999999999999900"
    change = price_change(priced("0.00000000000000000000000001"),
                          priced("999999.99999999999999"), 0)  # the difference has 46 digits
    assert change["changePercent"] == "9999999999999999999899999999999900"


def test_never_a_locked_model_never_the_default_never_a_deactivation(seeded):
    converted = sources.convert("litellm", litellm_map())
    apply(seeded, converted, activate=True)
    run_as_system(seeded, "models:lockModel", {"modelId": "openai/gpt-4o-test-2"})
    default = run_as_system(seeded, "models:getDefaultModel")["modelId"]
    active = {m["modelId"] for m in run_as_system(seeded, "models:getActiveModels")}
    run_as_system(seeded, "models:updateModel", {"modelId": "openai/o3-test",
                                                 "patch": {"isActive": False}})
    smaller = litellm_map(**{"openai/gpt-4o-test-2": {"input_cost_per_token": 9e-06}})
    del smaller["tts-1-test"]
    applied = apply(seeded, sources.convert("litellm", smaller), activate=True)
    assert applied["locked"] == [{"modelId": "openai/gpt-4o-test-2",
                                  "keys": ["openai/gpt-4o-test-2"], "fields": ["prices"]}]
    assert model(seeded, "openai/gpt-4o-test-2")["prices"][0]["components"][0]["price"] == "5"
    assert run_as_system(seeded, "models:getDefaultModel")["modelId"] == default
    assert model(seeded, "openai/tts-1-test")["isActive"] is True  # not in the source: kept on
    assert model(seeded, "openai/o3-test")["isActive"] is False  # activate is for new models
    assert {m["modelId"] for m in run_as_system(seeded, "models:getActiveModels")} == (
        active - {"openai/o3-test"})


def test_local_edits_are_kept_until_overwritten(app):
    apply(app, sources.convert("litellm", litellm_map()))
    custom = [{"effectiveFrom": None, "components": [{"unit": "input_tokens", "price": "4"},
                                                     {"unit": "output_tokens", "price": "12"}]}]
    run_as_system(app, "models:updateModel", {"modelId": "openai/gpt-4o-test-2",
                                              "patch": {"prices": custom, "name": "GPT-4o*"}})
    changed = litellm_map(**{"openai/gpt-4o-test-2": {
        "input_cost_per_token": 6e-06, "max_output_tokens": 32768}})
    applied = apply(app, sources.convert("litellm", changed), reason="second")
    assert applied["localEditsKept"] == [{"modelId": "openai/gpt-4o-test-2",
                                          "keys": ["openai/gpt-4o-test-2"],
                                          "fields": ["name", "prices"]}]
    after = model(app, "openai/gpt-4o-test-2")
    assert after["prices"] == custom and after["name"] == "GPT-4o*"
    assert after["maxOutputTokens"] == 32768  # the rest is imported
    # the import since then changed another field: the edit is still the admin's
    third = litellm_map(**{"openai/gpt-4o-test-2": {"input_cost_per_token": 7e-06}})
    kept = plan(app, sources.convert("litellm", third))
    assert [k["fields"] for k in kept["localEditsKept"]] == [["name", "prices"]]
    assert kept["priceChanges"] == []
    overwritten = apply(app, sources.convert("litellm", third), overwriteLocalEdits=True)
    assert overwritten["localEditsOverwritten"][0]["fields"] == ["name", "prices"]
    assert model(app, "openai/gpt-4o-test-2")["prices"][0]["components"][0]["price"] == "7"
    # another source's import is a local edit for this one
    assert imports.history_source("genai-prices") == "import:genai-prices"


def test_a_model_typed_by_hand_is_the_catalogs_own(app):
    run_as_system(app, "models:createModel", {
        "modelId": "openai/gpt-4o-test", "name": "GPT-4o", "provider": "OpenAI",
        "contentType": "chat", "isActive": False, "prices": [{"effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "1"}, {"unit": "output_tokens", "price": "2"}]}]})
    planned = plan(app, sources.convert("litellm", litellm_map()))
    kept = {k["modelId"]: k["fields"] for k in planned["localEditsKept"]}
    # every field its creation set (capabilities: [] included) is the catalog's own
    assert kept["openai/gpt-4o-test"] == ["capabilities", "name", "prices", "provider"]
    changes = next(c for c in planned["fieldChanges"] if c["modelId"] == "openai/gpt-4o-test")
    assert changes["changes"] == [{"field": "contextWindow", "old": None, "new": 128000}]


def _scheduled_next_month(app) -> tuple:
    """The map imported now, then gpt-4o-test-2's input price of 6 scheduled a month on: the
    map, the changed map, now, that moment, and the scheduled import's answer."""
    converted = sources.convert("litellm", litellm_map())
    apply(app, converted, activate=True)
    now = run_as_system(app, "pricing:quote", {"modelId": "openai/gpt-4o-test-2",
                                               "usage": {"inputTokens": 1_000_000}})["at"]
    at = now + 30 * DAY
    changed = litellm_map(**{"openai/gpt-4o-test-2": {"input_cost_per_token": 6e-06}})
    applied = apply(app, sources.convert("litellm", changed), reason="from next month", at=at)
    return converted, changed, now, at, applied


def test_scheduled_import_keeps_the_old_price_until_then(app):
    converted, changed, now, at, applied = _scheduled_next_month(app)
    assert applied["counts"]["priceChanges"] == 1
    assert applied["priceChanges"][0]["effectiveFrom"] == at
    usage = {"inputTokens": 1_000_000}
    assert quote(app, "openai/gpt-4o-test-2", usage)["usdExact"] == "5"
    assert quote(app, "openai/gpt-4o-test-2", usage, at=at - 1)["usdExact"] == "5"
    assert quote(app, "openai/gpt-4o-test-2", usage, at=at)["usdExact"] == "6"
    entry = history(app, "openai/gpt-4o-test-2")[0]
    assert entry["source"] == "import:litellm" and entry["reason"] == "from next month"
    assert entry["at"] < at  # recorded now
    # the same scheduled import again changes nothing; one in the past is refused
    assert plan(app, sources.convert("litellm", changed), at=at)["counts"]["priceChanges"] == 0
    with pytest.raises(FunctionError) as refused:
        plan(app, converted, at=now - DAY)
    assert refused.value.data["field"] == "options.at"
    said = re.escape(prices.utc_text(now - DAY))  # the moment as people read it, and its ms
    assert re.match(rf"options.at \({said}, {now - DAY}\) must be in the future \(now: ",
                    refused.value.message), refused.value.message


def test_an_import_says_which_scheduled_prices_it_cancels(app):
    """The map has no future: importing it now replaces the schedule, so a price scheduled
    for next month goes. Its plan says so, though the price in force stays the same."""
    from cli import describe_import

    converted, _changed, _now, at, _applied = _scheduled_next_month(app)
    planned = plan(app, converted)
    change = next(c for c in planned["priceChanges"] if c["modelId"] == "openai/gpt-4o-test-2")
    assert change["components"] == [] and change["oldUsd"] == change["newUsd"]
    assert change["cancelled"] == [at]
    assert (f"    cancels the price scheduled from {prices.utc_text(at)[:10]}"
            in "\n".join(describe_import(planned, False)))


def test_a_scheduled_import_never_grows_a_schedule_past_its_limit(app):
    """A schedule holds at most 200 entries on every path: an import that would add the
    201st is reported, and the model keeps what it had (its export still applies)."""
    converted = sources.convert("litellm", litellm_map())
    apply(app, converted, activate=True)
    now = quote(app, "openai/gpt-4o-test-2", {"inputTokens": 1})["at"]
    full = [{"effectiveFrom": None if i == 0 else now + i * DAY, "components": [
        {"unit": "input_tokens", "price": f"{1 + i}"}, {"unit": "output_tokens", "price": "9"}]}
        for i in range(200)]
    run_as_system(app, "models:updateModel", {"modelId": "openai/gpt-4o-test-2",
                                              "patch": {"prices": full}})
    changed = litellm_map(**{"openai/gpt-4o-test-2": {"input_cost_per_token": 6e-06}})
    at = now + 300 * DAY
    planned = plan(app, sources.convert("litellm", changed), at=at, overwriteLocalEdits=True)
    refused = {item.get("modelId"): item["reasons"] for item in planned["notRepresentable"]}
    assert refused["openai/gpt-4o-test-2"] == [
        "cannot be scheduled on openai/gpt-4o-test-2: schedule must have at most 200 "
        "entries, got 201"]
    apply(app, sources.convert("litellm", changed), at=at, overwriteLocalEdits=True)
    assert len(model(app, "openai/gpt-4o-test-2")["prices"]) == 200
    catalog = run_as_system(app, "catalog:exportCatalog")
    assert run_as_system(app, "catalog:planCatalog", {"catalog": catalog})["changed"] == []


def test_a_scheduled_import_that_changes_a_models_kind_is_reported_not_half_applied(app):
    """The kind would change at once and the price only at `at`: such an entry is reported
    and the model keeps its kind and price; the rest of the import is scheduled."""
    converted = sources.convert("litellm", litellm_map())
    apply(app, converted, activate=True)
    now = quote(app, "openai/gpt-4o-test-2", {"inputTokens": 1})["at"]
    changed = litellm_map(**{
        "openai/gpt-4o-test-2": {"mode": "embedding", "input_cost_per_token": 6e-06},
        "gpt-4o-test": {"input_cost_per_token": 9e-06}})
    before = model(app, "openai/gpt-4o-test-2")
    applied = apply(app, sources.convert("litellm", changed), at=now + DAY,
                    overwriteLocalEdits=True)
    refused = {item.get("modelId"): item["reasons"] for item in applied["notRepresentable"]}
    assert "contentType (chat to embedding)" in refused["openai/gpt-4o-test-2"][0]
    assert [c["modelId"] for c in applied["priceChanges"]] == ["openai/gpt-4o-test"]
    after = model(app, "openai/gpt-4o-test-2")
    assert (after["contentType"], after["prices"], after["revision"]) == (
        "chat", before["prices"], before["revision"])


def test_a_simply_priced_video_model_moves_to_its_imported_schedule(seeded):
    data = {"ray-2-720p": {"litellm_provider": "luma", "mode": "video_generation",
                           "output_cost_per_second": 0.2}}
    converted = sources.convert("litellm", data)
    applied = apply(seeded, converted, overwriteLocalEdits=True)
    change = applied["priceChanges"][0]
    assert (change["oldUsd"], change["newUsd"], change["usage"]) == ("0.18", "0.2", "1 second")
    moved = model(seeded, "luma/ray-2-720p")
    assert "costPerSecond" not in moved and moved["prices"][0]["components"] == [
        {"unit": "second", "price": "0.2"}]
    assert moved["supportedDurations"] == [5, 9]  # the catalog's own fields stay
    cost = run_as_system(seeded, "pricing:getCreditCost", {"modelId": "luma/ray-2-720p",
                                                           "duration": 9, "quality": "high"})
    assert cost["usdExact"] == "1.8"


def test_an_imported_video_model_takes_any_duration_and_quality(app):
    apply(app, sources.convert("litellm", litellm_map()), activate=True)
    for model_id in ("openai/sora-2-test", "gemini/veo-3.1-test"):
        found = model(app, model_id)
        assert found["supportedDurations"] == [] and found["supportedQualities"] == []
        valid = run_as_system(app, "models:validateModelCapabilities",
                              {"modelId": model_id, "duration": 7, "quality": "high"})
        assert valid == {"valid": True}
        assert run_as_system(app, "models:validateModelCapabilities", {
            "modelId": model_id, "duration": 3600, "quality": "4k"}) == {"valid": True}
        with pytest.raises(FunctionError) as too_long:
            quote(app, model_id, {"seconds": 3601})
        assert too_long.value.code == "UNSUPPORTED_DURATION"
        ask = {"modelId": model_id, "duration": 7, "quality": "high"}
        if model_id == "gemini/veo-3.1-test":  # priced by resolution: the shorthand refuses
            with pytest.raises(FunctionError) as refused:  # (it has no argument for one)
                run_as_system(app, "pricing:getCreditCost", ask)
            assert refused.value.code == "UNSUPPORTED_OPTION"
            continue
        cost = run_as_system(app, "pricing:getCreditCost", ask)
        assert Decimal(cost["usdExact"]) == 7 * Decimal(str(cost["costPerSecond"]))
    # a video model priced the simple way still lists its durations and qualities
    with pytest.raises(FunctionError) as refused:
        run_as_system(app, "models:createModel", {
            "modelId": "acme/clip", "name": "Clip", "provider": "Acme", "contentType": "video",
            "costPerSecond": 0.1, "supportedQualities": ["standard"]})
    assert refused.value.data["field"] == "supportedDurations"


def test_an_editor_may_import_and_history_names_them(seeded):
    converted = sources.convert("litellm", litellm_map(), providers=["openai"])
    with seeded.app_context():
        summary = call("catalog:importPrices", {**args(converted), "reason": "editor"},
                       identity=Identity.user("editor@example.com", "editor"), source="console")
    assert summary["counts"]["created"] == len(converted.models)
    entry = history(seeded, "openai/gpt-4o-test")[0]
    assert (entry["actor"], entry["source"]) == ("editor@example.com", "import:litellm")


# -- without the writers' lock, in few statements ---------------------------------------------


def generated(provider: str, n: int, price: float = 1e-07) -> dict:
    return {f"model-{i:04d}": {"litellm_provider": provider, "mode": "chat",
                               "input_cost_per_token": price * (i + 1),
                               "output_cost_per_token": 2e-06, "max_input_tokens": 8192}
            for i in range(n)}


def test_an_import_plan_takes_no_writers_lock(seeded):
    from tests.test_concurrency import count_statements

    sent = count_statements(seeded)
    plan(seeded, sources.convert("litellm", litellm_map()))
    assert sent and not any("IMMEDIATE" in s or "advisory" in s for s in sent), sent


def test_an_import_takes_few_statements_whatever_its_size(app):
    from tests.test_concurrency import count_statements

    sizes = {}
    for provider, n in (("small", 30), ("large", 600)):
        sent = count_statements(app)
        applied = apply(app, sources.convert("litellm", generated(provider, n)))
        assert applied["counts"]["created"] == n
        sizes[n] = [s for s in sent if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert len(sizes[600]) == len(sizes[30]) <= 6, sizes[600]
    sent = count_statements(app)
    applied = apply(app, sources.convert("litellm", generated("large", 600, 3e-07)))
    assert applied["counts"]["priceChanges"] == 600
    assert len(sent) <= 30, len(sent)


def test_an_import_is_planned_before_the_lock_and_again_when_the_catalog_moved(seeded):
    from tests.test_catalog_file import HeldAtRead

    apply(seeded, sources.convert("litellm", litellm_map()))
    custom = [{"effectiveFrom": None, "components": [{"unit": "input_tokens", "price": "4"},
                                                     {"unit": "output_tokens", "price": "12"}]}]
    changed = sources.convert("litellm", litellm_map(**{"openai/gpt-4o-test-2": {
        "input_cost_per_token": 6e-06}}))
    with HeldAtRead(seeded, "catalog:importPrices", {**args(changed), "reason": "x"}) as held:
        # held inside its plan's read: the writers' lock is free
        stats = run_as_system(seeded, "models:updateModelStats", {
            "modelId": "luma/ray-2-720p", "generationTime": 3, "success": True})
        run_as_system(seeded, "models:updateModel", {"modelId": "openai/gpt-4o-test-2",
                                                     "patch": {"prices": custom}})
    assert stats["totalGenerations"] == 1
    answer = held.answer["value"]
    assert answer["localEditsKept"][0]["fields"] == ["prices"]
    assert answer["priceChanges"] == []
    assert model(seeded, "openai/gpt-4o-test-2")["prices"] == custom


def test_list_filters_are_indexes_that_answer_what_a_scan_would(app):
    apply(app, sources.convert("litellm", litellm_map()), activate=True)
    run_as_system(app, "models:updateModel", {"modelId": "openai/o3-test",
                                              "patch": {"isActive": False}})

    def pages(**filters) -> list[str]:
        found, cursor = [], None
        while True:
            page = run_as_system(app, "models:listModels", {
                "paginationOpts": {"numItems": 3, "cursor": cursor}, **filters})
            found += [m["modelId"] for m in page["page"]]
            if page["isDone"]:
                return found
            cursor = page["continueCursor"]

    everything = run_as_system(app, "models:listModels", {
        "paginationOpts": {"numItems": 1000, "cursor": None}})["page"]
    assert len(everything) == len(pages())

    def scan(**filters) -> list[str]:
        def keep(m: dict) -> bool:
            for name, value in filters.items():
                if name == "capability":
                    if value not in m["capabilities"]:
                        return False
                elif name == "search":
                    if not any(value.casefold() in (m.get(f) or "").casefold()
                               for f in ("modelId", "name", "provider", "description")):
                        return False
                elif m.get(name) != value:
                    return False
            return True
        return [m["modelId"] for m in everything if keep(m)]

    for filters in ({"contentType": "chat"}, {"provider": "openai"},
                    {"capability": "vision"}, {"contentType": "image", "provider": "openai"},
                    {"isActive": False}, {"isActive": True, "provider": "openai"},
                    {"search": "GEMINI"}, {"search": "dall-e", "contentType": "image"},
                    {"provider": "nobody"}, {"capability": "computer_use"}):
        assert pages(**filters) == scan(**filters), filters
    assert pages(provider="openai") and pages(search="GEMINI")
    # a change is seen at once: the indexes belong to one catalog version
    run_as_system(app, "models:updateModel", {"modelId": "openai/o3-test",
                                              "patch": {"provider": "elsewhere"}})
    assert pages(provider="elsewhere") == ["openai/o3-test"]
    assert "openai/o3-test" not in pages(provider="openai")


# -- the CLI ---------------------------------------------------------------------------------


def write_map(tmp_path, data, name="map.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_cli_prints_the_plan_and_changes_nothing(seeded, runner, tmp_path):
    path = write_map(tmp_path, litellm_map())
    before = catalog_fingerprint(seeded)
    result = runner.invoke(args=["catalog", "import-prices", "litellm", path])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "+ create openai/gpt-4o-test-2 (chat, openai)" in lines
    assert "+ create openai/dall-e-3 (image, openai)" in lines
    assert any(line.startswith("Not representable: ") for line in lines)
    reranks = sum(1 for entry in litellm_map().values()
                  if isinstance(entry, dict) and entry.get("mode") == "rerank")
    assert f"  {reranks:5d}  mode 'rerank': the catalog has no content type for it" in lines
    assert "  (--verbose lists them by key)" in lines
    assert lines[-1].startswith("Nothing was changed")
    assert catalog_fingerprint(seeded) == before
    verbose = runner.invoke(args=["catalog", "import-prices", "litellm", path, "--verbose"])
    assert ("  - cohere-rerank-test: mode 'rerank': the catalog has no content type for it"
            in verbose.output.splitlines())


def test_cli_applies_with_a_reason_and_shows_price_changes(seeded, runner, tmp_path):
    path = write_map(tmp_path, litellm_map())
    refused = runner.invoke(args=["catalog", "import-prices", "litellm", path, "--apply"])
    assert refused.exit_code != 0 and "--apply needs --reason" in refused.output
    done = runner.invoke(args=["catalog", "import-prices", "litellm", path, "--apply",
                               "--reason", "first", "--activate"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[-1] == "Applied."
    assert model(seeded, "openai/gpt-4o-test-2")["isActive"] is True
    again = runner.invoke(args=["catalog", "import-prices", "litellm", path, "--apply",
                                "--reason", "again"])
    assert again.output.splitlines()[-1] == ("Nothing to apply: the catalog already says what "
                                             "the map says.")
    changed = write_map(tmp_path, litellm_map(**{"openai/gpt-4o-test-2": {
        "input_cost_per_token": 6e-06}}), "changed.json")
    planned = runner.invoke(args=["catalog", "import-prices", "litellm", changed, "--at",
                                  "2099-01-01"])
    assert planned.exit_code == 0, planned.output
    lines = planned.output.splitlines()
    assert ("$ price openai/gpt-4o-test-2 from 2099-01-01 00:00:00 UTC: 20 -> 21 USD (+5.0%) "
            "for 1M input + 1M output tokens") in lines
    assert "    input_tokens: 5 -> 6" in lines


def test_an_import_that_matches_nothing_says_why(seeded, runner, tmp_path):
    """A catalog export given as a LiteLLM map, or a provider no entry has: a refusal that
    says what was expected, not an empty plan."""
    export = write_map(tmp_path, run_as_system(seeded, "catalog:exportCatalog"), "export.json")
    before = catalog_fingerprint(seeded)
    for argv, message in (
        (["litellm", export], "the file holds no LiteLLM price entry"),
        (["litellm", write_map(tmp_path, litellm_map()), "--provider", "nosuchprov"],
         "no litellm entry is of provider nosuchprov; its providers: "),
        (["genai-prices", "--provider", "nosuchprov"], "no genai-prices entry is of provider"),
    ):
        result = runner.invoke(args=["catalog", "import-prices", *argv])
        assert result.exit_code != 0 and message in result.output, (argv, result.output)
    listed = runner.invoke(args=["catalog", "import-prices", "genai-prices", "--provider", "x"])
    assert "openai" in listed.output
    assert catalog_fingerprint(seeded) == before


def test_cli_refuses_what_it_cannot_read(seeded, runner, tmp_path):
    path = write_map(tmp_path, litellm_map())
    for argv, message in (
        (["litellm"], "litellm needs FILE"),
        (["genai-prices", path], "give no FILE"),
        (["litellm", path, "--at", "next tuesday"], "is not an ISO 8601 time"),
        (["litellm", path, "--at", "²"], "is not an ISO 8601 time"),  # a digit, no number
        (["litellm", path, "--at", "2001-01-01"], "must be in the future"),
    ):
        result = runner.invoke(args=["catalog", "import-prices", *argv])
        assert result.exit_code != 0 and message in result.output, result.output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = runner.invoke(args=["catalog", "import-prices", "litellm", str(broken)])
    assert result.exit_code != 0 and "broken.json" in result.output
    listed = write_map(tmp_path, ["not", "a", "map"], "list.json")
    result = runner.invoke(args=["catalog", "import-prices", "litellm", listed])
    assert result.exit_code != 0 and "JSON object of entries" in result.output


def test_a_map_that_names_a_model_twice_is_read_as_litellm_reads_it(seeded, runner, tmp_path):
    """LiteLLM's own map has shipped with a key twice; its loader keeps the last. A catalog
    file may not (tests/test_console_input.py), but a public map is read as published."""
    text = json.dumps(litellm_map())
    twice = text[:-1] + ', "gpt-4o-test": {"litellm_provider": "openai", "mode": "chat", ' \
        '"input_cost_per_token": 7e-06, "output_cost_per_token": 1e-05}}'
    path = tmp_path / "twice.json"
    path.write_text(twice)
    result = runner.invoke(args=["catalog", "import-prices", "litellm", str(path), "--apply",
                                 "--activate", "--reason", "a map with a key twice"])
    assert result.exit_code == 0, result.output
    assert quote(seeded, "openai/gpt-4o-test", {"inputTokens": 1_000_000})["usdExact"] == "7"


def test_cli_genai_prices_for_one_provider(app, runner):
    result = runner.invoke(args=["catalog", "import-prices", "genai-prices", "--provider",
                                 "anthropic", "--apply", "--reason", "anthropic prices"])
    assert result.exit_code == 0, result.output
    assert "+ create anthropic/claude-2 (chat, Anthropic)" in result.output.splitlines()
    assert history(app, "anthropic/claude-2")[0]["source"] == "import:genai-prices"


# -- the references, after an import ----------------------------------------------------------


@pytest.mark.sweep
def test_after_import_quotes_equal_genai_prices_exactly(app):
    converted = sources.convert("genai-prices")
    apply(app, converted, activate=True)
    imported = {key: m["modelId"] for m in converted.models for key in m["keys"]}
    checked, wrong, providers = 0, [], set()
    with app.app_context():
        for provider, info in genai_models():
            model_id = imported.get(f"{provider.id}/{info.id}")
            if model_id is None:
                continue  # reported: test_genai_prices_every_model_is_imported_or_reported
            providers.add(provider.id)
            for at, moment, context, usage in genai_cases(provider, info):
                expected = info.calc_price(
                    Usage(**{GENAI_USAGE[k]: v for k, v in usage.items()}), provider,
                    genai_request_timestamp=moment, price_context=context or None).total_price
                body = {"modelId": model_id, "usage": usage, "at": at,
                        "options": {camel(k): v for k, v in context.items()}}
                got = call("pricing:quote", body, identity=system("test"), source="test")
                checked += 1
                if Decimal(got["usdExact"]) != expected:
                    wrong.append(f"{model_id} {moment} {context} {usage}: {got['usdExact']} "
                                 f"!= {expected}")
    assert wrong == [], f"{len(wrong)} of {checked}, first: {wrong[:3]}"
    assert providers == {p.id for p, _ in genai_models()}  # samples across every provider
    assert checked > 15_000


@pytest.mark.sweep
def test_after_import_quotes_agree_with_litellm_within_1e9(app):
    converted = sources.convert("litellm", LITELLM)
    apply(app, converted, activate=True)
    imported = {key: m["modelId"] for m in converted.models for key in m["keys"]}
    why = reported(converted)
    checked, kinds = 0, set()
    with app.app_context():
        for case_id, _, usage, options, expected, *at in litellm_cases():
            key = case_id.split(" ")[0]
            if key not in imported:
                assert key in why, key  # not imported, so reported with its reasons
                continue
            # LiteLLM's cost is taken at a moment of the week for off-peak cases, else at 0
            # (as test_litellm_prices_agree_within_1e9 prices them): never "now", which moves
            # in and out of a model's off-peak windows with the time of day of the run
            args = {"modelId": imported[key], "usage": usage, "options": options,
                    "at": at[0] if at else 0}
            got = call("pricing:quote", args, identity=system("test"), source="test")
            assert math.isclose(got["usd"], expected, rel_tol=1e-9, abs_tol=0), (
                case_id, got["usd"], expected)
            checked += 1
            kinds.add(model(app, imported[key])["contentType"])
    # tokens with tiers, cache and service tiers, images by size and quality, per-second video
    # by resolution, transcription seconds, speech characters
    assert kinds == {"chat", "embedding", "image", "video", "speech", "transcription"}
    assert checked >= 60


def test_the_progress_of_reading_a_map_counts_its_model_entries():
    """The bar reads as the summary does: `sample_spec` is not an entry (the bar had ended at
    one more than the 'Source: N entries' line)."""
    data = litellm_map()
    read = []
    converted = sources.convert("litellm", data, [], progress=read.append)
    assert sum(read) == sources.litellm_entries(data) == converted.entries == len(data) - 1
