"""The pricing engine (functions/prices.py): components, options, tiers, schedules, time of day,
exact quotes and the errors a caller maps onto function errors."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from functions.price_maps import combine, from_litellm
from functions.prices import (
    PricingError,
    credit_cost,
    next_change_after,
    quote,
    validate,
    video_schedule,
)

HUNDRED = Decimal(100)
M = 1_000_000  # a token price's `per`
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def error(call) -> PricingError:
    with pytest.raises(PricingError) as caught:
        call()
    return caught.value


def entry(*components, effective_from=None, **extra) -> dict:
    return {"effectiveFrom": effective_from, "components": list(components), **extra}


def c(unit: str, price: str, **extra) -> dict:
    return {"unit": unit, "price": price, **extra}


# A chat model with cache prices and a tier above 200k input tokens (Gemini 2.5 Pro's shape).
CHAT = validate([entry(
    c("input_tokens", "1.25", tiers=[{"start": 200_000, "price": "2.5"}]),
    c("cache_read_tokens", "0.125", tiers=[{"start": 200_000, "price": "0.25"}]),
    c("cache_write_tokens", "1.625"),
    c("output_tokens", "10", tiers=[{"start": 200_000, "price": "15"}]),
    c("input_tokens", "2.25", when={"serviceTier": "priority"}),
)])
# An image model priced per image by size and quality.
IMAGE = validate([entry(
    c("image", "0.04", when={"size": "1024x1024", "quality": "standard"}),
    c("image", "0.08", when={"size": "1024x1792", "quality": "standard"}),
    c("image", "0.08", when={"size": "1024x1024", "quality": "hd"}),
    c("image", "0.12", when={"size": "1024x1792", "quality": "hd"}),
)])
# A video model priced per second of output by resolution (720p by default).
VIDEO = validate([entry(
    c("second", "0.4"),
    c("second", "0.6", when={"resolution": "1080p"}),
    c("second", "0.8", when={"resolution": "4k"}),
)])


# ---------------------------------------------------------------- the seed video models


@pytest.mark.parametrize("cost,seconds,quality,usd,credits", [
    ("0.75", 8, "standard", 6.0, 600),  # google/veo-3
    ("0.75", 8, "ultra", 6.0, 600),
    ("0.18", 5, "standard", 0.9, 90),  # luma/ray-2-720p
    ("0.18", 9, "high", 1.62, 162),
    ("0.12", 5, "standard", 0.6, 60),  # luma/ray-flash-2-540p
    ("0.12", 9, "ultra", 1.08, 108),
])
def test_the_seed_video_models_quote_as_today(cost, seconds, quality, usd, credits):
    answer = credit_cost(video_schedule(cost), model_id="luma/ray-2-720p", seconds=seconds,
                         quality=quality, at=T0, credits_per_usd=HUNDRED)
    assert answer == {"modelId": "luma/ray-2-720p", "duration": seconds, "quality": quality,
                      "pricingUnit": "second", "costPerSecond": float(cost),
                      "qualityMultiplier": 1.0, "usd": usd, "usdExact": format(
                          Decimal(cost) * seconds, "f").rstrip("0").rstrip("."),
                      "credits": credits}


def test_quality_multipliers_are_components_priced_exactly():
    schedule = video_schedule(0.123457, {"high": 1.5, "ultra": 2.25, "standard": 1})
    assert schedule == [entry(c("second", "0.123457"),
                              c("second", "0.1851855", when={"quality": "high"}),
                              c("second", "0.27777825", when={"quality": "ultra"}))]
    high = credit_cost(schedule, model_id="m", seconds=9, quality="high", at=T0,
                       credits_per_usd=HUNDRED)
    # 0.123457 * 9 * 1.5 = 1.6666695 USD -> 166.66695 credits -> 167
    assert high["usdExact"] == "1.6666695" and high["credits"] == 167
    assert high["qualityMultiplier"] == 1.5 and high["costPerSecond"] == 0.123457
    standard = credit_cost(schedule, model_id="m", seconds=5, quality="standard", at=T0,
                           credits_per_usd=HUNDRED)
    assert standard["usdExact"] == "0.617285" and standard["credits"] == 62
    assert standard["qualityMultiplier"] == 1.0
    seven = credit_cost(schedule, model_id="m", seconds=9, quality="high", at=T0,
                        credits_per_usd=Decimal("7"))
    assert seven["credits"] == 12  # 1.6666695 * 7 = 11.6666865 -> 12


def test_credits_round_up_only_what_is_not_whole():
    assert quote(video_schedule("0.2"), {"seconds": 5}, {}, T0, HUNDRED)["credits"] == 100
    assert quote(video_schedule("0.200001"), {"seconds": 5}, {}, T0, HUNDRED)["credits"] == 101


# ---------------------------------------------------------------- tokens, tiers, cache


def test_a_chat_quote_pays_cached_tokens_at_the_cache_rate_and_the_rest_at_input():
    answer = quote(CHAT, {"inputTokens": 10_000, "cacheReadTokens": 4_000,
                          "cacheWriteTokens": 1_000, "outputTokens": 500}, None, T0, HUNDRED)
    assert answer == {
        "at": T0,
        "lines": [
            {"unit": "input_tokens", "quantity": 5_000, "unitPrice": "1.25", "per": M,
             "usdExact": "0.00625"},
            {"unit": "cache_read_tokens", "quantity": 4_000, "unitPrice": "0.125", "per": M,
             "usdExact": "0.0005"},
            {"unit": "cache_write_tokens", "quantity": 1_000, "unitPrice": "1.625", "per": M,
             "usdExact": "0.001625"},
            {"unit": "output_tokens", "quantity": 500, "unitPrice": "10", "per": M,
             "usdExact": "0.005"},
        ],
        "usd": 0.013375, "usdExact": "0.013375", "credits": 2}
    assert json.loads(json.dumps(answer)) == answer


def test_above_a_tier_start_the_whole_request_pays_the_tier_rate():
    def total(n):
        return quote(CHAT, {"inputTokens": n, "cacheReadTokens": 100_000, "outputTokens": 1000},
                     None, T0, HUNDRED)

    at_start, above = total(200_000), total(200_001)
    assert [line["unitPrice"] for line in at_start["lines"]] == ["1.25", "0.125", "10"]
    assert [line["unitPrice"] for line in above["lines"]] == ["2.5", "0.25", "15"]
    # (100,001 x 2.5 + 100,000 x 0.25 + 1,000 x 15) / 1M
    assert above["usdExact"] == "0.2900025"


def test_a_narrow_count_without_a_price_is_paid_at_the_broader_rate():
    schedule = validate([entry(c("input_tokens", "3"), c("output_tokens", "15"))])
    answer = quote(schedule, {"inputTokens": 1_000, "cacheReadTokens": 600,
                              "inputAudioTokens": 100, "outputTokens": 0}, None, T0, HUNDRED)
    assert answer["lines"] == [{"unit": "input_tokens", "quantity": 1_000, "unitPrice": "3",
                                "per": M, "usdExact": "0.003"}]


def test_overlapping_narrow_units_are_paid_once():
    schedule = validate([entry(c("input_tokens", "2.5"), c("cache_read_tokens", "1.25"),
                               c("input_audio_tokens", "40"), c("cache_audio_read_tokens", "2.5"),
                               c("output_tokens", "10"))])
    answer = quote(schedule, {"inputTokens": 1_000, "cacheReadTokens": 300,
                              "inputAudioTokens": 200, "cacheAudioReadTokens": 50}, None, T0,
                   HUNDRED)
    assert {line["unit"]: line["quantity"] for line in answer["lines"]} == {
        "input_tokens": 550, "cache_read_tokens": 250, "input_audio_tokens": 150,
        "cache_audio_read_tokens": 50}


def test_per_request_and_per_1k_character_prices():
    tts = validate([entry(c("characters", "0.015"))])
    assert quote(tts, {"characters": 4_096}, {}, T0, HUNDRED)["usdExact"] == "0.06144"
    search = validate([entry(c("request", "0.005"), c("input_tokens", "1"),
                             c("output_tokens", "1"))])
    answer = quote(search, {"inputTokens": 0}, {}, T0, HUNDRED)  # one request when omitted
    assert answer["lines"] == [{"unit": "request", "quantity": 1, "unitPrice": "0.005",
                                "per": 1, "usdExact": "0.005"}]
    assert quote(search, {"requests": 3}, {}, T0, HUNDRED)["usdExact"] == "0.015"


def test_an_hourly_price_is_divided_by_3600_at_28_digits_and_nothing_else_is_rounded():
    transcription = validate([entry(c("audio_hour", "0.111"))])
    answer = quote(transcription, {"audioSeconds": 95}, {}, T0, HUNDRED)
    assert answer["usdExact"] == "0.002929166666666666666666666667"  # 28 significant digits
    assert quote(transcription, {"audioSeconds": 3600}, {}, T0, HUNDRED)["usdExact"] == "0.111"
    assert quote(transcription, {"audioSeconds": "12.5"}, {}, T0, HUNDRED)["lines"][0][
        "quantity"] == "12.5"
    exact = validate([entry(c("input_tokens", "0.0833333333333333"))])
    assert quote(exact, {"inputTokens": 1_234_567}, {}, T0, HUNDRED)[
        "usdExact"] == "0.1028805833333332921811"


def test_usd_exact_is_normalized_without_exponent():
    schedule = validate([entry(c("image", "2.50"), c("second", "0.00000001"))])
    assert quote(schedule, {"images": 4}, {}, T0, HUNDRED)["usdExact"] == "10"
    assert quote(schedule, {"seconds": 1}, {}, T0, HUNDRED)["usdExact"] == "0.00000001"
    assert quote(schedule, {"images": 0}, {}, T0, HUNDRED) == {
        "at": T0, "lines": [], "usd": 0.0, "usdExact": "0", "credits": 0}
    assert schedule[0]["components"][0]["price"] == "2.50"  # stored as given


# ---------------------------------------------------------------- options


def test_the_most_specific_component_whose_options_hold_prices_a_unit():
    answer = quote(CHAT, {"inputTokens": 100_000}, {"serviceTier": "priority"}, T0, HUNDRED)
    assert answer["usdExact"] == "0.225"
    assert quote(CHAT, {"inputTokens": 100_000}, {"serviceTier": "flex"}, T0, HUNDRED)[
        "usdExact"] == "0.125"  # an option nothing prices is ignored
    assert quote(VIDEO, {"seconds": 10}, {"resolution": "4k"}, T0, HUNDRED)["usdExact"] == "8"
    assert quote(VIDEO, {"seconds": 10}, {}, T0, HUNDRED)["usdExact"] == "4"


def test_an_image_model_by_size_and_quality():
    assert quote(IMAGE, {"images": 2}, {"size": "1024x1792", "quality": "hd"}, T0, HUNDRED)[
        "usdExact"] == "0.24"
    wrong = error(lambda: quote(IMAGE, {"images": 1}, {"size": "512x512", "quality": "hd"}, T0,
                                HUNDRED))
    assert wrong.code == "UNSUPPORTED_OPTION" and wrong.field == "size"
    assert wrong.data == {"supported": ["1024x1024", "1024x1792"]}
    wrong = error(lambda: quote(IMAGE, {"images": 1}, {"size": "1024x1024"}, T0, HUNDRED))
    assert wrong.code == "UNSUPPORTED_QUALITY" and wrong.data == {"supported": ["hd", "standard"]}
    assert "quality must be given: the price depends on it; supported: hd, standard" \
        in wrong.message


def test_declared_option_values_are_the_only_ones_accepted():
    schedule = validate([entry(c("second", "0.18"),
                               options={"quality": ["standard", "high", "ultra"]})])
    assert quote(schedule, {"seconds": 5}, {"quality": "ultra"}, T0, HUNDRED)["usdExact"] == "0.9"
    wrong = error(lambda: quote(schedule, {"seconds": 5}, {"quality": "4k"}, T0, HUNDRED))
    assert (wrong.code, wrong.field) == ("UNSUPPORTED_QUALITY", "quality")
    assert wrong.data == {"supported": ["high", "standard", "ultra"]}
    assert "standard" in wrong.message and "ultra" in wrong.message


def test_option_values_are_matched_whatever_their_case():
    """A value spelt in another case is the value a price names: "4K" must not pay the default
    (half the 4k price), nor a declared value be refused for its case."""
    for spelt in ("4k", "4K"):
        assert quote(VIDEO, {"seconds": 10}, {"resolution": spelt}, T0, HUNDRED)[
            "usdExact"] == "8"
    assert quote(IMAGE, {"images": 2}, {"size": "1024X1792", "quality": "HD"}, T0, HUNDRED)[
        "usdExact"] == "0.24"
    wrong = error(lambda: quote(IMAGE, {"images": 1}, {"size": "512X512", "quality": "Hd"}, T0,
                                HUNDRED))
    assert (wrong.code, wrong.field) == ("UNSUPPORTED_OPTION", "size")
    declared = validate([entry(c("second", "0.18"), options={"quality": ["standard", "high"]})])
    assert quote(declared, {"seconds": 5}, {"quality": "High"}, T0, HUNDRED)["usdExact"] == "0.9"


def test_only_ascii_letters_are_matched_whatever_their_case():
    """As model ids: the Kelvin sign is not a "K", nor a long s an "s" (Unicode's case folding
    would make them so); such a value is refused, not billed as the one it resembles."""
    declared = validate([entry(c("second", "0.18"), options={"quality": ["standard", "high"]})])
    wrong = error(lambda: quote(declared, {"seconds": 5}, {"quality": "\u017ftandard"}, T0,
                                HUNDRED))
    assert (wrong.code, wrong.field) == ("UNSUPPORTED_QUALITY", "quality")
    kelvin = quote(VIDEO, {"seconds": 10}, {"resolution": "4\u212a"}, T0, HUNDRED)
    assert kelvin["usdExact"] != quote(VIDEO, {"seconds": 10}, {"resolution": "4k"}, T0,
                                       HUNDRED)["usdExact"]
    assert validate([entry(c("second", "0.18"), options={"quality": ["k", "\u212a"]})])


@pytest.mark.parametrize("schedule", [
    [entry(c("second", "0.4"), c("second", "0.8", when={"resolution": "4k"}),
           c("second", "0.9", when={"resolution": "4K"}))],
    [entry(c("second", "0.18"), options={"quality": ["high", "High"]})],
])
def test_a_price_cannot_name_two_values_that_differ_only_in_case(schedule):
    assert error(lambda: validate(schedule)).code == "INVALID_PRICE"


# ---------------------------------------------------------------- usage errors


@pytest.mark.parametrize("usage,field", [
    ({"inputTokens": -1}, "usage.inputTokens"),
    ({"inputTokens": 1.5}, "usage.inputTokens"),
    ({"inputTokens": "12.5"}, "usage.inputTokens"),
    ({"inputTokens": True}, "usage.inputTokens"),
    ({"inputTokens": "many"}, "usage.inputTokens"),
    ({"inputTokens": float("nan")}, "usage.inputTokens"),
    ({"inputTokens": 10, "cacheReadTokens": 11}, "usage.cacheReadTokens"),
    ({"cacheReadTokens": 5}, "usage.cacheReadTokens"),
    ({"inputTokens": 12_345_678_901}, "usage.inputTokens"),
    ({"tokens": 5}, "usage.tokens"),
    ({"inputTokens": "-0"}, "usage.inputTokens"),
    ({"inputTokens": -0.0}, "usage.inputTokens"),
])
def test_bad_usage_is_refused_with_its_field(usage, field):
    wrong = error(lambda: quote(CHAT, usage, {}, T0, HUNDRED))
    assert (wrong.code, wrong.field) == ("INVALID_ARGUMENT", field)


def test_a_count_in_a_string_it_cannot_read_says_what_a_string_may_hold():
    """Counts may be decimal strings ("7", "61.5"), so "must be a number" alone misled."""
    wrong = error(lambda: quote(CHAT, {"inputTokens": "1e3"}, {}, T0, HUNDRED))
    assert wrong.message == ('usage.inputTokens must be a number, or decimal digits in a '
                             'string ("7", "61.5"), got \'1e3\'')


def test_a_usage_kind_the_model_has_no_price_for_is_refused():
    wrong = error(lambda: quote(CHAT, {"images": 2}, {}, T0, HUNDRED))
    assert (wrong.code, wrong.field) == ("UNSUPPORTED_USAGE", "usage.images")
    assert wrong.data == {"supported": ["cacheReadTokens", "cacheWriteTokens", "inputTokens",
                                        "outputTokens"]}
    assert quote(CHAT, {"images": 0, "inputTokens": 0}, {}, T0, HUNDRED)["usdExact"] == "0"
    wrong = error(lambda: quote(VIDEO, {"inputTokens": 10}, {}, T0, HUNDRED))
    assert wrong.code == "UNSUPPORTED_USAGE"


def test_unknown_options_and_bad_values_are_refused():
    wrong = error(lambda: quote(CHAT, {}, {}, None, HUNDRED))
    assert (wrong.code, wrong.field) == ("INVALID_ARGUMENT", "at")
    wrong = error(lambda: quote(CHAT, {}, {"colour": "red"}, T0, HUNDRED))
    assert (wrong.code, wrong.field) == ("INVALID_ARGUMENT", "options.colour")
    wrong = error(lambda: quote(CHAT, {}, {"quality": 3}, T0, HUNDRED))
    assert (wrong.code, wrong.field) == ("INVALID_ARGUMENT", "options.quality")


def test_the_largest_quotes_the_bounds_allow_are_still_exact():
    # prices below 10^6 with at most 20 significant digits and 26 places, counts up to 10^15
    # with at most 10 significant digits and 6 places: products and sums fit 60 digits
    big = validate([entry(c("image", "999999.99999999999999"),
                          c("second", "0.00000000000000000000000001"))])
    assert quote(big, {"images": 999_999_999_900_000, "seconds": "0.000001"}, {}, T0, HUNDRED)[
        "usdExact"] == "999999999899999999990.00000000100000000000000000000001"
    tokens = validate([entry(c("input_tokens", "999999.99999999999999"))])
    assert quote(tokens, {"inputTokens": 999_999_999_900_000}, {}, T0, HUNDRED)[
        "usdExact"] == "999999999899999.999990000000001"


@pytest.mark.parametrize("price,why", [
    ("1000000", "must be below 1,000,000 (USD per its unit), got 1000000"),
    ("1" + "0" * 310, "must be below 1,000,000"),
    ("0." + "0" * 26 + "1", "has more than 26 decimal places"),
    ("0." + "0" * 70 + "1", "has more than 26 decimal places"),
])
def test_a_price_is_below_a_million_with_at_most_26_places(price, why):
    """A huge price made every quote of its model a 500 (its USD float was infinite); a tiny
    one refused every quote as "too large to price exactly"."""
    wrong = error(lambda: validate([entry(c("image", price))]))
    assert (wrong.code, wrong.field) == ("INVALID_PRICE", "schedule[0].components[0].price")
    assert why in wrong.message
    assert validate([entry(c("image", "999999.99999999999999"),
                           c("second", "0.000033333333333333335"))])  # LiteLLM's float


def test_a_count_has_at_most_6_decimal_places():
    schedule = validate([entry(c("second", "0.1"))])
    assert quote(schedule, {"seconds": "0.000001"}, {}, T0, HUNDRED)["usdExact"] == "0.0000001"
    wrong = error(lambda: quote(schedule, {"seconds": "0.0000001"}, {}, T0, HUNDRED))
    assert (wrong.field, wrong.message) == ("usage.seconds",
                                            "usage.seconds has more than 6 decimal places")


def test_a_quote_is_for_one_request_or_more():
    """`requests: 0` dropped the per-request fee (genai-prices always bills one request)."""
    schedule = validate([entry(c("request", "0.01"), c("input_tokens", "1"))])
    assert quote(schedule, {"inputTokens": 10}, {}, T0, HUNDRED)["usdExact"] == "0.01001"
    assert quote(schedule, {"inputTokens": 10, "requests": 2}, {}, T0, HUNDRED)[
        "usdExact"] == "0.02001"
    for requests in (0, "0.5", "-0"):
        usage = {"inputTokens": 10, "requests": requests}
        wrong = error(lambda: quote(schedule, usage, {}, T0, HUNDRED))  # noqa: B023 - at once
        assert wrong.field == "usage.requests"
    assert wrong.message == "usage.requests cannot be negative"
    assert error(lambda: quote(schedule, {"inputTokens": 10, "requests": 0}, {}, T0, HUNDRED)
                 ).message.startswith("usage.requests must be at least 1: this price has a fee")
    # a price without a request fee takes a usage object that counts none
    assert quote(CHAT, {"inputTokens": 10, "requests": 0}, {}, T0, HUNDRED)["usdExact"]


def test_an_overlap_of_two_counts_given_must_be_given_when_it_is_priced():
    """genai-prices refuses a quote that gives cache reads and audio input without saying how
    much of the audio was cached; counting none overcharged when all of it was."""
    schedule = validate([entry(c("input_tokens", "1"), c("cache_read_tokens", "0.1"),
                               c("input_audio_tokens", "10"), c("cache_audio_read_tokens", "1"))])
    usage = {"inputTokens": 1000, "cacheReadTokens": 500, "inputAudioTokens": 500}
    wrong = error(lambda: quote(schedule, usage, {}, T0, HUNDRED))
    assert (wrong.code, wrong.field) == ("INVALID_ARGUMENT", "usage.cacheAudioReadTokens")
    assert wrong.message == (
        "usage.cacheAudioReadTokens must be given: usage.cacheReadTokens and "
        "usage.inputAudioTokens overlap, and it says how many count as both (0 when none do)")
    # the cache reads were the audio: 500 text tokens at 1, 500 cached audio tokens at 1
    assert quote(schedule, {**usage, "cacheAudioReadTokens": 500}, {}, T0, HUNDRED)[
        "usdExact"] == "0.001"
    assert quote(schedule, {**usage, "cacheAudioReadTokens": 0}, {}, T0, HUNDRED)[
        "usdExact"] == "0.00505"
    assert quote(schedule, {"inputTokens": 1000, "inputAudioTokens": 500}, {}, T0, HUNDRED)[
        "usdExact"] == "0.0055"  # one of the two: nothing overlaps


# ---------------------------------------------------------------- schedules and time of day


SCHEDULED = validate([
    entry(c("second", "0.20"), effective_from=ms("2026-03-01T00:00:00")),
    entry(c("second", "0.18")),
    entry(c("second", "0.15"), effective_from=ms("2026-06-01T00:00:00")),
])


def test_the_entry_in_force_is_the_latest_that_has_started():
    assert [e["effectiveFrom"] for e in SCHEDULED] == [
        None, ms("2026-03-01T00:00:00"), ms("2026-06-01T00:00:00")]  # sorted

    def per_second(when):
        return quote(SCHEDULED, {"seconds": 1}, {}, ms(when), HUNDRED)["usdExact"]

    assert per_second("2026-02-28T23:59:59.999") == "0.18"
    assert per_second("2026-03-01T00:00:00") == "0.2"
    assert per_second("2026-05-31T23:59:59.999") == "0.2"
    assert per_second("2026-06-01T00:00:00") == "0.15"


def test_nothing_in_force_before_the_first_entry():
    schedule = validate([entry(c("second", "0.2"), effective_from=T0)])
    wrong = error(lambda: quote(schedule, {"seconds": 1}, {}, T0 - 1, HUNDRED))
    assert (wrong.code, wrong.data) == ("NO_PRICE", {"startsAt": T0})


# DeepSeek's shape: off-peak from 16:30 to 00:30 UTC (wrapping midnight), a new price later.
OFF_PEAK = validate([
    entry(c("input_tokens", "0.27"), c("output_tokens", "1.1")),
    entry(c("input_tokens", "0.135"), c("output_tokens", "0.55"),
          utcTime={"start": "16:30", "end": "00:30"}),
    entry(c("input_tokens", "0.3"), c("output_tokens", "1.2"), effective_from=ms("2026-09-10")),
    entry(c("input_tokens", "0.15"), effective_from=ms("2026-09-10"),
          utcTime={"start": "16:30", "end": "00:30"}),
])


@pytest.mark.parametrize("when,usd", [
    ("2026-05-01T16:29:59.999", "0.27"),
    ("2026-05-01T16:30:00", "0.135"),
    ("2026-05-01T23:59:59.999", "0.135"),
    ("2026-05-02T00:29:59.999", "0.135"),
    ("2026-05-02T00:30:00", "0.27"),
    ("2026-09-10T12:00:00", "0.3"),
    ("2026-09-10T17:00:00", "0.15"),
])
def test_a_time_of_day_window_replaces_the_price_inside_it(when, usd):
    assert quote(OFF_PEAK, {"inputTokens": 1_000_000}, {}, ms(when), HUNDRED)["usdExact"] == usd


def test_a_window_replaces_the_whole_component_list():
    # the later window prices no output: genai-prices then bills no output inside it
    wrong = error(lambda: quote(OFF_PEAK, {"outputTokens": 10}, {}, ms("2026-09-10T17:00:00"),
                                HUNDRED))
    assert wrong.code == "UNSUPPORTED_USAGE"


# DeepSeek's off-peak prices in LiteLLM's map: weekdays in three UTC windows, weekends all day.
WEEKLY = validate([
    entry(c("input_tokens", "0.3"), c("output_tokens", "1.2")),
    *(entry(c("input_tokens", "0.15"), c("output_tokens", "0.6"),
            utcTime={"start": start, "end": end, "days": days})
      for start, end, days in (("00:00", "01:00", [1, 2, 3, 4, 5]),
                               ("04:00", "06:00", [1, 2, 3, 4, 5]),
                               ("10:00", "00:00", [1, 2, 3, 4, 5]),
                               ("00:00", "00:00", [6, 7])))])


@pytest.mark.parametrize("when,input_price", [
    ("2026-07-13T00:30:00", "0.15"),  # Monday, in 00:00-01:00
    ("2026-07-13T01:00:00", "0.3"),  # the window's end is outside it
    ("2026-07-13T08:00:00", "0.3"),
    ("2026-07-13T10:00:00", "0.15"),
    ("2026-07-17T23:59:59", "0.15"),  # Friday, in 10:00-00:00
    ("2026-07-18T08:00:00", "0.15"),  # Saturday: the whole day
    ("2026-07-19T23:59:59", "0.15"),  # Sunday
    ("2026-07-20T02:00:00", "0.3"),  # Monday again, between windows
])
def test_a_window_with_days_holds_on_those_utc_weekdays_only(when, input_price):
    answer = quote(WEEKLY, {"inputTokens": 1_000_000}, None, ms(when), HUNDRED)
    assert answer["lines"][0]["unitPrice"] == input_price


def test_a_window_with_days_survives_validation_and_changes_at_midnight_too():
    assert validate(WEEKLY) == WEEKLY and WEEKLY[-1]["utcTime"]["days"] == [6, 7]
    # a weekday window that runs to midnight: the next day may price otherwise
    assert next_change_after(WEEKLY, ms("2026-07-17T23:00:00")) == ms("2026-07-18T00:00:00")
    assert next_change_after(WEEKLY, ms("2026-07-13T07:00:00")) == ms("2026-07-13T10:00:00")


def test_next_change_after_names_the_next_start_or_window_edge():
    assert next_change_after(OFF_PEAK, ms("2026-05-01T12:00:00")) == ms("2026-05-01T16:30:00")
    assert next_change_after(OFF_PEAK, ms("2026-05-01T16:30:00")) == ms("2026-05-02T00:30:00")
    assert next_change_after(OFF_PEAK, ms("2026-09-09T23:00:00")) == ms("2026-09-10T00:00:00")
    assert next_change_after(SCHEDULED, ms("2026-01-01T00:00:00")) == ms("2026-03-01T00:00:00")
    assert next_change_after(SCHEDULED, ms("2026-06-01T00:00:00")) is None
    assert next_change_after(CHAT, T0) is None


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("schedule,field", [
    ([], "schedule"),
    ([entry(c("tokens", "1"))], "schedule[0].components[0].unit"),
    ([entry({"unit": "second", "price": 0.18})], "schedule[0].components[0].price"),
    ([entry(c("second", "1e-7"))], "schedule[0].components[0].price"),
    ([entry(c("second", "-1"))], "schedule[0].components[0].price"),
    ([entry(c("second", "NaN"))], "schedule[0].components[0].price"),
    ([entry(c("second", "1.23456789012345678901"))], "schedule[0].components[0].price"),
    ([entry(c("second", "1", tiers=[{"start": 5, "price": "1"}]))],
     "schedule[0].components[0].tiers"),
    ([entry(c("input_tokens", "1", tiers=[{"start": 5, "price": "2"},
                                          {"start": 5, "price": "3"}]))],
     "schedule[0].components[0].tiers[1].start"),
    ([entry(c("input_tokens", "1", tiers=[{"start": 5.5, "price": "2"}]))],
     "schedule[0].components[0].tiers[0].start"),
    ([entry(c("second", "1", when={"colour": "red"}))], "schedule[0].components[0].when.colour"),
    ([entry(c("second", "1", when={}))], "schedule[0].components[0].when"),
    ([entry(c("second", "1"), c("second", "2"))], "schedule[0].components[1]"),
    ([entry(c("second", "1", when={"quality": "high"}),
            c("second", "2", when={"quality": "high"}))], "schedule[0].components[1]"),
    ([entry(c("second", "1", extra="x"))], "schedule[0].components[0].extra"),
    ([entry(c("second", "1"), effective_from=-5)], "schedule[0].effectiveFrom"),
    ([entry(c("second", "1"), effective_from="2026-01-01")], "schedule[0].effectiveFrom"),
    ([entry(c("second", "1")), entry(c("second", "2"))], "schedule"),
    ([entry(c("second", "1"), utcTime={"start": "10:00", "end": "11:00"})], "schedule"),
    ([entry(c("second", "1")), entry(c("second", "2"), utcTime={"start": "10:00", "end": "10:00"})],
     "schedule[1].utcTime"),
    ([entry(c("second", "1")), entry(c("second", "2"), utcTime={"start": "25:00", "end": "10:00"})],
     "schedule[1].utcTime.start"),
    *[([entry(c("second", "1")), entry(c("second", "2"), utcTime={
        "start": "10:00", "end": "11:00", "days": days})], "schedule[1].utcTime.days")
      for days in ([], [0], [8], [1, 1], "1", [1.0], [True])],
    ([entry(c("second", "1")), entry(c("second", "2"), utcTime={
        "start": "10:00", "end": "11:00", "weekdays": [1]})], "schedule[1].utcTime"),
    ([entry(c("cache_read_tokens", "1"))], "schedule[0].components"),
    ([entry(c("input_tokens", "1"), c("cache_read_tokens", "1"), c("input_audio_tokens", "1"))],
     "schedule[0].components"),
    ([entry(c("second", "1", when={"quality": "8k"}), options={"quality": ["hd"]})],
     "schedule[0].components[0].when.quality"),
    ([entry(c("second", "1"), options={"quality": []})], "schedule[0].options.quality"),
])
def test_validate_names_the_path_of_the_problem(schedule, field):
    wrong = error(lambda: validate(schedule))
    assert (wrong.code, wrong.field) == ("INVALID_PRICE", field), wrong.message


def test_a_tiers_start_says_which_rule_it_breaks():
    """A negative start had been told to ascend."""
    def tiered(*starts):
        return [entry(c("input_tokens", "1", tiers=[{"start": s, "price": "2"}
                                                    for s in starts]))]

    assert error(lambda: validate(tiered(-5))).message == (
        "schedule[0].components[0].tiers[0].start must be a whole number of input tokens, 0 or "
        "more, got -5")
    assert error(lambda: validate(tiered(200_000, 128_000))).message == (
        "schedule[0].components[0].tiers[1].start must be above the tier before it (200,000), "
        "got 128,000: tiers ascend")


def test_validate_explains_missing_overlap_prices():
    wrong = error(lambda: validate([entry(c("input_tokens", "1"), c("cache_read_tokens", "1"),
                                          c("input_audio_tokens", "1"))]))
    assert "cache_audio_read_tokens needs a price too" in wrong.message


def test_validate_checks_options_in_combination():
    """Each component's own `when` priced every count once, but a quote giving both options
    selected two overlapping units without their overlap: an error the client could not fix."""
    components = [c("input_tokens", "1"), c("output_tokens", "2"),
                  c("cache_read_tokens", "0.1", when={"processing": "batch"}),
                  c("input_audio_tokens", "3", when={"serviceTier": "priority"})]
    wrong = error(lambda: validate([entry(*components)]))
    assert (wrong.code, wrong.field, wrong.message) == (
        "INVALID_PRICE", "schedule[0].components",
        "schedule[0].components (with options {'processing': 'batch', 'serviceTier': "
        "'priority'}): cache_read_tokens and input_audio_tokens overlap: "
        "cache_audio_read_tokens needs a price too")
    fixed = validate([entry(*components, c("cache_audio_read_tokens", "0.3", when={
        "processing": "batch", "serviceTier": "priority"}))])
    assert quote(fixed, {"inputTokens": 100, "cacheReadTokens": 10, "inputAudioTokens": 10,
                         "cacheAudioReadTokens": 5}, {"processing": "batch",
                                                      "serviceTier": "priority"}, T0, HUNDRED)
    many = [c("second", "1")] + [c("second", "2", when={key: value}) for key in (
        "quality", "resolution", "size", "speed", "route") for value in "abcde"]
    wrong = error(lambda: validate([entry(*many)]))
    assert wrong.message.endswith("combine in more than 1024 ways")
    wrong = error(lambda: validate([entry(c("cache_read_tokens", "1"))]))
    assert "cache_read_tokens needs a price for input_tokens too" in wrong.message


def test_validate_says_when_in_words():
    wrong = error(lambda: validate([entry(c("second", "1")), entry(c("second", "2"))]))
    assert wrong.message == ("two entries are in force since always (effectiveFrom null) with "
                             "the same time of day")
    wrong = error(lambda: validate([entry(c("second", "1"), effective_from=1767225600000,
                                          utcTime={"start": "10:00", "end": "11:00"})]))
    assert "in force from 2026-01-01T00:00:00Z (1767225600000) need exactly one" in wrong.message


def test_a_valid_schedule_survives_json_and_validation_unchanged():
    for schedule in (CHAT, IMAGE, VIDEO, SCHEDULED, OFF_PEAK):
        assert validate(json.loads(json.dumps(schedule))) == schedule


def test_litellm_image_sizes_combine_into_one_schedule():
    keys = {"standard/1024-x-1024/dall-e-3": 3.81469e-08, "hd/1024-x-1792/dall-e-3": 6.539e-08}
    schedule = combine(from_litellm(k, {"mode": "image_generation", "input_cost_per_pixel": v})[0]
                       for k, v in keys.items())
    assert schedule[0]["components"] == [
        c("image", "0.0399999238144", when={"size": "1024x1024", "quality": "standard"}),
        c("image", "0.11999117312", when={"size": "1024x1792", "quality": "hd"})]


def test_the_examples_in_the_engine_documentation_are_valid_schedules():
    import functions.prices

    blocks = re.findall(r"\n\n((?:    .*\n)+)", functions.prices.__doc__)
    schedules = []
    for block in blocks:
        text = textwrap.dedent(block).strip()
        while text.startswith("["):
            schedule, end = json.JSONDecoder().raw_decode(text)
            schedules.append(schedule)
            text = text[end:].strip()
    assert len(schedules) == 6
    for schedule in schedules:
        assert validate(schedule) == schedule
    chat, image, video, seed, multiplied, off_peak = schedules
    assert chat == CHAT and image == IMAGE and video[0]["components"] == VIDEO[0]["components"][:2]
    assert seed == video_schedule("0.18")
    assert multiplied == video_schedule("0.123457", {"high": 1.5, "ultra": 2.25})
    assert off_peak == OFF_PEAK[:2]


# fal.ai's gpt-image-2 in LiteLLM 1.110.2's map: one key per quality and size, and a flat key.
FAL_ROWS = {("high", "1024-x-768"): 0.145, ("high", "1024-x-1024"): 0.211,
            ("high", "1024-x-1536"): 0.165, ("high", "3840-x-2160"): 0.401,
            ("medium", "1024-x-768"): 0.037, ("medium", "1024-x-1024"): 0.053,
            ("low", "1024-x-768"): 0.005, ("low", "1024-x-1024"): 0.006,
            ("xhigh", "1024-x-768"): 0.3}  # gpt-image-2.5's keys name xhigh and max too


def fal_schedule() -> list[dict]:
    image = {"litellm_provider": "fal_ai", "mode": "image_generation"}
    keys = {"fal_ai/openai/gpt-image-2": {**image, "output_cost_per_image": 0.145}}
    keys |= {f"fal_ai/{quality}/{size}/openai/gpt-image-2": {**image, "output_cost_per_image": v}
             for (quality, size), v in FAL_ROWS.items()}
    return combine((from_litellm(k, e)[0] for k, e in keys.items()), "fal_ai")


@pytest.mark.parametrize("options,usd", [
    ({}, "0.145"),  # no quality: "high"; no size: 1024x768
    ({"size": "1024x1024"}, "0.211"),
    ({"quality": "medium"}, "0.037"),
    ({"quality": "low", "size": "1024x1024"}, "0.006"),
    ({"quality": "auto", "size": "1024x1536"}, "0.165"),  # "auto" is "high"
    ({"size": "auto", "quality": "medium"}, "0.037"),
    ({"size": "square_hd"}, "0.211"),  # a named size, at its dimensions
    ({"size": "1536x1024"}, "0.165"),  # no row: the nearest in pixels (1024x1536's)
    ({"size": "1920x1080", "quality": "low"}, "0.006"),  # nearest: 1024x1024
    ({"size": "3840x2160"}, "0.401"),
    ({"quality": "xhigh", "size": "1024x1024"}, "0.3"),
])
def test_fal_image_keys_price_a_request_as_litellms_fal_calculator_does(options, usd):
    """litellm/llms/fal_ai/cost_calculator.py: quality "high" and size 1024x768 by default, a
    size at its nearest keyed row. The flat key's 0.145 was the price of anything but an exact
    pair (a "medium" image was 3.9 times its price, a 4K one 64% under)."""
    assert quote(fal_schedule(), {"images": 1}, options, T0, HUNDRED)["usdExact"] == usd


def test_a_fal_size_or_quality_without_a_row_is_refused_not_priced_flat():
    wrong = error(lambda: quote(fal_schedule(), {"images": 1}, {"size": "999x999"}, T0,
                                HUNDRED))
    assert (wrong.code, wrong.field) == ("UNSUPPORTED_OPTION", "size")
    wrong = error(lambda: quote(fal_schedule(), {"images": 1}, {"quality": "ultra"}, T0,
                                HUNDRED))
    assert wrong.code == "UNSUPPORTED_QUALITY"


def test_a_price_every_sized_key_repeats_is_kept_once():
    """Azure's dall-e-3 gives each size key output_cost_per_token 0.0 beside its pixel price:
    six equal token components were "two output_tokens components with the same when", and
    the model was not imported."""
    keys = {f"azure/{quality}/{size}/dall-e-3": {
        "litellm_provider": "azure", "mode": "image_generation", "output_cost_per_token": 0.0,
        "input_cost_per_pixel": pixel} for (quality, size), pixel in {
            ("standard", "1024-x-1024"): 4.19617e-08, ("hd", "1024-x-1024"): 8.39234e-08}.items()}
    schedule = combine(from_litellm(k, e)[0] for k, e in keys.items())
    assert quote(schedule, {"images": 1}, {"size": "1024x1024", "quality": "standard"}, T0,
                 HUNDRED)["usdExact"] == "0.0440000315392"


def test_an_image_model_priced_by_input_cost_per_image_alone_bills_each_image_made():
    """xai's grok-imagine gives only input_cost_per_image: LiteLLM's default image calculator
    bills it per generated image (the catalog refused {images}, and quoted {} at $0)."""
    schedule, reasons = from_litellm("xai/grok-imagine-image", {
        "litellm_provider": "xai", "mode": "image_generation", "input_cost_per_image": 0.02})
    assert reasons == []
    assert quote(schedule, {"images": 2}, {}, T0, HUNDRED)["usdExact"] == "0.04"


def test_a_sized_gpt_image_key_is_priced_by_tokens_only_as_litellm_does():
    """LiteLLM sends every openai and azure gpt-image request to its token calculator: a
    sized key's pixel price was a per-image price beside the tokens (paid twice)."""
    schedule, reasons = from_litellm("azure/high/1024-x-1024/gpt-image-1", {
        "litellm_provider": "azure", "mode": "image_generation",
        "input_cost_per_pixel": 1.59263611e-07, "input_cost_per_token": 5e-06,
        "output_cost_per_token": 4e-05})
    assert all(c["unit"] != "image" for c in schedule[0]["components"])
    assert any(r.startswith("ignored: input_cost_per_pixel") for r in reasons)
