"""The engine against two public price references.

genai-prices 0.2.3 (Decimal): every model of its bundled data is converted with
`from_genai_prices` and quoted by the engine; the total must equal genai-prices' own
`ModelInfo.calc_price` exactly (Decimal equality), for usages on both sides of every tier start,
moments on both sides of every start date and time-of-day window edge, and every price-context
variant.

LiteLLM (floats): `tests/data/litellm_prices.json` holds entries in the format of LiteLLM's
`model_prices_and_context_window.json` covering every key family `from_litellm` reads; the expected
costs come from `litellm_cost` below, a small re-implementation of LiteLLM's formulas in floats,
and must agree within a relative 1e-9.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from genai_prices.data import providers as genai_providers
from genai_prices.types import (
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
    Usage,
)
from genai_prices.units import _get_registry

from functions.price_maps import (
    GENAI_PRICE_KEYS,
    camel,
    combine,
    day_start_ms,
    from_genai_prices,
    from_litellm,
    image_options,
)
from functions.prices import DAY_MS, UNITS, is_within, quote

CREDITS_PER_USD = Decimal(100)

# ---------------------------------------------------------------- genai-prices

# our usage key -> genai-prices' usage key, through the price keys the converter maps
GENAI_USAGE = {UNITS[unit].usage: _get_registry().unit_for_price_key(price_key).usage_key
               for price_key, (unit, _) in GENAI_PRICE_KEYS.items()
               if unit != "request"}  # genai-prices always bills one request


def usage_template(input_tokens: int, output_tokens: int) -> dict[str, int]:
    """A usage that is consistent whatever subset of units a model prices (narrow counts are
    within broad ones and overlaps within both sides)."""
    n, m = input_tokens, output_tokens
    return {
        "inputTokens": n, "cacheReadTokens": n // 5, "cacheWriteTokens": n // 10,
        "cacheWrite1hTokens": n // 20, "inputAudioTokens": n // 10, "cacheAudioReadTokens": n // 50,
        "inputImageTokens": n // 10, "cacheImageReadTokens": n // 50, "inputVideoTokens": n // 20,
        "outputTokens": m, "outputAudioTokens": m // 10, "outputImageTokens": m // 10,
        "outputVideoTokens": m // 10, "outputReasoningTokens": m // 4,
        "outputCitationTokens": m // 20,
        "webSearches": 3, "storageSearches": 2, "documentPages": 7, "annotatedDocumentPages": 3,
        "inputTextMessages": 4, "characters": 1234, "audioSeconds": 95, "inputAudioSeconds": 61,
    }


def all_prices(model: ModelInfo) -> list[ModelPrice]:
    prices = [model.prices] if isinstance(model.prices, ModelPrice) else [
        c.prices for c in model.prices]
    return prices + [v.prices for v in model.price_variants or ()]


def price_values(prices: ModelPrice) -> dict:
    return {k: v for k, v in prices.__dict__.items() if not k.startswith("_") and v is not None}


def has_token_prices(model: ModelInfo) -> bool:
    return any(k.endswith("_mtok") for p in all_prices(model) for k in price_values(p))


def input_token_counts(model: ModelInfo) -> list[int]:
    """A plain usage, then both sides of every tier start."""
    counts = [123_457, 1]
    for prices in all_prices(model):
        for value in price_values(prices).values():
            if isinstance(value, TieredPrices):
                counts += [n for t in value.tiers for n in (t.start, t.start + 1)]
    return sorted(set(counts))


def constraints(model: ModelInfo) -> list:
    found = [] if isinstance(model.prices, ModelPrice) else [c.constraint for c in model.prices]
    return [c for c in found + [v.constraint for v in model.price_variants or ()] if c]


def moments(model: ModelInfo) -> list[int]:
    """ms instants: midday on two ordinary days, both sides of every start date, and both
    sides of every time-of-day window edge on each of those days."""
    dates = [c.start_date for c in constraints(model) if isinstance(c, StartDateConstraint)]
    days = {date(2024, 3, 1), date(2026, 11, 16)} | {d for d in dates}
    days |= {d - timedelta(days=1) for d in dates}
    times = {12 * 3600_000}
    for c in constraints(model):
        if isinstance(c, TimeOfDateConstraint):
            for edge in (c.start_time, c.end_time):
                ms = ((edge.hour * 60 + edge.minute) * 60 + edge.second) * 1000
                times |= {ms, (ms - 1) % DAY_MS}
    found = {day_start_ms(d) + t for d in days for t in times}
    found |= {day_start_ms(d) + edge for d in dates for edge in (0, -1)}
    return sorted(found)


def contexts(model: ModelInfo) -> list[dict[str, str]]:
    found = [{}]
    for variant in model.price_variants or ():
        if dict(variant.when) not in found:
            found.append(dict(variant.when))
    return found


def priced_units(prices: ModelPrice) -> set[str]:
    return {GENAI_PRICE_KEYS[k][0] for k in price_values(prices)}


def usage_for(template: dict[str, int], priced: set[str]) -> dict[str, int]:
    """The template less counts the model has no price for, not even a broader one."""
    units = {u.usage: u for u in UNITS.values()}
    return {key: value for key, value in template.items()
            if any(is_within(units[key], UNITS[p]) for p in priced)}


def genai_cases(provider: Provider, model: ModelInfo):
    for at in moments(model):
        moment = datetime.fromtimestamp(at / 1000, tz=UTC)
        for context in contexts(model):
            priced = priced_units(model.get_prices(moment, context or None))
            for n in input_token_counts(model):
                usage = usage_for(usage_template(n, 6789), priced)
                yield at, moment, context, usage


def check_genai_model(provider: Provider, model: ModelInfo) -> tuple[int, list[str]]:
    """(cases checked, mismatches) for one model."""
    schedule, reasons = from_genai_prices(model, provider.id)
    assert schedule is not None, reasons
    cases, wrong = 0, []
    for at, moment, context, usage in genai_cases(provider, model):
        expected = model.calc_price(
            Usage(**{GENAI_USAGE[k]: v for k, v in usage.items()}), provider,
            genai_request_timestamp=moment, price_context=context or None).total_price
        options = {camel(k): v for k, v in context.items()}
        got = quote(schedule, usage, options, at, CREDITS_PER_USD)
        cases += 1
        if Decimal(got["usdExact"]) != expected or got["credits"] != math.ceil(expected * 100):
            wrong.append(f"{provider.id}/{model.id} at {moment:%Y-%m-%dT%H:%M:%S.%f} {context} "
                         f"{usage}: {got['usdExact']} != {expected}")
    return cases, wrong


@cache
def genai_models() -> list[tuple[Provider, ModelInfo]]:
    return [(p, m) for p in genai_providers for m in p.models]


@pytest.mark.parametrize("provider", genai_providers, ids=lambda p: p.id)
def test_every_genai_prices_model_quotes_exactly(provider):
    wrong = []
    for model in provider.models:
        if from_genai_prices(model, provider.id)[0] is None:
            continue  # listed by test_what_genai_prices_has_that_the_engine_cannot_express
        wrong += check_genai_model(provider, model)[1]
    assert wrong == [], f"{len(wrong)} mismatches, first: {wrong[:3]}"


def test_what_genai_prices_has_that_the_engine_cannot_express():
    unrepresentable = {f"{p.id}/{m.id}": from_genai_prices(m, p.id)[1]
                       for p, m in genai_models() if from_genai_prices(m, p.id)[0] is None}
    assert unrepresentable == {
        f"groq/{model}": ["groq bills at least 10 s of audio per request (genai-prices "
                          "ModelInfo.calc_price, in code)"]
        for model in ("whisper-large-v3", "whisper-large-v3-turbo")}
    # neither has token prices: every model with token prices is expressed
    assert not any(has_token_prices(m) for p, m in genai_models()
                   if f"{p.id}/{m.id}" in unrepresentable)


def test_the_genai_prices_proof_covers_every_feature():
    """What the exact comparison went through (the figures reported in the README)."""
    tally: Counter = Counter()
    for provider, model in genai_models():
        if from_genai_prices(model, provider.id)[0] is None:
            continue
        tally["models"] += 1
        tally["models with token prices"] += has_token_prices(model)
        tally["cases"] += sum(1 for _ in genai_cases(provider, model))
        tally["tiered models"] += any(isinstance(v, TieredPrices) for p in all_prices(model)
                                      for v in price_values(p).values())
        tally["models with start dates"] += any(isinstance(c, StartDateConstraint)
                                                for c in constraints(model))
        tally["models priced by time of day"] += any(isinstance(c, TimeOfDateConstraint)
                                                     for c in constraints(model))
        tally["models with variants"] += bool(model.price_variants)
    print(dict(tally))
    assert tally["models with token prices"] >= 2100 and tally["models priced by time of day"] == 5
    assert tally["tiered models"] > 100 and tally["models with variants"] > 100


# ---------------------------------------------------------------- LiteLLM
#
# A re-implementation, in floats, of the LiteLLM formulas the converter follows (litellm 1.80.x,
# main branch: litellm_core_utils/llm_cost_calc/utils.py `generic_cost_per_token` and
# `_get_token_base_cost`, cost_calculator.py `batch_cost_calculator`,
# `default_image_cost_calculator`, `default_video_cost_calculator`, openai/cost_calculation.py
# `cost_per_second`, tool_call_cost_tracking.py `get_cost_for_web_search`). Only the paths the
# converter expresses; a usage's details are always given, as LiteLLM's Usage carries them.

LITELLM = json.loads((Path(__file__).parent / "data" / "litellm_prices.json").read_text())
TIERS = ("priority", "flex")


def _unit_cost(info: dict, key: str, default: float | None = 0.0) -> float | None:
    """LiteLLM's _get_cost_per_unit: the key, else (for a tier key) the key less its suffix."""
    value = info.get(key)
    if isinstance(value, int | float):
        return float(value)
    for suffix in ("_priority", "_flex"):
        if suffix in key:
            base = info.get(key.replace(suffix, ""))
            if isinstance(base, int | float):
                return float(base)
            break
    return default


def _tier_key(key: str, tier: str | None) -> str:
    return f"{key}_{tier}" if tier in TIERS else key


def _threshold(key: str) -> float:
    label = key.split("_above_")[1].split("_tokens")[0]
    return float(label.replace("k", "")) * (1000 if "k" in label else 1)


def _token_base_cost(info: dict, prompt_tokens: int, tier: str | None):
    prompt = _unit_cost(info, _tier_key("input_cost_per_token", tier))
    completion = _unit_cost(info, _tier_key("output_cost_per_token", tier))
    if completion == 0.0 or completion is None:
        image = _unit_cost(info, "output_cost_per_image_token", None)
        if image is not None:
            completion = image
    creation = _unit_cost(info, _tier_key("cache_creation_input_token_cost", tier))
    creation_1h = _unit_cost(info, "cache_creation_input_token_cost_above_1hr")
    read = _unit_cost(info, _tier_key("cache_read_input_token_cost", tier))
    keys = [k for k in info if k.startswith("input_cost_per_token_above_")
            and not k.endswith(("_priority", "_flex"))]
    for key in sorted(keys, key=_threshold, reverse=True):
        if info.get(key) is None or not prompt_tokens > _threshold(key):
            continue
        label = key.split("_above_")[1].split("_tokens")[0]

        def tiered(name: str) -> str:
            return _tier_key(name, tier) if tier else name

        prompt = _unit_cost(info, tiered(f"input_cost_per_token_above_{label}_tokens"), prompt)
        completion = _unit_cost(info, tiered(f"output_cost_per_token_above_{label}_tokens"),
                                completion)
        creation = _unit_cost(info, tiered(f"cache_creation_input_token_cost_above_{label}_tokens"),
                              creation)
        creation_1h = _unit_cost(
            info, tiered(f"cache_creation_input_token_cost_above_1hr_above_{label}_tokens"),
            creation_1h)
        read = _unit_cost(info, tiered(f"cache_read_input_token_cost_above_{label}_tokens"), read)
        break
    return prompt, completion, creation, creation_1h, read


def _component(info: dict, key: str, count: float) -> float:
    """LiteLLM's calculate_cost_component."""
    cost = _unit_cost(info, key)
    return float(count) * cost if cost is not None and count and count > 0 else 0.0


def litellm_token_cost(info: dict, u: dict, tier: str | None = None) -> float:
    """generic_cost_per_token: prompt + completion cost."""
    prompt_tokens, cached = u["prompt_tokens"], u.get("cached", 0)
    audio, image, video = u.get("audio", 0), u.get("image", 0), u.get("video", 0)
    creation, text = u.get("creation", 0), u.get("text_tokens", 0)
    details = sum((text, cached, audio, creation, image, video))
    if (text == 0 and u.get("image_count", 0) == 0) or (cached > 0 and details > prompt_tokens):
        text = max(0, prompt_tokens - cached - audio - creation - image - video)
    base, completion_base, creation_cost, creation_1h_cost, read_cost = _token_base_cost(
        info, prompt_tokens, tier)
    cost = float(text) * base + float(cached) * read_cost
    if audio:
        key = _tier_key("input_cost_per_audio_token", tier)
        if info.get(key) is not None:
            cost += _component(info, key, audio)
        elif info.get("input_cost_per_audio_per_second") is None:
            cost += float(audio) * base
    for count, key, per_second in ((image, "input_cost_per_image_token", None),
                                   (video, "input_cost_per_video_token",
                                    "input_cost_per_video_per_second")):
        if count:
            if info.get(key) is not None:
                cost += _component(info, key, count)
            elif per_second is None or info.get(per_second) is None:
                cost += float(count) * base
    if creation:
        if u.get("creation_1h") is not None:
            one_hour = u["creation_1h"]
            cost += (creation - one_hour) * creation_cost + one_hour * creation_1h_cost
        else:
            cost += creation * creation_cost
    cost += _component(info, "input_cost_per_character", u.get("characters", 0))
    cost += _component(info, "input_cost_per_image", u.get("image_count", 0))
    out = {k: u.get(k, 0) for k in ("out_audio", "reasoning", "out_image", "out_video")}
    breakdown = any(v > 0 for v in out.values())
    out_text = max(0, u["completion_tokens"] - sum(out.values())) if breakdown else u[
        "completion_tokens"]
    cost += float(out_text) * completion_base
    if breakdown:
        for name, key in (("out_audio", "output_cost_per_audio_token"),
                          ("reasoning", "output_cost_per_reasoning_token"),
                          ("out_image", "output_cost_per_image_token"),
                          ("out_video", "output_cost_per_video_token")):
            if out[name] > 0:
                rate = _unit_cost(info, key, None)
                cost += float(out[name]) * (rate if rate is not None else completion_base)
    return cost


def litellm_batch_cost(info: dict, u: dict) -> float:
    """batch_cost_calculator, with both batch prices present."""
    return (u["prompt_tokens"] * info["input_cost_per_token_batches"]
            + u["completion_tokens"] * info["output_cost_per_token_batches"])


def litellm_image_cost(info: dict, size: str, n: int) -> float:
    """default_image_cost_calculator (pixels) or a per-image calculator (output_cost_per_image)."""
    if "output_cost_per_image" in info:
        return info["output_cost_per_image"] * n
    height, width = map(int, size.split("x"))
    return info.get("input_cost_per_pixel", 0) * height * width * n


def litellm_video_cost(info: dict, seconds: float, resolution: str | None) -> float:
    if info.get("output_cost_per_video_per_second") is not None:
        return info["output_cost_per_video_per_second"] * seconds
    if resolution and info.get(f"output_cost_per_second_{resolution.lower()}") is not None:
        return float(info[f"output_cost_per_second_{resolution.lower()}"]) * seconds
    return float(info["output_cost_per_second"]) * seconds


def litellm_transcription_cost(info: dict, seconds: float) -> float:
    if info.get("output_cost_per_second") is not None:
        return info["output_cost_per_second"] * seconds
    return info["input_cost_per_second"] * seconds


def litellm_web_search_cost(info: dict, size: str | None) -> float:
    prices = info.get("search_context_cost_per_query") or {}
    if size in ("low", "medium", "high"):
        return prices.get(f"search_context_size_{size}", 0.0)
    return prices.get("search_context_size_medium", 0.0)


def token_usage(info: dict, prompt: int, completion: int) -> tuple[dict, dict]:
    """(LiteLLM usage details, the engine's usage) for one request with every detail LiteLLM
    reads: cached and cache-written tokens (only where priced: LiteLLM bills them 0 otherwise),
    media tokens, output breakdown."""
    has = info.get
    u = {"prompt_tokens": prompt, "completion_tokens": completion,
         "cached": prompt // 4 if has("cache_read_input_token_cost") is not None else 0,
         "creation": prompt // 8 if has("cache_creation_input_token_cost") is not None else 0,
         "audio": prompt // 10, "image": prompt // 20, "video": prompt // 25,
         "out_audio": completion // 10, "reasoning": completion // 5,
         "out_image": completion // 20, "out_video": completion // 25}
    if has("cache_creation_input_token_cost_above_1hr") is not None:
        u["creation_1h"] = u["creation"] // 3
    ours = {"inputTokens": prompt, "cacheReadTokens": u["cached"],
            "cacheWriteTokens": u["creation"], "inputAudioTokens": u["audio"],
            "inputImageTokens": u["image"], "inputVideoTokens": u["video"],
            "outputTokens": completion, "outputAudioTokens": u["out_audio"],
            "outputReasoningTokens": u["reasoning"], "outputImageTokens": u["out_image"],
            "outputVideoTokens": u["out_video"]}
    if "creation_1h" in u:
        ours["cacheWrite1hTokens"] = u["creation_1h"]
    return u, ours


def litellm_cases():
    """(case id, engine schedule, usage, options, LiteLLM's cost) for every entry."""
    images: dict[str, list[str]] = {}
    for key, info in LITELLM.items():
        if image_options(key):
            images.setdefault(key.split("/")[-1], []).append(key)
            continue
        schedule, reasons = from_litellm(key, info)
        if not reasons:  # the entry with reasons is test_what_the_litellm_converter_leaves_out
            yield from _entry_cases(key, info, schedule)
    for keys in images.values():
        schedule = combine(from_litellm(k, LITELLM[k])[0] for k in keys)
        for key in keys:
            options = image_options(key)
            for n in (1, 3):
                yield (f"{key} x{n}", schedule, {"images": n}, options,
                       litellm_image_cost(LITELLM[key], options["size"], n))


def _entry_cases(key: str, info: dict, schedule: list[dict]):
    mode = info.get("mode")
    if info.get("input_cost_per_token") is not None:
        thresholds = sorted(int(_threshold(k)) for k in info
                            if k.startswith("input_cost_per_token_above_")
                            and not k.endswith(("_priority", "_flex")))
        prompts = [12_345] + [n for t in thresholds for n in (t, t + 1)]
        for tier in (None, "default", *(t for t in TIERS if any(k.endswith(t) for k in info))):
            for prompt in prompts:
                u, ours = token_usage(info, prompt, 4_321)
                options = {"serviceTier": tier} if tier else {}
                yield (f"{key} {tier} {prompt}", schedule, ours, options,
                       litellm_token_cost(info, u, tier))
        if info.get("input_cost_per_token_batches") and info.get("output_cost_per_token_batches"):
            u = {"prompt_tokens": 50_000, "completion_tokens": 700}
            yield (f"{key} batch", schedule, {"inputTokens": 50_000, "cacheReadTokens": 10_000,
                                              "outputTokens": 700},
                   {"processing": "batch"}, litellm_batch_cost(info, u))
    if info.get("input_cost_per_character") is not None and mode != "audio_speech":
        u = {"prompt_tokens": 1_000, "completion_tokens": 0, "text_tokens": 1_000,
             "characters": 3_210, "image_count": 2}
        usage = {"characters": 3_210, "outputCharacters": 0}
        if info.get("input_cost_per_token") is not None:
            usage |= {"inputTokens": 1_000, "inputImages": 2}
            yield (f"{key} characters", schedule, usage, {}, litellm_token_cost(info, u))
        else:  # _generic_cost_per_character
            cost = 3_210 * info["input_cost_per_character"] + 1_234 * info[
                "output_cost_per_character"]
            yield (f"{key} characters", schedule, {"characters": 3_210, "outputCharacters": 1_234},
                   {}, cost)
    if mode == "audio_speech":
        yield (f"{key} speech", schedule, {"characters": 4_096}, {},
               4_096 * info["input_cost_per_character"])
    if mode == "audio_transcription":
        for seconds in (1, 61, 12.5):
            yield (f"{key} {seconds}s", schedule, {"audioSeconds": seconds}, {},
                   litellm_transcription_cost(info, seconds))
    if mode == "video_generation":
        for resolution in (None, "720p", "1080p", "4k"):
            options = {"resolution": resolution} if resolution else {}
            yield (f"{key} {resolution}", schedule, {"seconds": 8}, options,
                   litellm_video_cost(info, 8, resolution))
    if mode == "image_generation" and "output_cost_per_image" in info:
        yield f"{key} x2", schedule, {"images": 2}, {}, litellm_image_cost(info, "", 2)
    if info.get("search_context_cost_per_query"):
        for size in (None, "low", "medium", "high"):
            options = {"searchContextSize": size} if size else {}
            yield (f"{key} web search {size}", schedule, {"webSearches": 1}, options,
                   litellm_web_search_cost(info, size))


@pytest.mark.parametrize("case", list(litellm_cases()), ids=lambda case: case[0])
def test_litellm_prices_agree_within_1e9(case):
    _, schedule, usage, options, expected = case
    got = quote(schedule, usage, options, 0, CREDITS_PER_USD)["usd"]
    assert expected > 0
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=0), (got, expected)


def test_the_litellm_map_covers_every_key_family_the_converter_reads():
    read = {k for info in LITELLM.values() for k in info
            if "cost" in k or k.endswith("_per_query")}
    for family in ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
                   "cache_creation_input_token_cost", "cache_creation_input_token_cost_above_1hr",
                   "input_cost_per_token_above_200k_tokens",
                   "output_cost_per_token_above_200k_tokens",
                   "cache_read_input_token_cost_above_200k_tokens",
                   "cache_creation_input_token_cost_above_200k_tokens",
                   "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
                   "input_cost_per_audio_token", "output_cost_per_audio_token",
                   "input_cost_per_image_token", "input_cost_per_video_token",
                   "output_cost_per_image_token", "output_cost_per_video_token",
                   "output_cost_per_reasoning_token", "output_cost_per_image",
                   "input_cost_per_image", "input_cost_per_pixel", "output_cost_per_pixel",
                   "output_cost_per_second", "output_cost_per_second_1080p",
                   "output_cost_per_video_per_second", "input_cost_per_character",
                   "output_cost_per_character", "input_cost_per_second",
                   "input_cost_per_token_batches", "output_cost_per_token_batches",
                   "input_cost_per_token_priority", "output_cost_per_token_flex",
                   "cache_read_input_token_cost_priority",
                   "input_cost_per_token_above_200k_tokens_priority",
                   "search_context_cost_per_query"):
        assert family in read, family
    modes = {info["mode"] for info in LITELLM.values()}
    assert modes == {"chat", "responses", "embedding", "image_generation", "video_generation",
                     "audio_speech", "audio_transcription"}


def test_what_the_litellm_converter_leaves_out_it_says():
    reasons = {key: from_litellm(key, info)[1] for key, info in LITELLM.items()}
    assert {k: r for k, r in reasons.items() if r} == {"odd-test": [
        "batch prices need both input_cost_per_token_batches and output_cost_per_token_batches "
        "(LiteLLM halves the missing one)",
        "citation_cost_per_token is not expressed",
        "input_cost_per_audio_per_second is not expressed",
        "input_cost_per_query is not expressed",
        "input_cost_per_second is not expressed",
        "regional_processing_uplift_multiplier_eu is not expressed",
        "tiered_pricing is not expressed"]}
    schedule, _ = from_litellm("odd-test", LITELLM["odd-test"])
    assert schedule[0]["components"] == [{"unit": "input_tokens", "price": "1"},
                                         {"unit": "output_tokens", "price": "2"}]
