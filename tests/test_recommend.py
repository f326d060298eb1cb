"""models:recommendModel (functions/recommend.py): the best active, capable, not failing model
within the budget, priced by the one engine."""

from __future__ import annotations

from tests.conftest import Api, settle_fleet, within_one_window
from tests.test_catalog import FLASH, RAY, VEO
from tests.test_health import evaluate, record

VIDEO_9S = {"contentType": "video", "usage": {"seconds": 9}, "options": {"quality": "high"}}
CHAT = {"provider": "Acme", "contentType": "chat", "isActive": True}


def chat_model(model_id: str, input_price: str, output_price: str) -> dict:
    return {**CHAT, "modelId": model_id, "name": model_id, "prices": [{
        "effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": input_price},
            {"unit": "output_tokens", "price": output_price}]}]}


def test_the_cheapest_capable_model_and_the_price_charged(seeded, client):
    public = Api(client)  # a public query: no token needed
    chosen = public.value("query", "models:recommendModel", VIDEO_9S)
    assert chosen["modelId"] == FLASH  # 0.12 $/s, against Ray's 0.18; Veo cannot do 9 s
    quote = public.value("query", "pricing:quote", {"modelId": FLASH, "at": chosen["quote"]["at"],
                                                    **{k: VIDEO_9S[k] for k in ("usage",
                                                                                 "options")}})
    assert chosen["quote"] == quote  # the one engine: the price shown is the price charged
    assert chosen["health"]["state"] == "unknown"
    assert chosen["reason"].startswith(f"the cheapest ({quote['credits']} credits")
    assert "of 2 active model(s)" in chosen["reason"]
    eight = public.value("query", "models:recommendModel",
                         {**VIDEO_9S, "usage": {"seconds": 8}})
    assert eight["modelId"] == VEO  # the only one that runs 8 s


def test_no_model_says_why_each_candidate_was_left_out(seeded, client):
    public = Api(client)
    body = public.query("models:recommendModel", {**VIDEO_9S, "maxCredits": 100})
    assert body["status"] == "error" and body["errorData"]["code"] == "NO_MODEL"
    why = {c["modelId"]: c for c in body["errorData"]["candidates"]}
    assert why[VEO]["code"] == "UNSUPPORTED_DURATION"
    assert why[RAY]["code"] == why[FLASH]["code"] == "OVER_BUDGET"
    assert "108 credits, more than maxCredits (100)" in why[FLASH]["reason"]
    fits = public.value("query", "models:recommendModel", {**VIDEO_9S, "maxCredits": 108})
    assert fits["modelId"] == FLASH
    nothing = public.query("models:recommendModel", {"contentType": "speech",
                                                     "usage": {"characters": 10}})
    assert nothing["errorData"] == {"code": "NO_MODEL", "candidates": []}
    assert "no active speech model" in nothing["errorMessage"]
    bad = public.query("models:recommendModel", {**VIDEO_9S, "prefer": "prettiest"})
    assert bad["errorData"] == {"code": "INVALID_ARGUMENT", "field": "prefer"}
    quality = public.query("models:recommendModel", {**VIDEO_9S, "options": {"quality": "8k"}})
    assert {c["code"] for c in quality["errorData"]["candidates"]} == {"UNSUPPORTED_QUALITY"}


def test_failing_models_are_left_out_and_preferences_rank(seeded, api):
    record(seeded, FLASH, 5, 25, seconds=4)  # the cheapest, failing
    record(seeded, RAY, 28, 2, seconds=40)  # 93%: degraded, slow
    evaluate(seeded)
    cheapest = api.value("query", "models:recommendModel", VIDEO_9S)
    assert cheapest["modelId"] == RAY and cheapest["health"]["state"] == "degraded"
    body = api.query("models:recommendModel", {**VIDEO_9S, "maxCredits": 150})
    why = {c["modelId"]: c for c in body["errorData"]["candidates"]}
    assert why[FLASH]["code"] == "FAILING" and "16.7%" in why[FLASH]["reason"]
    assert why[RAY]["code"] == "OVER_BUDGET"

    for model_id, price in (("acme/chat-cheap", "1"), ("acme/chat-fast", "3"),
                            ("acme/chat-sure", "2")):
        api.value("mutation", "models:createModel", chat_model(model_id, price, price))
    record(seeded, "acme/chat-cheap", 25, 5, seconds=9)  # 83%: degraded, slow
    record(seeded, "acme/chat-fast", 29, 1, seconds=0.4)  # 96.7%: healthy, fast
    record(seeded, "acme/chat-sure", 30, 0, seconds=2)  # 100%: healthy
    evaluate(seeded)
    request = {"contentType": "chat", "usage": {"inputTokens": 1000, "outputTokens": 500}}
    pick = {prefer: api.value("query", "models:recommendModel", {**request, "prefer": prefer})
            for prefer in ("cheapest", "fastest", "reliable")}
    assert {p: c["modelId"] for p, c in pick.items()} == {
        "cheapest": "acme/chat-cheap", "fastest": "acme/chat-fast",
        "reliable": "acme/chat-sure"}
    assert pick["cheapest"]["quote"]["usdExact"] == "0.0015"
    assert pick["fastest"]["reason"].startswith("the fastest (p50 ")
    assert pick["reliable"]["reason"].startswith(
        "the most reliable (100% success of 30 generations)")
    # Inactive models are not candidates.
    api.value("mutation", "models:updateModel",
              {"modelId": "acme/chat-cheap", "patch": {"isActive": False}})
    assert api.value("query", "models:recommendModel", request)["modelId"] == "acme/chat-sure"


def test_a_model_is_recommended_only_for_what_it_can_do(seeded, api):
    """A chat model whose context window the request overflows, and an image model asked for a
    quality it does not list, are left out, saying why; the quote refuses that quality too."""
    small = {**chat_model("acme/small", "1", "2"), "contextWindow": 8000}
    api.value("mutation", "models:createModel", small)
    api.value("mutation", "models:createModel", chat_model("acme/large", "3", "6"))
    usage = {"inputTokens": 7000, "outputTokens": 2000}
    chosen = api.value("query", "models:recommendModel", {"contentType": "chat", "usage": usage})
    assert chosen["modelId"] == "acme/large"
    body = api.query("models:recommendModel", {"contentType": "chat", "usage": usage,
                                                 "maxCredits": 1})
    why = {c["modelId"]: c for c in body["errorData"]["candidates"]}
    assert why["acme/small"] == {
        "modelId": "acme/small", "code": "CONTEXT_TOO_SMALL",
        "reason": "its context window holds 8,000 tokens; the request has 9,000"}
    fits = api.value("query", "models:recommendModel",
                     {"contentType": "chat", "usage": {"inputTokens": "7000"}})
    assert fits["modelId"] == "acme/small"  # a count written as a string counts too
    for count in ("NaN", "1e30", -1):  # refused as counts, whatever the model: the caller's
        refused = api.query("models:recommendModel", {"contentType": "chat",  # to fix, not
                                                      "usage": {"inputTokens": count}})  # NO_MODEL
        assert refused["errorData"] == {"code": "INVALID_ARGUMENT",
                                        "field": "usage.inputTokens"}, (count, refused)
    unknown = api.query("models:recommendModel", {"contentType": "chat",
                                                  "usage": {"tokens": 5}})
    assert unknown["errorData"] == {"code": "INVALID_ARGUMENT", "field": "usage.tokens"}
    api.value("mutation", "models:createModel", {
        **CHAT, "modelId": "acme/image", "name": "Image", "contentType": "image",
        "supportedQualities": ["standard", "hd"], "prices": [{"effectiveFrom": None,
            "components": [{"unit": "image", "price": "0.04"},
                           {"unit": "image", "price": "0.08", "when": {"quality": "hd"}}]}]})
    ultra = {"contentType": "image", "usage": {"images": 1}, "options": {"quality": "ultra"}}
    refused = api.query("models:recommendModel", ultra)
    assert [c["code"] for c in refused["errorData"]["candidates"]] == ["UNSUPPORTED_QUALITY"]
    quoted = api.query("pricing:quote", {"modelId": "acme/image", "usage": {"images": 1},
                                         "options": {"quality": "ultra"}})
    assert quoted["errorData"]["code"] == "UNSUPPORTED_QUALITY"
    assert quoted["errorData"]["supported"] == ["standard", "hd"]
    standard = api.value("query", "pricing:quote", {"modelId": "acme/image",
                                                    "usage": {"images": 1},
                                                    "options": {"quality": "standard"}})
    assert standard["usdExact"] == "0.04"


def test_a_recommendation_may_be_narrowed_as_listModels_filters(seeded, api):
    """By provider (any case), category, premium, and capabilities: every one named."""
    api.value("mutation", "models:createModel", chat_model("acme/cheap", "1", "1"))
    api.value("mutation", "models:createModel", {
        **chat_model("other/vision", "2", "2"), "provider": "Other", "isPremium": True,
        "capabilities": ["vision", "tools"]})
    api.value("mutation", "models:createModel", {
        **chat_model("other/tools", "3", "3"), "provider": "Other", "capabilities": ["tools"]})
    ask = {"contentType": "chat", "usage": {"inputTokens": 1000}}

    def chosen(**narrowed) -> str:
        return api.value("query", "models:recommendModel", {**ask, **narrowed})["modelId"]

    assert chosen() == "acme/cheap"
    assert chosen(provider="other") == chosen(capabilities=["vision"]) == "other/vision"
    assert chosen(capabilities=["tools"], isPremium=False) == "other/tools"
    assert chosen(capabilities=["tools", "vision"]) == "other/vision"
    assert "of 2 active model(s)" in api.value("query", "models:recommendModel", {
        **ask, "capabilities": ["tools"]})["reason"]
    none = api.query("models:recommendModel", {**ask, "provider": "Acme",
                                               "capabilities": ["vision"]})
    assert none["errorData"] == {"code": "NO_MODEL", "candidates": []}
    assert 'no active chat model with provider "Acme" and capabilities vision' in (
        none["errorMessage"])
    for bad in ({"capabilities": ["telepathy"]}, {"capabilities": []},
                {"capabilities": ["tools", "tools"]}, {"isPremium": "yes"}):
        refused = api.query("models:recommendModel", {**ask, **bad})
        assert refused["errorData"]["code"] == "INVALID_ARGUMENT", bad
        assert refused["errorData"]["field"].startswith(next(iter(bad))), refused


def many_chat_models(api, count: int) -> None:
    for i in range(count):
        api.value("mutation", "models:createModel", chat_model(f"acme/m{i}", "1", str(i + 1)))
    # Their echoes, heard later by the app's listener, would drop the held answers that the
    # tests after this count as one call each.
    settle_fleet(api.client.application)


def test_a_recommendation_weighs_against_the_rate_limit_by_the_models_it_prices(
        seeded, api, client, monkeypatch):
    """It prices every candidate: a call per MODELS_PER_CALL of them (40 models: 3 calls), so
    an address asking new recommendations all the time is held back sooner than by one call
    each. A repeated request, answered as held, is one call."""
    # Held answers are also dropped at a recheck (engine/marks.py, every RECHECK_SECONDS) that
    # finds a commit since the last: CI once saw one between two repeated requests, and the
    # answer computed again was rightly weighed again (as test_wire's held_for_a_minute)
    monkeypatch.setattr("engine.marks.RECHECK_SECONDS", 60.0)
    many_chat_models(api, 40)
    seeded.config["RATE_LIMIT_PER_MINUTE"] = 10

    def ask(n: int) -> int:
        return client.post("/api/query", json={"path": "models:recommendModel", "args": {
            "contentType": "chat", "usage": {"inputTokens": 1000 + n}}}).status_code

    attempts = iter(range(2))

    def attempt() -> tuple[list[int], list[int]]:
        # A second attempt (a minute on) asks what the first did not: nothing of it is held.
        base = 100 * next(attempts)
        fresh = [ask(base + n) for n in range(5)]
        client.environ_base["REMOTE_ADDR"] = f"127.0.0.{3 + base // 100}"  # its own count
        try:
            repeated = [ask(base + 99) for _ in range(9)]
        finally:
            del client.environ_base["REMOTE_ADDR"]
        return fresh, repeated

    fresh, repeated = within_one_window(attempt)
    assert fresh == [200, 200, 200, 200, 429]  # 3 + 3 + 3 + 3: past 10 after the 4th
    assert repeated == [200] * 8 + [429]  # 3, then one call each


def test_reliable_weighs_a_success_rate_by_the_generations_behind_it(seeded, api):
    """4 successes of 4 are luck more than evidence: 995 of 1,000 is the more reliable model,
    though its rate is lower; a model without data comes last."""
    for model_id in ("acme/lucky", "acme/proven", "acme/untried"):
        api.value("mutation", "models:createModel", chat_model(model_id, "1", "1"))
    record(seeded, "acme/lucky", 4, 0, seconds=1)
    record(seeded, "acme/proven", 995, 5, seconds=1)
    evaluate(seeded)
    request = {"contentType": "chat", "usage": {"inputTokens": 10}, "prefer": "reliable"}
    chosen = api.value("query", "models:recommendModel", request)
    assert chosen["modelId"] == "acme/proven"
    assert chosen["reason"].startswith("the most reliable (99.5% success of 1,000 generations)")
    api.value("mutation", "models:setModelsActive", {"modelIds": ["acme/proven"],
                                                     "isActive": False})
    assert api.value("query", "models:recommendModel", request)["modelId"] == "acme/lucky"
