"""pricing:quote: one engine for every kind of model, exact, scheduled in time."""

from __future__ import annotations

import time

import pytest

from engine.cache import VERSION
from engine.errors import FunctionError
from engine.runtime import ANONYMOUS, call
from tests.test_catalog import RAY, VEO, error
from tests.test_every_kind import CHAT

DAY = 86_400_000

GEMINI = {
    "modelId": "google/gemini-2.5-pro", "name": "Gemini 2.5 Pro", "provider": "Google",
    "contentType": "chat",
    "prices": [{"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": "1.25", "tiers": [{"start": 200000, "price": "2.5"}]},
        {"unit": "cache_read_tokens", "price": "0.31",
         "tiers": [{"start": 200000, "price": "0.625"}]},
        {"unit": "output_tokens", "price": "10", "tiers": [{"start": 200000, "price": "15"}]},
    ]}],
}
IMAGE = {
    "modelId": "openai/dall-e-3", "name": "DALL·E 3", "provider": "OpenAI",
    "contentType": "image", "supportedQualities": ["standard", "hd"],
    "prices": [{"effectiveFrom": None, "options": {"size": ["1024x1024", "1024x1792"],
                                                  "quality": ["standard", "hd"]},
                "components": [
        {"unit": "image", "price": "0.04", "when": {"size": "1024x1024"}},
        {"unit": "image", "price": "0.08", "when": {"size": "1024x1024", "quality": "hd"}},
        {"unit": "image", "price": "0.08", "when": {"size": "1024x1792"}},
        {"unit": "image", "price": "0.12", "when": {"size": "1024x1792", "quality": "hd"}},
    ]}],
}
VIDEO_BY_RESOLUTION = {
    "modelId": "acme/motion", "name": "Acme Motion", "provider": "Acme",
    "contentType": "video", "supportedDurations": [5, 10], "supportedQualities": ["standard"],
    "prices": [{"effectiveFrom": None, "options": {"resolution": ["720p", "1080p"]},
                "components": [
        {"unit": "second", "price": "0.1", "when": {"resolution": "720p"}},
        {"unit": "second", "price": "0.2", "when": {"resolution": "1080p"}},
    ]}],
}


def quote(api, model_id, usage, **extra):
    return api.query("pricing:quote", {"modelId": model_id, "usage": usage, **extra})


def test_a_chat_quote_prices_input_cache_and_output_exactly(seeded, api):
    api.value("mutation", "models:createModel", {**CHAT, "isActive": True})
    answer = api.value("query", "pricing:quote", {"modelId": CHAT["modelId"], "usage": {
        "inputTokens": 1000, "cacheReadTokens": 200, "outputTokens": 500}})
    assert [(line["unit"], line["quantity"], line["unitPrice"], line["usdExact"])
            for line in answer["lines"]] == [
        ("input_tokens", 800, "2.5", "0.002"), ("cache_read_tokens", 200, "1.25", "0.00025"),
        ("output_tokens", 500, "10", "0.005")]
    assert (answer["usdExact"], answer["credits"], answer["modelId"]) == (
        "0.00725", 1, CHAT["modelId"])


def test_tiers_price_the_whole_request_above_their_start(seeded, api):
    api.value("mutation", "models:createModel", GEMINI)
    at_start = api.value("query", "pricing:quote", {"modelId": GEMINI["modelId"], "usage": {
        "inputTokens": 200000, "outputTokens": 1000}})
    above = api.value("query", "pricing:quote", {"modelId": GEMINI["modelId"], "usage": {
        "inputTokens": 200001, "outputTokens": 1000}})
    assert at_start["usdExact"] == "0.26"  # 200,000 x 1.25/1M + 1,000 x 10/1M
    assert above["usdExact"] == "0.5150025"  # 200,001 x 2.5/1M + 1,000 x 15/1M


def test_images_by_size_and_quality_and_video_by_resolution(seeded, api):
    api.value("mutation", "models:createModel", IMAGE)
    api.value("mutation", "models:createModel", VIDEO_BY_RESOLUTION)
    two_hd = api.value("query", "pricing:quote", {
        "modelId": IMAGE["modelId"], "usage": {"images": 2},
        "options": {"size": "1024x1792", "quality": "hd"}})
    assert two_hd["usdExact"] == "0.24"
    tall = api.value("query", "pricing:quote", {
        "modelId": VIDEO_BY_RESOLUTION["modelId"], "usage": {"seconds": 10},
        "options": {"resolution": "1080p"}})
    assert (tall["usdExact"], tall["credits"]) == ("2", 200)
    unknown = quote(api, VIDEO_BY_RESOLUTION["modelId"], {"seconds": 5},
                    options={"resolution": "4k"})
    assert error(unknown) == {"code": "UNSUPPORTED_OPTION", "field": "options.resolution",
                              "supported": ["1080p", "720p"]}
    odd = quote(api, VIDEO_BY_RESOLUTION["modelId"], {"seconds": 7},
                options={"resolution": "720p"})
    assert (error(odd)["code"], error(odd)["field"]) == ("UNSUPPORTED_DURATION", "usage.seconds")
    # getCreditCost has no argument for a resolution: it says where to ask instead
    shorthand = api.query("pricing:getCreditCost", {
        "modelId": VIDEO_BY_RESOLUTION["modelId"], "duration": 5, "quality": "standard"})
    assert error(shorthand) == {"code": "UNSUPPORTED_OPTION", "field": "modelId",
                                "supported": ["1080p", "720p"]}
    assert "pricing:quote with options.resolution" in shorthand["errorMessage"]
    # nor when a default price leaves the resolution out: a 4K job is not the 720p price
    api.value("mutation", "models:createModel", {
        **VIDEO_BY_RESOLUTION, "modelId": "acme/motion-2", "prices": [{
            "effectiveFrom": None, "components": [
                {"unit": "second", "price": "0.4"},
                {"unit": "second", "price": "0.8", "when": {"resolution": "4k"}}]}]})
    defaulted = api.query("pricing:getCreditCost", {
        "modelId": "acme/motion-2", "duration": 5, "quality": "standard"})
    assert error(defaulted) == {"code": "UNSUPPORTED_OPTION", "field": "modelId",
                                "supported": ["4k"]}
    assert "pricing:quote with options.resolution" in defaulted["errorMessage"]
    # a refusal names the argument the quote was given, not getCreditCost's
    bad_quality = quote(api, RAY, {"seconds": 9}, options={"quality": "cinematic"})
    assert (error(bad_quality)["code"], error(bad_quality)["field"]) == (
        "UNSUPPORTED_QUALITY", "options.quality")


def test_the_seed_video_models_quote_as_they_always_did(seeded, api):
    ray = api.value("query", "pricing:getCreditCost",
                    {"modelId": RAY, "duration": 9, "quality": "high"})
    assert ray == {"modelId": RAY, "duration": 9, "quality": "high", "pricingUnit": "second",
                   "costPerSecond": 0.18, "qualityMultiplier": 1.0, "usd": 1.62,
                   "usdExact": "1.62", "credits": 162}
    veo = api.value("query", "pricing:quote", {"modelId": VEO, "usage": {"seconds": 8},
                                               "options": {"quality": "ultra"}})
    assert (veo["usdExact"], veo["credits"]) == ("6", 600)
    for seconds in (8.0, "8"):  # read as every count is; 8.5 is not a video's duration
        assert api.value("query", "pricing:quote", {
            "modelId": VEO, "usage": {"seconds": seconds},
            "options": {"quality": "ultra"}})["usdExact"] == "6"
    for seconds, message in ((8.5, "usage.seconds must be a whole number of seconds for a "
                                   "video model"), ("-8", "usage.seconds cannot be negative")):
        refused = api.post("query", "pricing:quote", {"modelId": VEO, "usage": {
            "seconds": seconds}, "options": {"quality": "ultra"}}).get_json()
        assert (refused["errorData"]["field"], refused["errorMessage"]) == (
            "usage.seconds", message)
    api.value("mutation", "models:updateModel", {
        "modelId": RAY, "patch": {"qualityMultipliers": {"ultra": 1.5}}})
    ultra = api.value("query", "pricing:getCreditCost",
                      {"modelId": RAY, "duration": 5, "quality": "ultra"})
    assert (ultra["qualityMultiplier"], ultra["usdExact"], ultra["credits"]) == (1.5, "1.35", 135)


def test_a_moment_named_prices_a_model_whatever_its_state_since(seeded, api):
    """A job that ran before its model was paused, disabled or deleted is billed at `at`;
    now, only what is offered (active) is priced."""
    api.value("mutation", "models:createModel", {**CHAT, "isActive": True})
    model, usage = CHAT["modelId"], {"inputTokens": 1000}
    ran = int(time.time() * 1000) - 60_000
    priced = quote(api, model, usage, at=ran)["value"]
    for change, args in (("models:updateModel", {"modelId": model, "patch": {"isActive": False}}),
                         ("models:deleteModel", {"modelId": model})):
        api.value("mutation", change, args)
        assert error(quote(api, model, usage))["code"] == "INACTIVE"
        assert quote(api, model, usage, at=ran)["value"] == priced
        later = quote(api, model, usage, at=ran + 120_000_000)["value"]  # a preview, too
        assert later["usdExact"] == priced["usdExact"] == "0.0025"


def test_each_line_says_which_options_priced_it(seeded, api):
    """A tier the model has no price for (or a typo) is priced by the default price, as LiteLLM
    prices it: its lines say so by naming no `when`. Declared values refuse any other."""
    tiered = {**CHAT, "modelId": "acme/tiered", "isActive": True, "prices": [{
        "effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "2.5"},
            {"unit": "input_tokens", "price": "5", "when": {"serviceTier": "priority"}}]}]}
    api.value("mutation", "models:createModel", tiered)
    usage = {"inputTokens": 1000}

    def lines(tier: str) -> list[tuple]:
        answer = quote(api, "acme/tiered", usage, options={"serviceTier": tier})["value"]
        return [(line["unitPrice"], line.get("when")) for line in answer["lines"]]

    assert lines("PRIORITY") == [("5", {"serviceTier": "priority"})]
    assert lines("flex") == lines("prority") == [("2.5", None)]
    declared = {**tiered["prices"][0], "options": {"serviceTier": ["priority", "standard"]}}
    api.value("mutation", "models:updateModel", {"modelId": "acme/tiered",
                                                 "patch": {"prices": [declared]}})
    assert lines("standard") == [("2.5", None)]
    refused = quote(api, "acme/tiered", usage, options={"serviceTier": "flex"})
    assert error(refused) == {"code": "UNSUPPORTED_OPTION", "field": "options.serviceTier",
                              "supported": ["priority", "standard"]}


def test_refusals_name_the_problem_and_change_nothing(seeded, api):
    api.value("mutation", "models:createModel", {**CHAT, "isActive": True})
    model = CHAT["modelId"]
    assert error(quote(api, model, {"images": 1}))["code"] == "UNSUPPORTED_USAGE"
    assert error(quote(api, model, {"inputTokens": -1}))["code"] == "INVALID_ARGUMENT"
    assert error(quote(api, model, {"inputTokens": 1.5}))["code"] == "INVALID_ARGUMENT"
    assert error(quote(api, model, {"inputTokens": 10, "cacheReadTokens": 11}))["code"] == (
        "INVALID_ARGUMENT")
    assert error(quote(api, model, {"tokens": 1}))["code"] == "INVALID_ARGUMENT"
    assert error(quote(api, "nope/x", {"inputTokens": 1}))["code"] == "NOT_FOUND"
    api.value("mutation", "models:updateModel", {"modelId": model, "patch": {"isActive": False}})
    assert error(quote(api, model, {"inputTokens": 1}))["code"] == "INACTIVE"
    both = api.mutation("models:updateModel", {"modelId": RAY, "patch": {
        "prices": CHAT["prices"]}})
    assert error(both) == {"code": "INVALID_ARGUMENT", "field": "costPerSecond"}
    bad_price = api.mutation("models:createModel", {**CHAT, "modelId": "openai/bad", "prices": [
        {"effectiveFrom": None, "components": [{"unit": "input_tokens", "price": "-1"}]}]})
    assert error(bad_price)["field"].startswith("prices[0].components[0]")
    unknown = api.mutation("models:createModel", {**CHAT, "modelId": "openai/bad", "prices": [
        {"effectiveFrom": None, "components": [{"unit": "input_tokens", "price": "1",
                                                "when": {"colour": "red"}}]}]})
    assert error(unknown)["field"] == "prices[0].components[0].when.colour"
    assert unknown["errorMessage"].startswith(  # the caller's path, once
        "prices[0].components[0].when: unknown key 'colour'; known: cacheType, processing")


def sent_as_written(api, endpoint: str, path: str, args: str) -> dict:
    """A call whose arguments are JSON text as written (a number a double does not hold)."""
    body = f'{{"path": "{path}", "format": "json", "args": {args}}}'
    return api.client.post(f"/api/{endpoint}", data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {api.token}"}).get_json()


@pytest.mark.parametrize("number", [
    "0.99999999999999999999", "1.0000000000000001",  # a double: 1.0
    "1e-400",  # a double: 0.0
])
def test_a_json_number_is_checked_as_sent_not_as_the_double_it_rounds_to(seeded, api, number):
    """A count sent as a JSON number a double does not hold is refused, as the same digits
    sent as a string are, never priced as the double it rounds to. So is a whole number, and
    an amount of money: it is kept exactly as sent, or not at all."""
    api.value("mutation", "models:createModel", {**CHAT, "isActive": True, "prices": [
        {"effectiveFrom": None, "components": [{"unit": "input_tokens", "price": "1"},
                                               {"unit": "audio_hour", "price": "0.36"}]}]})
    model = CHAT["modelId"]
    for key, why in (("inputTokens", "must be a whole number"),
                     ("audioSeconds", "has more than")):  # seconds may be fractional
        answer = sent_as_written(api, "query", "pricing:quote",
                                 f'{{"modelId": "{model}", "usage": {{"{key}": {number}}}}}')
        assert answer["errorData"] == {"code": "INVALID_ARGUMENT", "field": f"usage.{key}"}
        assert why in answer["errorMessage"], answer
        assert quote(api, model, {key: number})["errorData"] == answer["errorData"]
    duration = "9" + number[1:]  # 9.99…, 9.0…01, 9e-400
    answer = sent_as_written(api, "query", "pricing:getCreditCost",
                             f'{{"modelId": "{RAY}", "quality": "high", "duration": {duration}}}')
    assert answer["errorData"] == {"code": "INVALID_ARGUMENT", "field": "duration"}, answer
    refused = sent_as_written(api, "mutation", "models:updateModel", f'{{"modelId": "{RAY}", '
                              '"patch": {"costPerSecond": 0.12345678901234567890123}}')
    assert refused["errorData"] == {"code": "INVALID_ARGUMENT", "field": "patch.costPerSecond"}
    assert refused["errorMessage"] == ("patch.costPerSecond must have at most 6 decimal "
                                       "places, got 0.12345678901234567890123")
    infinite = sent_as_written(api, "query", "pricing:quote",
                               f'{{"modelId": "{model}", "usage": {{"inputTokens": 1e400}}}}')
    assert infinite["errorMessage"] == ("usage.inputTokens is too large: past the largest "
                                        "number a double holds (about 1.8e308)")
    as_number = sent_as_written(api, "mutation", "models:updateModel", f'{{"modelId": "{model}",'
                                ' "patch": {"prices": [{"effectiveFrom": null, "components": '
                                '[{"unit": "input_tokens", "price": 2.5000000000000000001}]}]}}')
    assert "got 2.5000000000000000001" in as_number["errorMessage"]  # not the double's 2.5
    refused = sent_as_written(api, "mutation", "models:updateModel", f'{{"modelId": "{RAY}", '
                              '"patch": {"qualityMultipliers": {"high": 1.00000000000000000001}}}')
    assert refused["errorData"] == {"code": "INVALID_ARGUMENT",
                                    "field": "patch.qualityMultipliers.high"}  # a price too
    for policy, said in (('{"degradedSuccessRate": 100.00000000000000000001}',
                          "must be at most 100, got 100.00000000000000000001 (100.0 as a "
                          "double)"),
                         ('{"degradedP95Seconds": 1e-400}',
                          "must be greater than 0, got 1e-400 (0.0 as a double)")):
        refused = sent_as_written(api, "mutation", "models:updateModel", f'{{"modelId": '
                                  f'"{RAY}", "patch": {{"healthPolicy": {policy}}}}}')
        assert refused["errorData"]["code"] == "INVALID_ARGUMENT", refused
        assert said in refused["errorMessage"], refused


def test_an_option_with_a_space_around_it_is_refused_not_priced_by_default(seeded, api):
    """"1080p " names no price, and fell to the default one (under-billing a dearer one)
    where the entry declares no `options`."""
    api.value("mutation", "models:createModel", {
        **VIDEO_BY_RESOLUTION, "isActive": True, "prices": [{"effectiveFrom": None,
                                                              "components": [
            {"unit": "second", "price": "0.1"},
            {"unit": "second", "price": "0.2", "when": {"resolution": "1080p"}}]}]})
    asked = {"seconds": 5}
    assert quote(api, "acme/motion", asked, options={"resolution": "1080p"})["value"][
        "usdExact"] == "1"
    for spelt in ("1080p ", " 1080p", "1080p\t"):
        refused = quote(api, "acme/motion", asked, options={"resolution": spelt})
        assert error(refused) == {"code": "INVALID_ARGUMENT", "field": "options.resolution"}
        assert "must not start or end with a space" in refused["errorMessage"]
    second = {"unit": "second", "price": "0.3"}
    for entry in ({"components": [{**second, "when": {"resolution": "4K "}}]},
                  {"components": [second], "options": {"resolution": [" 4K"]}}):
        refused = api.mutation("models:updateModel", {"modelId": "acme/motion", "patch": {
            "prices": [{"effectiveFrom": None, **entry}]}})  # a price no quote could name
        assert error(refused)["code"] == "INVALID_ARGUMENT", refused
        assert "no space around" in refused["errorMessage"], refused


def test_a_video_quote_without_seconds_is_its_fixed_duration_or_refused(seeded, api):
    """It was a $0 quote (and recommendModel found every model free within maxCredits 0): a
    video model with one duration is quoted at it, as getCreditCost does; another is refused.
    recommendModel refuses an empty usage outright."""
    assert error(quote(api, RAY, {})) == {"code": "INVALID_ARGUMENT", "field": "usage.seconds"}
    per_request = {**VIDEO_BY_RESOLUTION, "modelId": "acme/clip-per-request", "isActive": True,
                   "prices": [{"effectiveFrom": None, "components": [
                       {"unit": "request", "price": "0.5"}]}]}
    api.value("mutation", "models:createModel", per_request)  # no seconds in its price
    assert api.value("query", "pricing:quote", {
        "modelId": "acme/clip-per-request", "usage": {"requests": 1}})["usdExact"] == "0.5"
    assert api.value("query", "pricing:quote", {  # its quality spelt otherwise is its quality
        "modelId": VEO, "usage": {}, "options": {"quality": "STANDARD"}})["credits"] == (
        api.value("query", "pricing:getCreditCost", {"modelId": VEO, "quality": "Standard"})[
            "credits"])
    fixed = api.value("query", "pricing:getCreditCost", {"modelId": VEO, "quality": "standard"})
    assert api.value("query", "pricing:quote", {
        "modelId": VEO, "usage": {}, "options": {"quality": "standard"}})["credits"] == (
        fixed["credits"])
    for usage in ({}, {"seconds": 0, "requests": 0}):
        nothing = api.query("models:recommendModel",
                            {"contentType": "video", "usage": usage, "maxCredits": 0})
        assert error(nothing) == {"code": "INVALID_ARGUMENT", "field": "usage"}
    # an empty usage is a mistake, not a $0 quote, unless the price counts a request by itself
    api.value("mutation", "models:createModel", {**CHAT, "isActive": True})
    empty = api.query("pricing:quote", {"modelId": CHAT["modelId"], "usage": {}})
    assert error(empty) == {"code": "INVALID_ARGUMENT", "field": "usage"}
    assert "priced by cacheReadTokens, inputTokens, outputTokens" in empty["errorMessage"]
    assert api.value("query", "pricing:quote", {"modelId": CHAT["modelId"], "usage": {
        "inputTokens": 0}})["usdExact"] == "0"  # zero, said: zero
    assert api.value("query", "pricing:quote", {
        "modelId": "acme/clip-per-request", "usage": {}})["usdExact"] == "0.5"
    # free under the options given (a fee only for batch processing): $0 is its price
    api.value("mutation", "models:createModel", {
        **CHAT, "modelId": "acme/free-chat", "isActive": True, "prices": [
        {"effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "0"}, {"unit": "output_tokens", "price": "0"},
            {"unit": "request", "price": "0.01", "when": {"processing": "batch"}}]}]})
    assert api.value("query", "pricing:quote", {"modelId": "acme/free-chat", "usage": {}})[
        "usdExact"] == "0"
    # a fee by resolution, no resolution given: the missing option is named, not the usage
    api.value("mutation", "models:createModel", {
        **per_request, "modelId": "acme/clip-by-resolution", "prices": [{
            "effectiveFrom": None, "options": {"resolution": ["720p", "1080p"]},
            "components": [
                {"unit": "request", "price": "0.3", "when": {"resolution": "720p"}},
                {"unit": "request", "price": "0.5", "when": {"resolution": "1080p"}}]}]})
    unsaid = api.query("pricing:quote", {"modelId": "acme/clip-by-resolution", "usage": {}})
    assert error(unsaid)["field"] == "options.resolution"
    # a fraction of a second is no video's: refused once, not once per candidate
    fraction = api.query("models:recommendModel", {"contentType": "video",
                                                   "usage": {"seconds": 9.5}})
    assert error(fraction) == {"code": "INVALID_ARGUMENT", "field": "usage.seconds"}


def test_usage_a_price_cannot_read_one_way_is_refused_over_http(seeded, api):
    """Over the wire as in the engine: a request fee is for one request or more, and two
    overlapping counts need their overlap when it is priced (genai-prices' rule)."""
    realtime = {**CHAT, "modelId": "openai/realtime-test", "isActive": True, "prices": [
        {"effectiveFrom": None, "components": [
            {"unit": "request", "price": "0.01"}, {"unit": "input_tokens", "price": "1"},
            {"unit": "cache_read_tokens", "price": "0.1"},
            {"unit": "input_audio_tokens", "price": "10"},
            {"unit": "cache_audio_read_tokens", "price": "1"},
            {"unit": "output_tokens", "price": "2"}]}]}
    api.value("mutation", "models:createModel", realtime)
    model = realtime["modelId"]
    refused = quote(api, model, {"inputTokens": 10, "requests": 0})
    assert error(refused) == {"code": "INVALID_ARGUMENT", "field": "usage.requests"}
    usage = {"inputTokens": 1000, "cacheReadTokens": 500, "inputAudioTokens": 500}
    refused = quote(api, model, usage)
    assert error(refused) == {"code": "INVALID_ARGUMENT", "field": "usage.cacheAudioReadTokens"}
    assert quote(api, model, {**usage, "cacheAudioReadTokens": 500})["value"][
        "usdExact"] == "0.011"


def test_a_scheduled_price_applies_from_its_time_and_at_prices_any_moment(seeded, api):
    now = int(time.time() * 1000)
    later = now + DAY
    api.value("mutation", "models:createModel", {**CHAT, "isActive": True, "prices": [
        *CHAT["prices"],
        {"effectiveFrom": later, "components": [{"unit": "input_tokens", "price": "2"},
                                                {"unit": "output_tokens", "price": "8"}]}]})
    usage = {"inputTokens": 1_000_000, "outputTokens": 1_000_000}
    before = api.value("query", "pricing:quote", {"modelId": CHAT["modelId"], "usage": usage,
                                                  "at": later - 1})
    after = api.value("query", "pricing:quote", {"modelId": CHAT["modelId"], "usage": usage,
                                                 "at": later})
    current = api.value("query", "pricing:quote", {"modelId": CHAT["modelId"], "usage": usage})
    assert (before["usdExact"], after["usdExact"], current["usdExact"]) == ("12.5", "10", "12.5")
    assert (before["at"], after["at"]) == (later - 1, later)


@pytest.mark.waits
def test_a_scheduled_price_reaches_held_answers_when_its_time_comes(seeded, api):
    """No write happens at the scheduled moment: the answer held for "now" expires then.

    "No write" is read from the database's catalog version, not the host's change mark: on
    PostgreSQL the fleet's listener bumps every mark when it reconnects or misses a
    notification, which a loaded machine did during this wait."""
    start = int(time.time() * 1000) + 5000
    api.value("mutation", "models:createModel", {**CHAT, "isActive": True, "prices": [
        *CHAT["prices"],
        {"effectiveFrom": start, "components": [{"unit": "input_tokens", "price": "5"},
                                                {"unit": "output_tokens", "price": "20"}]}]})
    ask = {"modelId": CHAT["modelId"], "usage": {"inputTokens": 1_000_000}}
    assert api.value("query", "pricing:quote", ask)["usdExact"] == "2.5"
    assert api.value("query", "pricing:quote", ask)["usdExact"] == "2.5"  # held
    version = _catalog_version(seeded)
    deadline = time.monotonic() + 30
    while api.value("query", "pricing:quote", ask)["usdExact"] == "2.5":
        assert time.monotonic() < deadline, "the scheduled price never applied"
        assert time.time() * 1000 < start + 10_000, "an answer was held past the change"
        time.sleep(0.05)
    assert api.value("query", "pricing:quote", ask)["usdExact"] == "5"
    assert time.time() * 1000 >= start
    assert _catalog_version(seeded) == version


def _catalog_version(app) -> int:
    with app.extensions["catalog_db"].engine.connect() as conn:
        return conn.execute(VERSION).scalar_one()


@pytest.mark.waits
def test_a_refusal_for_want_of_a_price_ends_when_the_first_price_starts(seeded, api):
    """A model whose only price starts later is refused NO_PRICE until then: that refusal is
    held (as an answer is) only until the price starts, with no write at that moment."""
    start = int(time.time() * 1000) + 5000
    api.value("mutation", "models:createModel", {**CHAT, "isActive": True, "prices": [
        {"effectiveFrom": start, "components": [{"unit": "input_tokens", "price": "1"}]}]})
    ask = {"modelId": CHAT["modelId"], "usage": {"inputTokens": 1_000_000}}
    refused = api.query("pricing:quote", ask)
    assert refused["errorData"]["code"] == "NO_PRICE"
    with seeded.app_context(), pytest.raises(FunctionError) as until:
        call("pricing:quote", ask, identity=ANONYMOUS, source="test", public=True)
    assert until.value.expires == start  # held (as an answer is) until the price starts
    deadline = time.monotonic() + 30
    while (answer := api.query("pricing:quote", ask))["status"] == "error":
        assert time.monotonic() < deadline, "the refusal was held past the price's start"
        time.sleep(0.05)
    assert answer["value"]["usdExact"] == "1" and time.time() * 1000 >= start


def test_reverting_to_the_simple_price_of_an_older_revision(seeded, api):
    """A model moved from costPerSecond to a schedule can be reverted to its old price."""
    before = api.value("query", "models:getModelById", {"modelId": RAY})
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {
        "costPerSecond": None, "prices": [{"effectiveFrom": None, "components": [
            {"unit": "second", "price": "0.2"}]}]}})
    moved = api.value("query", "pricing:getCreditCost",
                      {"modelId": RAY, "duration": 5, "quality": "standard"})
    assert (moved["costPerSecond"], moved["usdExact"]) == (0.2, "1")
    api.value("mutation", "history:revertModel", {"modelId": RAY,
                                                  "revision": before["revision"]})
    back = api.value("query", "models:getModelById", {"modelId": RAY})
    assert (back["costPerSecond"], back.get("prices")) == (0.18, None)


def test_a_moment_is_milliseconds_or_a_time_with_its_offset(seeded, api):
    """`at` is read as a price entry's effectiveFrom is: the README's own examples write times
    as "2027-01-15T00:00:00Z" (it had taken milliseconds only)."""
    in_ms = api.value("query", "pricing:quote", {"modelId": RAY, "usage": {"seconds": 5},
                                                 "at": 1_799_971_200_000})
    in_words = api.value("query", "pricing:quote", {"modelId": RAY, "usage": {"seconds": 5},
                                                    "at": "2027-01-15T00:00:00Z"})
    assert in_words == in_ms and in_words["at"] == 1_799_971_200_000
    shifted = api.value("query", "pricing:quote", {"modelId": RAY, "usage": {"seconds": 5},
                                                   "at": "2027-01-15T01:00:00+01:00"})
    assert shifted["at"] == 1_799_971_200_000
    for spelt in ("2027-01-15t00:00:00z", "2027-01-15T00:00:00.000000000Z",  # RFC 3339
                  "2027-01-15 00:00:00Z", "2027-01-15T01:00+0100"):  # as people write it
        also = api.value("query", "pricing:quote", {"modelId": RAY, "usage": {"seconds": 5},
                                                    "at": spelt})
        assert also["at"] == 1_799_971_200_000, spelt
    for bad in ("2027-01-15T00:00:00", "next week", -1, True, "2027-W03-5T00:00:00Z",
                "2027-015T00:00:00Z", "2027-01-15T24:00:00Z", "2027-01-15T00:00:00+24:00",
                "2027-01-15T00:00:00.912129+24:00"):  # (not only finer than a millisecond)
        refused = api.query("pricing:quote", {"modelId": RAY, "usage": {"seconds": 5},
                                              "at": bad})
        assert error(refused)["field"] == "at", bad
        assert "a time with its offset" in refused["errorMessage"], bad
    # What a time people send gets wrong is said: Python's isoformat() writes microseconds
    for bad, said in (("2027-01-15T00:00:00.912129+00:00", "at is finer than a millisecond: "
                       "send at most 3 digits after the second (Python: "
                       "isoformat(timespec='milliseconds'))"),
                      ("2027-01-15T00:00:00.000000001Z", "at is finer than a millisecond"),
                      ("2016-12-31T23:59:60Z", "at is a leap second, which Unix time does not "
                       "count: send :59.999 or the next minute")):
        refused = api.query("pricing:quote", {"modelId": RAY, "usage": {"seconds": 5},
                                              "at": bad})
        assert error(refused)["field"] == "at" and refused["errorMessage"].startswith(said)
    scheduled = api.mutation("models:updateModel", {"modelId": RAY, "patch": {"prices": [
        {"effectiveFrom": None, "components": [{"unit": "second", "price": "0.2"}]},
        {"effectiveFrom": "2027-01-15T00:00:00.5001Z",
         "components": [{"unit": "second", "price": "0.3"}]}]}})
    assert error(scheduled)["field"] == "patch.prices[1].effectiveFrom"
    assert "prices[1].effectiveFrom is finer than a millisecond" in scheduled["errorMessage"]
