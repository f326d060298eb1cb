"""pricing:getCreditCost: exact quotes per duration and quality."""

from __future__ import annotations

import pytest

from tests.test_catalog import FLASH, RAY, VEO, error


def quote(api, **args):
    return api.query("pricing:getCreditCost", args)


@pytest.mark.parametrize("model_id,duration,quality,usd,credits", [
    (VEO, None, "standard", 6.0, 600),
    (VEO, 8, "ultra", 6.0, 600),
    (RAY, 5, "standard", 0.9, 90),
    (RAY, 9, "high", 1.62, 162),
    (FLASH, 5, "standard", 0.6, 60),
    (FLASH, 9, "ultra", 1.08, 108),
])
def test_seed_prices(seeded, api, model_id, duration, quality, usd, credits):
    args = {"modelId": model_id, "quality": quality}
    if duration is not None:
        args["duration"] = duration
    value = quote(api, **args)["value"]
    assert value["usd"] == usd and value["credits"] == credits
    assert value["modelId"] == model_id and value["quality"] == quality


def test_a_quality_in_other_case_is_answered_as_the_model_spells_it(seeded, api):
    """Options match ASCII case aside (prices.same_option); the answer names the model's."""
    shouted = quote(api, modelId=RAY.upper(), duration=9, quality="HIGH")["value"]
    assert shouted == quote(api, modelId=RAY, duration=9, quality="high")["value"]
    assert shouted["modelId"] == RAY and shouted["quality"] == "high"


def test_quality_multiplier_and_rounding_up_are_exact(seeded, api):
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {
        "costPerSecond": 0.123457, "qualityMultipliers": {"high": 1.5, "ultra": 2.25}}})
    high = quote(api, modelId=RAY, duration=9, quality="high")["value"]
    # 0.123457 * 9 * 1.5 = 1.6666695 USD -> 166.66695 credits -> 167
    assert high["usdExact"] == "1.6666695" and high["credits"] == 167
    assert high["qualityMultiplier"] == 1.5 and high["costPerSecond"] == 0.123457
    standard = quote(api, modelId=RAY, duration=5, quality="standard")["value"]
    assert standard["usdExact"] == "0.617285" and standard["credits"] == 62
    assert standard["qualityMultiplier"] == 1.0


def test_float_noise_in_a_price_is_refused(seeded, api):
    body = api.mutation("models:updateModel",
                        {"modelId": RAY, "patch": {"costPerSecond": 0.1 + 0.2}})
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": "costPerSecond"}


def test_unsupported_requests_say_what_is_supported(seeded, api):
    body = quote(api, modelId=RAY, duration=7, quality="high")
    assert error(body)["code"] == "UNSUPPORTED_DURATION"
    assert error(body)["supported"] == [5, 9] and "5 s, 9 s" in body["errorMessage"]
    body = quote(api, modelId=VEO, duration=5, quality="high")
    assert error(body)["code"] == "UNSUPPORTED_DURATION" and "8 s" in body["errorMessage"]
    body = quote(api, modelId=RAY, duration=5, quality="4k")
    assert error(body)["code"] == "UNSUPPORTED_QUALITY"
    assert "standard, high, ultra" in body["errorMessage"]
    body = quote(api, modelId=RAY, quality="high")
    assert error(body) == {"code": "INVALID_ARGUMENT", "field": "duration"}
    assert error(quote(api, modelId="no/such", quality="high"))["code"] == "NOT_FOUND"
    api.value("mutation", "models:deleteModel", {"modelId": RAY})
    assert error(quote(api, modelId=RAY, duration=5, quality="high"))["code"] == "INACTIVE"
    billed = quote(api, modelId=RAY, duration=9, quality="high", at=1_790_000_000_000)
    assert billed["value"]["credits"] == 162  # a moment named: a job's, whatever its state since


def test_credits_per_usd_is_configurable(seeded, api):
    seeded.config["CREDITS_PER_USD"] = __import__("decimal").Decimal("7")
    value = quote(api, modelId=RAY, duration=9, quality="high")["value"]
    assert value["credits"] == 12  # 1.62 * 7 = 11.34 -> 12
