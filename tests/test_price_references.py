"""The engine against two public price references.

genai-prices 0.2.3 (Decimal): every model of its bundled data is converted with
`from_genai_prices` and quoted by the engine; the total must equal genai-prices' own
`ModelInfo.calc_price` exactly (Decimal equality), for usages on both sides of every tier start,
moments on both sides of every start date and time-of-day window edge, and every price-context
variant.

LiteLLM (floats): `tests/data/litellm_prices.json` holds entries in the format of LiteLLM's
`model_prices_and_context_window.json` covering every key family `from_litellm` reads (most of
them copied, keys and values, from the map shipped with litellm 1.110.2); the expected costs come
from a small re-implementation of LiteLLM 1.110.2's formulas in floats below (a port of its
functions, by name), and must agree within a relative 1e-9. The real maps are checked, when on
disk, by tests/test_litellm_real_maps.py.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

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
    is_ignored,
)
from functions.prices import DAY_MS, UNITS, is_within, quote, validate

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


@pytest.mark.sweep
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
# A re-implementation, in floats, of the LiteLLM 1.110.2 formulas the converter follows, function
# by function (litellm_core_utils/llm_cost_calc/utils.py `generic_cost_per_token`,
# `_get_token_base_cost`, `get_cost_per_unit`, `get_modality_token_cost_key`,
# `_resolve_billed_reasoning_rate`, `_is_off_peak`, `apply_off_peak_pricing`; tiered_pricing.py;
# cost_calculator.py `batch_cost_calculator`, `ocr_cost`, `ocr_batch_cost`,
# `default_image_cost_calculator`, `default_video_cost_calculator`, the realtime session costs;
# openai/cost_calculation.py `cost_per_second`; gemini/cost_calculator.py Maps grounding; fal.ai's
# per-resolution images; tool_call_cost_tracking.py `get_cost_for_web_search`). Only the paths the
# converter expresses; a usage's details are always given, as LiteLLM's Usage carries them.

LITELLM = json.loads((Path(__file__).parent / "data" / "litellm_prices.json").read_text())
TIERS = ("flex", "balanced", "priority", "ultrafast")
SUFFIXES = ("_ultrafast", "_balanced", "_priority", "_auto", "_flex", "_fast")
NON_STANDARD = (*SUFFIXES, "_batches")
PREFIXES = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
            "cache_creation_input_token_cost")
TTL = {"1hr": "cache_creation_input_token_cost_above_1hr",
       "12hr": "cache_creation_input_token_cost_above_12hr"}


def cpu(info: dict, key: str, default: float | None = 0.0) -> float | None:
    """get_cost_per_unit: the key, else (absent) the key less its first service-tier suffix."""
    value = info.get(key)
    if isinstance(value, int | float):
        return float(value)
    if value is None:
        for suffix in SUFFIXES:
            if suffix in key:
                fallback = info.get(key.replace(suffix, ""))
                if isinstance(fallback, int | float):
                    return float(fallback)
                break
    return default


def tier_key(key: str, tier: str | None) -> str:
    """get_service_tier_cost_key ("fast" reads the priority keys)."""
    if tier is None:
        return key
    suffix = {"fast": "priority"}.get(tier, tier)
    return f"{key}_{suffix}" if suffix in TIERS else key


def _label(key: str) -> str:
    return key.rsplit("_above_", 1)[1].split("_tokens")[0]


def _parse(label: str) -> float:
    return float(label.replace("k", "")) * (1000 if "k" in label else 1)


def _exceeds(n: int, threshold: float, inclusive: bool) -> bool:
    return n > threshold or (inclusive and n == threshold)


def _inclusive(info: dict) -> bool:
    return info.get("litellm_provider") == "xai"


def select_tier(info: dict, n: int) -> dict | None:
    """_select_priced_tier / select_tier_for_input."""
    tiers = info.get("tiered_pricing")
    if not isinstance(tiers, list) or not tiers or n <= 0:
        return None
    ranged = sorted((t for t in tiers if "range" in t), key=lambda t: t["range"][0])
    if not ranged:
        return None
    match = [t for t in ranged if t["range"][0] < n <= t["range"][1]]
    tier = match[0] if match else ranged[-1]
    return tier if "input_cost_per_token" in tier else None


def tier_rate(tier: dict, key: str, fallback: str | None = None) -> float:
    if tier.get(key) is not None:
        return float(tier[key])
    return 0.0 if fallback is None else float(tier.get(fallback, 0))


def _within(windows: list, moment: datetime) -> bool:
    """_is_within_off_peak_window."""
    now = moment.time()
    for window in windows:
        try:
            start, end = (datetime.strptime(p.strip(), "%H:%M").time() for p in window.split("-"))
        except (ValueError, AttributeError):
            continue
        if (start <= now < end) if start < end else (now >= start or now < end):
            return True
    return False


def _hours(value) -> list:
    return [value] if isinstance(value, str) else [v for v in value or () if isinstance(v, str)]


def off_peak_block(info: dict, at: int) -> dict | None:
    """_open_off_peak_block / _is_off_peak at `at` (ms since the epoch)."""
    block = info.get("off_peak_pricing")
    if not isinstance(block, dict):
        return None
    moment = datetime.fromtimestamp(at / 1000, tz=UTC)
    if _hours(block.get("hours_utc")) and _within(_hours(block.get("hours_utc")), moment):
        return block
    zone = ZoneInfo(block["weekday_timezone"]) if block.get("weekday_timezone") else UTC
    for rule in block.get("windows") or ():
        days = rule.get("weekdays")
        if (days is None or moment.astimezone(zone).isoweekday() in days) and _within(
                _hours(rule.get("hours_utc")), moment):
            return block
    return None


def _off_peak(block: dict | None, key: str, standard: float) -> float:
    value = (block or {}).get(key)
    return float(value) if isinstance(value, int | float) else standard


def apply_off_peak(block: dict | None, rates: dict) -> dict:
    """apply_off_peak_pricing."""
    return {**rates, **{name: _off_peak(block, key, rates[name]) for name, key in (
        ("input", "input_cost_per_token"), ("output", "output_cost_per_token"),
        ("read", "cache_read_input_token_cost"), ("write", "cache_creation_input_token_cost"))}}


def base_cost(info: dict, n: int, tier: str | None, at: int = 0) -> dict:
    """_get_token_base_cost."""
    block = off_peak_block(info, at)
    ranged = select_tier(info, n)
    if ranged is not None:
        rates = apply_off_peak(block, {
            "input": tier_rate(ranged, "input_cost_per_token"),
            "output": tier_rate(ranged, "output_cost_per_token")
            if "output_cost_per_token" in ranged else cpu(info, "output_cost_per_token") or 0.0,
            "read": tier_rate(ranged, "cache_read_input_token_cost", "input_cost_per_token"),
            "write": tier_rate(ranged, "cache_creation_input_token_cost",
                               "input_cost_per_token")})
        return {**rates, "ttl": {t: rates["write"] if ranged.get(k) is None
                                 else tier_rate(ranged, k) for t, k in TTL.items()}}
    prompt = cpu(info, tier_key("input_cost_per_token", tier))
    completion = cpu(info, tier_key("output_cost_per_token", tier))
    if completion == 0.0:
        image = cpu(info, "output_cost_per_image_token", None)
        if image is not None:
            completion = image
    write = cpu(info, tier_key("cache_creation_input_token_cost", tier), None)
    ttl_keys = {t: tier_key(k, tier) for t, k in TTL.items()}
    read = cpu(info, tier_key("cache_read_input_token_cost", tier), None)
    suffix = tier_key("", tier)
    keys = [k for k in info if k.startswith(tuple(f"{p}_above_" for p in PREFIXES))
            and "_tokens" in k
            and (not k.endswith(NON_STANDARD) or (suffix and k.endswith(suffix)))]
    for key in sorted(keys, key=lambda k: _parse(_label(k))):
        if info.get(key) is None:
            continue
        label = _label(key)
        if not _exceeds(n, _parse(label), _inclusive(info)):
            continue

        def above(name: str, label: str = label) -> str:
            return tier_key(f"{name}_above_{label}_tokens", tier)

        prompt = cpu(info, above("input_cost_per_token"), prompt)
        completion = cpu(info, above("output_cost_per_token"), completion)
        write = cpu(info, above("cache_creation_input_token_cost"), write)
        ttl_keys = {t: above(TTL[t]) if info.get(above(TTL[t])) is not None else k
                    for t, k in ttl_keys.items()}
        read = cpu(info, above("cache_read_input_token_cost"), read)
    missing = _off_peak(block, "input_cost_per_token", prompt)
    rates = apply_off_peak(block, {"input": prompt, "output": completion,
                                   "read": missing if read is None else read,
                                   "write": missing if write is None else write})
    ttl = {}
    for name, key in ttl_keys.items():
        rate = cpu(info, key, None)
        ttl[name] = rates["write"] if rate is None else rate
    return {**rates, "ttl": ttl}


def modality_key(info: dict, cost_key: str, n: int, inclusive: bool = False) -> str:
    """get_modality_token_cost_key."""
    suffix = next((s for s in NON_STANDARD if cost_key.endswith(s)), "")
    base = cost_key.removesuffix(suffix)
    found = [k for k in info if k.startswith(f"{base}_above_")
             and k.endswith(("_tokens", f"_tokens{suffix}")) and info.get(k) is not None
             and _exceeds(n, _parse(_label(k)), inclusive)]
    if not found:
        return cost_key
    return max(found, key=lambda k: _parse(_label(k))).removesuffix(suffix) + suffix


def modality_cost(info: dict, key: str, tokens: int, prompt_base: float, tier: str | None,
                  n: int = 0, inclusive: bool = False) -> float:
    """_modality_token_cost."""
    cost_key = modality_key(info, tier_key(key, tier), n, inclusive)
    standard = cost_key.removesuffix(tier_key("", tier))
    if info.get(cost_key) is None and info.get(standard) is None:
        return tokens * prompt_base
    return component(info, cost_key, tokens)


def component(info: dict, key: str, count: float) -> float:
    """calculate_cost_component."""
    cost = cpu(info, key)
    return float(count) * cost if cost is not None and count and count > 0 else 0.0


def reasoning_rate(info: dict, n: int, tier: str | None, completion: float, at: int = 0
                   ) -> float:
    """_resolve_billed_reasoning_rate."""
    block = off_peak_block(info, at)
    if block is not None and isinstance(block.get("output_cost_per_reasoning_token"),
                                        int | float):
        return float(block["output_cost_per_reasoning_token"])
    ranged = select_tier(info, n)
    if ranged is not None and ("output_cost_per_reasoning_token" in ranged
                               or "output_cost_per_token" in ranged):
        return tier_rate(ranged, "output_cost_per_reasoning_token", "output_cost_per_token")
    key = tier_key("output_cost_per_reasoning_token", tier)
    if info.get(key) is not None and cpu(info, key, None) is not None:
        return cpu(info, key, None)
    output_key = tier_key("output_cost_per_token", tier)
    if output_key != "output_cost_per_token" and info.get(output_key) is not None:
        return completion
    standard = cpu(info, "output_cost_per_reasoning_token", None)
    return completion if standard is None else standard


def prompt_details(u: dict) -> dict:
    """parse_prompt_tokens_details on the usage's details."""
    hit = u.get("cached", 0)
    cached_audio = min(u.get("cached_audio", 0), hit)
    cached_image = min(u.get("cached_image", 0), hit - cached_audio)
    return {"hit": hit, "cached_audio": cached_audio, "cached_image": cached_image,
            "creation": u.get("creation", 0), "text": u.get("text_tokens", 0),
            "audio": max(u.get("audio", 0) - cached_audio, 0),
            "image": max(u.get("image", 0) - cached_image, 0), "video": u.get("video", 0)}


def cache_writing_cost(u: dict, write: float, ttl: dict) -> float:
    """calculate_cache_writing_cost, with 1h and 12h counts when the usage gives them."""
    if "creation_1h" not in u:
        return u.get("creation", 0) * write
    timed = {"1hr": u["creation_1h"], "12hr": u.get("creation_12h", 0)}
    rest = max(u.get("creation", 0) - sum(timed.values()), 0)
    return rest * write + sum(count * ttl.get(name, write) for name, count in timed.items())


def provider_defaults(info: dict) -> dict:
    """apply_provider_cache_read_default: fireworks_ai bills cached input at half the input
    price when the map has no cache price (FIREWORKS_AI_DEFAULT_CACHE_READ_RATE_RATIO)."""
    if (info.get("litellm_provider") == "fireworks_ai"
            and info.get("cache_read_input_token_cost") is None
            and info.get("input_cost_per_token") is not None):
        return {**info, "cache_read_input_token_cost": info["input_cost_per_token"] * 0.5}
    return info


def litellm_token_cost(info: dict, u: dict, tier: str | None = None,
                       cache_type: str | None = None, at: int = 0) -> float:
    """generic_cost_per_token: prompt + completion cost (the dashscope calculator agrees on the
    entries here: no media prices of their own, no thresholds)."""
    info = provider_defaults(info)
    n, d = u["prompt_tokens"], prompt_details(u)
    text, audio, image, video = d["text"], d["audio"], d["image"], d["video"]
    total = text + d["hit"] + audio + d["creation"] + image + video
    if (d["hit"] > 0 or d["creation"] > 0) and total > n:
        budget = max(n - d["hit"] - d["creation"], 0)
        audio = min(audio, budget)
        image = min(image, budget - audio)
        video = min(video, budget - audio - image)
        text = budget - audio - image - video
    elif text == 0 and u.get("image_count", 0) == 0:
        text = max(n - d["hit"] - audio - d["creation"] - image - video, 0)
    rates = base_cost(info, n, tier, at)
    prompt_base, read = rates["input"], rates["read"]
    explicit = cpu(info, tier_key("explicit_cache_read_input_token_cost", tier), None)
    if cache_type == "ephemeral" and d["hit"] > 0 and explicit is not None:
        read = explicit  # resolve_explicit_cache_read_cost_rate (no tiers, no off-peak)
    bills_characters = (u.get("characters", 0) > 0
                        and info.get("input_cost_per_character") is not None)
    cost = 0.0 if bills_characters else text * prompt_base
    unclassified = d["hit"] - d["cached_audio"] - d["cached_image"]
    cost += unclassified * read
    cost += d["cached_audio"] * cpu(info, tier_key("cache_read_input_audio_token_cost", tier), read)
    cost += d["cached_image"] * cpu(info, tier_key("cache_read_input_image_token_cost", tier), read)
    if audio and not (u.get("audio_seconds") and info.get("input_cost_per_audio_per_second")
                      is not None):
        cost += modality_cost(info, "input_cost_per_audio_token", audio, prompt_base, tier, n,
                              _inclusive(info))
    if image and not (u.get("image_count") and info.get("input_cost_per_image") is not None):
        cost += modality_cost(info, "input_cost_per_image_token", image, prompt_base, tier)
    if video and not (u.get("video_seconds") and info.get("input_cost_per_video_per_second")
                      is not None):
        cost += modality_cost(info, "input_cost_per_video_token", video, prompt_base, tier)
    cost += cache_writing_cost(u, rates["write"], rates["ttl"])
    cost += component(info, "input_cost_per_character", u.get("characters", 0))
    cost += component(info, "input_cost_per_image", u.get("image_count", 0))
    cost += component(info, "input_cost_per_video_per_second", u.get("video_seconds", 0))
    cost += component(info, "input_cost_per_audio_per_second", u.get("audio_seconds", 0))
    cost += component(info, "input_cost_per_query", u.get("query_count", 0))
    out = {k: u.get(k, 0) for k in ("out_audio", "reasoning", "out_image", "out_video")}
    breakdown = any(v > 0 for v in out.values())
    completion = rates["output"]
    out_text = max(0, u["completion_tokens"] - sum(out.values())) if breakdown else u[
        "completion_tokens"]
    cost += out_text * completion
    if breakdown:
        audio_rate = cpu(info, "output_cost_per_audio_token", None)
        cost += out["out_audio"] * (completion if audio_rate is None else audio_rate)
        cost += out["reasoning"] * reasoning_rate(info, n, tier, completion, at)
        image_rate = cpu(info, tier_key("output_cost_per_image_token", tier), None)
        cost += out["out_image"] * (completion if image_rate is None else image_rate)
        video_rate = cpu(info, "output_cost_per_video_token", None)
        cost += out["out_video"] * (completion if video_rate is None else video_rate)
    return cost


_BATCH_TIER = re.compile(
    rf"^({'|'.join([*PREFIXES, *TTL.values()])})_above_(\d+k?)_tokens_batches$")


def _batch_number(info: dict, key: str) -> float | None:
    value = info.get(key)
    return float(value) if isinstance(value, int | float) else None


def _batch_prefix(info: dict, prefix: str, n: int) -> float | None:
    """_batch_rate_for_prefix."""
    labels = {m.group(2) for k, v in info.items()
              if v is not None and (m := _BATCH_TIER.match(k)) and m.group(1) == prefix}
    crossed = next((label for label in sorted(labels, key=_parse, reverse=True)
                    if _exceeds(n, _parse(label), _inclusive(info))), None)
    flat = _batch_number(info, f"{prefix}_batches")
    if crossed is None:
        return flat
    rate = _batch_number(info, f"{prefix}_above_{crossed}_tokens_batches")
    return flat if rate is None else rate


def _batch_media(info: dict, key: str, fallback: float, n: int = 0) -> float:
    """cost_calculator._batch_rate."""
    context = cpu(info, modality_key(info, key, n), None)
    rate = info.get(key) if context is None else context
    return fallback if rate is None else rate


def litellm_batch_cost(info: dict, u: dict) -> float:
    """batch_cost_calculator with an input batch price (_batch_prompt_cost)."""
    n, d = u["prompt_tokens"], prompt_details(u)
    rate_in = _batch_prefix(info, "input_cost_per_token", n)
    rate_out = _batch_prefix(info, "output_cost_per_token", n)
    batch_read = _batch_prefix(info, "cache_read_input_token_cost", n)
    batch_write = _batch_prefix(info, "cache_creation_input_token_cost", n)
    ttl = {t: r for t, k in TTL.items() if (r := _batch_prefix(info, k, n)) is not None}
    read = batch_read if batch_read is not None else cpu(
        info, modality_key(info, "cache_read_input_token_cost", n), None)
    cached = d["hit"] if read is not None else 0
    cached_audio = d["cached_audio"] if read is not None else 0
    bills_writes = batch_write is not None or bool(ttl)
    written = d["creation"] if bills_writes else 0
    text = max(n - d["audio"] - d["image"] - d["video"] - cached - written, 0)
    if batch_read is not None:
        audio_fallback = batch_read
    else:
        standard = cpu(info, modality_key(info, "cache_read_input_audio_token_cost", n), None)
        audio_fallback = standard if standard is not None else (0.0 if read is None else read)
    prompt = (text * rate_in
              + d["audio"] * _batch_media(info, "input_cost_per_audio_token_batches", rate_in, n)
              + d["image"] * _batch_media(info, "input_cost_per_image_token_batches", rate_in)
              + d["video"] * _batch_media(info, "input_cost_per_video_token_batches", rate_in)
              + (cached - cached_audio) * (read or 0.0)
              + cached_audio * _batch_media(info, "cache_read_input_audio_token_cost_batches",
                                            audio_fallback))
    if bills_writes:
        prompt += cache_writing_cost(u, rate_in if batch_write is None else batch_write, ttl)
    text_rate = batch_or_half(rate_out, info.get("output_cost_per_token"))
    image_rate = batch_or_half(info.get("output_cost_per_image_token_batches"),
                               info.get("output_cost_per_image_token"), text_rate)
    image_tokens = min(u.get("out_image", 0), u["completion_tokens"])
    return prompt + (u["completion_tokens"] - image_tokens) * text_rate + image_tokens * image_rate


def batch_or_half(batch: float | None, standard: float | None, default: float = 0.0) -> float:
    """_batch_or_half."""
    if batch is not None:
        return batch
    return standard / 2 if standard is not None else default



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
    """openai/cost_calculation.cost_per_second: the output price when above 0, else the input
    price (Deepgram's entries give output 0.0)."""
    if (info.get("output_cost_per_second") or 0) > 0:
        return info["output_cost_per_second"] * seconds
    return (info.get("input_cost_per_second") or 0) * seconds


def litellm_web_search_cost(info: dict, size: str | None) -> float:
    prices = info.get("search_context_cost_per_query") or {}
    if size in ("low", "medium", "high"):
        return prices.get(f"search_context_size_{size}", 0.0)
    return prices.get("search_context_size_medium", 0.0)


def litellm_maps_cost(info: dict, requests: int) -> float:
    """gemini cost_per_google_maps_grounding_request."""
    billed = requests if info.get("web_search_billing_unit") == "per_query" else 1
    return info["google_maps_grounding_cost_per_query"] * billed


def litellm_ocr_cost(info: dict, pages: int, annotated: int, suffix: str) -> float:
    """ocr_cost (suffix "") and ocr_batch_cost (suffix "_batches", each rate else the synchronous
    one)."""
    def rate(key: str) -> float | None:
        for name in (f"{key}{suffix}", key):
            if info.get(name) is not None:
                return info[name]
        return None

    page = rate("ocr_cost_per_page")
    annotation = rate("annotation_cost_per_page")
    return page * pages + (page if annotation is None else annotation) * annotated



def token_usage(prompt: int, completion: int) -> tuple[dict, dict]:
    """(LiteLLM usage details, the engine's usage) for one request with every detail LiteLLM
    reads: cached tokens (and their audio and image parts), cache writes (and their 1h and 12h
    parts), media tokens, output breakdown."""
    u = {"prompt_tokens": prompt, "completion_tokens": completion, "cached": prompt // 4,
         "cached_audio": prompt // 40, "cached_image": prompt // 50, "creation": prompt // 8,
         "creation_1h": prompt // 24, "creation_12h": prompt // 40,
         "audio": prompt // 10, "image": prompt // 20, "video": prompt // 25,
         "out_audio": completion // 10, "reasoning": completion // 5,
         "out_image": completion // 20, "out_video": completion // 25}
    ours = {"inputTokens": prompt, "cacheReadTokens": u["cached"],
            "cacheAudioReadTokens": u["cached_audio"], "cacheImageReadTokens": u["cached_image"],
            # what LiteLLM has no count for is none (the engine asks for priced overlaps)
            "cacheVideoReadTokens": 0, "cacheAudioWriteTokens": 0, "cacheImageWriteTokens": 0,
            "cacheVideoWriteTokens": 0,
            "cacheWriteTokens": u["creation"], "cacheWrite1hTokens": u["creation_1h"],
            "cacheWrite12hTokens": u["creation_12h"], "inputAudioTokens": u["audio"],
            "inputImageTokens": u["image"], "inputVideoTokens": u["video"],
            "outputTokens": completion, "outputAudioTokens": u["out_audio"],
            "outputReasoningTokens": u["reasoning"], "outputImageTokens": u["out_image"],
            "outputVideoTokens": u["out_video"]}
    return u, ours


def prompt_counts(info: dict) -> list[int]:
    """A plain request, an empty one, and both sides of every threshold and range bound."""
    found = {12_345, *((0,) if info.get("tiered_pricing") else ())}
    for key in info:
        for label in re.findall(r"_above_(\d+k?)_tokens", key):
            found |= {int(_parse(label)) + d for d in (-1, 0, 1)}
    for tier in info.get("tiered_pricing") or ():
        for bound in tier.get("range", ()):
            found |= {int(bound), int(bound) + 1}
    return sorted(n for n in found if n >= 0)


def litellm_cases():
    """(case id, engine schedule, usage, options, LiteLLM's cost) for every entry."""
    images: dict[str, list[str]] = {}
    for key, info in LITELLM.items():
        if image_options(key):
            images.setdefault(key.split("/")[-1], []).append(key)
            continue
        schedule, reasons = from_litellm(key, info)
        if not [r for r in reasons if not is_ignored(r)]:
            # an entry that leaves a price out is test_what_the_litellm_converter_leaves_out
            yield from _entry_cases(key, info, schedule)
    for keys in images.values():
        schedule = combine(from_litellm(k, LITELLM[k])[0] for k in keys)
        for key in keys:
            options = image_options(key)
            for n in (1, 3):
                yield (f"{key} x{n}", schedule, {"images": n}, options,
                       litellm_image_cost(LITELLM[key], options["size"], n))


def _priced_tokens(info: dict) -> bool:
    return any(k.startswith(("input_cost_per_token", "input_cost_per_audio_token"))
               for k in info) or bool(
        info.get("tiered_pricing") and "range" in info["tiered_pricing"][0])


def _entry_cases(key: str, info: dict, schedule: list[dict]):
    mode = info.get("mode")
    if not any(isinstance(v, int | float) and v for k, v in info.items() if "cost" in k):
        return  # a free model: nothing to compare (its keys are checked by the tests below)
    if mode == "realtime" and info.get("input_cost_per_second") is not None:
        # live voice seconds x input_cost_per_second, xai's text messages x their price
        messages = 3 if info.get("input_cost_per_text_message") is not None else 0
        usage = {"sessionSeconds": 90.5} | ({"inputTextMessages": messages} if messages else {})
        yield (f"{key} session", schedule, usage, {},
               90.5 * info["input_cost_per_second"]
               + messages * info.get("input_cost_per_text_message", 0))
    if _priced_tokens(info) and mode != "rerank":
        tiers = (None, "default", *(t for t in TIERS if any(k.endswith(f"_{t}") for k in info)))
        for tier in tiers:
            for prompt in prompt_counts(info):
                u, ours = token_usage(prompt, 4_321)
                options = {"serviceTier": tier} if tier else {}
                yield (f"{key} {tier} {prompt}", schedule, ours, options,
                       litellm_token_cost(info, u, tier))
        if info.get("off_peak_pricing"):
            week = 1_783_900_800_000  # 2026-07-13T00:00Z, a Monday
            for minute in range(0, 7 * 24 * 60, 30):
                at = week + minute * 60_000
                u, ours = token_usage(12_345, 4_321)
                yield (f"{key} at {datetime.fromtimestamp(at / 1000, tz=UTC):%a %H:%M}", schedule,
                       ours, {}, litellm_token_cost(info, u, None, None, at), at)
        if info.get("explicit_cache_read_input_token_cost") is not None:
            u, ours = token_usage(12_345, 4_321)
            yield (f"{key} explicit cache", schedule, ours, {"cacheType": "ephemeral"},
                   litellm_token_cost(info, u, None, "ephemeral"))
        if info.get("input_cost_per_token_batches") is not None:
            for prompt in prompt_counts(info):
                u, ours = token_usage(prompt, 4_321)
                for options in ({"processing": "batch"},
                                {"processing": "batch", "serviceTier": "priority"}):
                    yield (f"{key} batch {prompt} {options}", schedule, ours, options,
                           litellm_batch_cost(info, u))
    if info.get("input_cost_per_character") is not None and mode != "audio_speech":
        u = {"prompt_tokens": 1_000, "completion_tokens": 0, "text_tokens": 1_000,
             "characters": 3_210, "image_count": 2}
        usage = {"characters": 3_210, "outputCharacters": 0}
        if info.get("input_cost_per_token") is not None:
            # characters are billed in place of the text tokens: the engine is given those
            usage |= {"inputImages": 2}
            yield (f"{key} characters", schedule, usage, {}, litellm_token_cost(info, u))
        else:  # _generic_cost_per_character
            cost = 3_210 * info["input_cost_per_character"] + 1_234 * info[
                "output_cost_per_character"]
            yield (f"{key} characters", schedule, {"characters": 3_210, "outputCharacters": 1_234},
                   {}, cost)
    if any(k in info for k in ("input_cost_per_audio_per_second",
                               "input_cost_per_video_per_second")):
        queries = 2 if info.get("input_cost_per_query") is not None else 0
        u = {"prompt_tokens": 1_000, "completion_tokens": 0, "text_tokens": 1_000,
             "video_seconds": 7.5, "audio_seconds": 12, "query_count": queries}
        usage = {"inputVideoLengthSeconds": 7.5, "inputAudioLengthSeconds": 12}
        usage |= {"queries": queries} if queries else {}
        if info.get("input_cost_per_token") is not None:  # else LiteLLM bills them 0
            usage["inputTokens"] = 1_000
        yield f"{key} media seconds", schedule, usage, {}, litellm_token_cost(info, u)
    if info.get("input_cost_per_query") is not None and mode in ("rerank", "search"):
        # rerank: input_cost_per_query x search units; search: x queries
        yield f"{key} queries", schedule, {"queries": 3}, {}, 3 * info["input_cost_per_query"]
    if info.get("google_maps_grounding_cost_per_query") is not None:
        yield (f"{key} maps", schedule, {"mapsSearches": 1}, {},
               litellm_maps_cost(info, requests=1))
    if mode == "ocr":
        for options, suffix in (({}, ""), ({"processing": "batch"}, "_batches")):
            yield (f"{key} ocr {options}", schedule,
                   {"documentPages": 7 + 3, "annotatedDocumentPages": 3}, options,
                   litellm_ocr_cost(info, pages=7, annotated=3, suffix=suffix))
    if mode == "audio_speech" and info.get("input_cost_per_character") is not None:
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
    if mode == "image_generation" and info.get("litellm_provider") == "fal_ai":
        for name in info:  # fal's calculator: output_cost_per_image_<resolution> x images
            resolution = name.removeprefix("output_cost_per_image_")
            if name.startswith("output_cost_per_image_") and not resolution.startswith("token"):
                yield (f"{key} {resolution} x2", schedule, {"images": 2},
                       {"resolution": resolution}, 2 * info[name])
    if (mode == "image_generation" and "input_cost_per_pixel" in info
            and "output_cost_per_image" not in info):
        # default_image_cost_calculator with the request's size: pixels x images
        yield (f"{key} 768x1024 x2", schedule, {"imagePixels": 768 * 1024 * 2}, {},
               litellm_image_cost(info, "768x1024", 2))
    if info.get("search_context_cost_per_query"):
        for size in (None, "low", "medium", "high"):
            options = {"searchContextSize": size} if size else {}
            yield (f"{key} web search {size}", schedule, {"webSearches": 1}, options,
                   litellm_web_search_cost(info, size))


@pytest.mark.sweep
@pytest.mark.parametrize("case", list(litellm_cases()), ids=lambda case: case[0])
def test_litellm_prices_agree_within_1e9(case):
    _, schedule, usage, options, expected, *at = case
    got = quote(schedule, usage, options, at[0] if at else 0, CREDITS_PER_USD)["usd"]
    assert expected > 0 or usage.get("inputTokens") == 0  # an empty request may cost nothing
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=0), (got, expected)


def test_the_litellm_map_covers_every_key_family_the_converter_reads():
    read = {k for info in LITELLM.values() for k in info
            if "cost" in k or k.endswith("_per_query") or k == "tiered_pricing"}
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
                   "search_context_cost_per_query",
                   # litellm 1.110.2 families
                   "cache_read_input_token_cost_batches", "cache_creation_input_token_cost_batches",
                   "input_cost_per_token_above_272k_tokens_batches",
                   "output_cost_per_token_above_272k_tokens_batches",
                   "cache_read_input_token_cost_above_272k_tokens_batches",
                   "input_cost_per_audio_token_batches", "output_cost_per_image_token_batches",
                   "cache_read_input_audio_token_cost_batches",
                   "input_cost_per_audio_token_above_200k_tokens",
                   "input_cost_per_audio_token_above_200k_tokens_batches",
                   "cache_read_input_audio_token_cost", "cache_read_input_image_token_cost",
                   "cache_read_input_audio_token_cost_priority",
                   "cache_creation_input_token_cost_above_12hr",
                   "cache_creation_input_token_cost_above_12hr_above_272k_tokens",
                   "cache_creation_input_token_cost_above_12hr_batches",
                   "input_cost_per_token_ultrafast", "input_cost_per_token_balanced",
                   "tiered_pricing", "input_cost_per_query", "google_maps_grounding_cost_per_query",
                   "input_cost_per_video_per_second", "input_cost_per_audio_per_second",
                   "ocr_cost_per_page", "annotation_cost_per_page", "ocr_cost_per_page_batches",
                   "annotation_cost_per_page_batches", "input_cost_per_second",
                   "input_cost_per_text_message", "output_cost_per_image_2K",
                   "explicit_cache_read_input_token_cost"):
        assert family in read, family
    modes = {info.get("mode", "chat") for info in LITELLM.values()}
    assert modes == {"chat", "responses", "embedding", "image_generation", "video_generation",
                     "rerank", "search", "ocr", "realtime",
                     "audio_speech", "audio_transcription"}


def test_a_rate_that_is_not_a_number_is_reported_not_dropped():
    """"abc" or true for a rate read as no rate: the model was imported with free input."""
    for value in ("abc", True, "0x10"):
        schedule, reasons = from_litellm("x/m", {"mode": "chat", "input_cost_per_token": value,
                                                 "output_cost_per_token": 2e-06})
        assert reasons == [f"input_cost_per_token is not expressed: {value!r} is not a number"]
        assert [c["unit"] for c in schedule[0]["components"]] == ["output_tokens"]
    assert from_litellm("x/m", {"mode": "chat", "input_cost_per_token": "1e-06",
                                "output_cost_per_token": 2e-06})[1] == []
    chat = {"mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
    tiers = {**chat, "tiered_pricing": [{"range": [0, 200000], "input_cost_per_token": "abc",
                                         "output_cost_per_token": 2e-06}]}
    assert from_litellm("x/m", tiers)[1] == [
        "tiered_pricing[0].input_cost_per_token is not expressed: 'abc' is not a number"]
    search = {**chat, "search_context_cost_per_query": {"search_context_size_low": "abc"}}
    assert from_litellm("x/m", search)[1] == [  # it ended the whole conversion in a ValueError
        "search_context_cost_per_query.search_context_size_low is not expressed: 'abc' is not "
        "a number"]
    ignored = {**chat, "input_cost_per_token_cache_hit": "n/a"}  # not a price of the request
    assert [is_ignored(r) for r in from_litellm("x/m", ignored)[1]] == [True]


def test_what_the_litellm_converter_leaves_out_it_says():
    reasons = {key: from_litellm(key, info)[1] for key, info in LITELLM.items()}
    unexpressed = {k: [r for r in found if not is_ignored(r)] for k, found in reasons.items()}
    assert {k: r for k, r in unexpressed.items() if r} == {"odd-test": [
        "batch prices need both input_cost_per_token_batches and output_cost_per_token_batches "
        "(LiteLLM halves the missing one)",
        "citation_cost_per_token is not expressed",
        "input_cost_per_second is not expressed"]}
    schedule, _ = from_litellm("odd-test", LITELLM["odd-test"])
    assert schedule[0]["components"] == [
        {"unit": "input_tokens", "price": "1"}, {"unit": "output_tokens", "price": "2"},
        {"unit": "query", "price": "0.002"}, {"unit": "input_audio_second", "price": "0.0001"}]


def test_keys_that_are_not_prices_of_the_request_are_reported_as_ignored():
    ignored = {key: sorted(r.split(":")[1].strip() for r in from_litellm(key, info)[1]
                           if is_ignored(r)) for key, info in LITELLM.items()}
    assert {k: v for k, v in ignored.items() if v} == {
        "gemini-2.5-flash": ["search_free_requests"],
        "gemini-3.1-flash-lite": ["search_free_requests"],
        "azure/gpt-realtime-2.1-2026-07-07": ["cache_creation_input_audio_token_cost"],
        "gpt-6-astra": ["fedramp_uplift_multiplier", "regional_processing_uplift_multiplier_eu",
                        "regional_processing_uplift_multiplier_us"],
        "databricks/databricks-claude-haiku-4-5": ["input_dbu_cost_per_token",
                                                   "output_dbu_cost_per_token"],
        "bedrock/*/1-month-commitment/cohere.command-light-text-v14": [
            "cost_per_second", "input_cost_per_second"],
        "computer-use-preview": ["fedramp_uplift_multiplier"],
        "deepseek/deepseek-chat": ["input_cost_per_token_cache_hit"],
        "deepseek-v4-pro": ["input_cost_per_token_cache_hit"],
        "tencent/deepseek-v4.1-flash": ["input_cost_per_token_cache_hit"],
        "perplexity/pplx-70b-online": ["input_cost_per_request"],
        "vertex_ai/gemini-3.5-flash": ["regional_endpoint_uplift_multiplier",
                                       "search_free_requests"],
        "claude-sonnet-5": ["provider_specific_entry.us"],
        "gpt-4o-mini-tts": ["output_cost_per_second"],
        "gemini/gemma-3-27b-it": ["input_cost_per_audio_per_second_above_128k_tokens",
                                  "input_cost_per_character_above_128k_tokens",
                                  "input_cost_per_image_above_128k_tokens",
                                  "input_cost_per_video_per_second_above_128k_tokens",
                                  "output_cost_per_character_above_128k_tokens"],
        "odd-test": ["regional_processing_uplift_multiplier_eu"]}
    # classified keys add no price: the commitment entry prices nothing
    schedule, _ = from_litellm("bedrock/*/1-month-commitment/cohere.command-light-text-v14",
                               LITELLM["bedrock/*/1-month-commitment/cohere.command-light-text-v14"])
    assert schedule[0]["components"] == []


def test_a_free_genai_prices_period_is_priced_zero_in_the_units_of_the_others():
    from functions.price_maps import _free_priced

    priced = {"effectiveFrom": 1767225600000, "components": [
        {"unit": "input_tokens", "price": "1"}, {"unit": "cache_read_tokens", "price": "0.1"}]}
    free = _free_priced([{"effectiveFrom": None, "components": []}, priced])
    assert free == [{"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": "0"}, {"unit": "cache_read_tokens", "price": "0"}]},
        priced]
    assert _free_priced([{"effectiveFrom": None, "components": []}])[0]["components"] == [
        {"unit": "input_tokens", "price": "0"}, {"unit": "output_tokens", "price": "0"}]
    usage = {"inputTokens": 1000, "cacheReadTokens": 10}
    assert quote(validate(free), usage, {}, 0, Decimal(100))["usdExact"] == "0"
