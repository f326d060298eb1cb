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

import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache

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

from functions.price_maps import GENAI_PRICE_KEYS, camel, day_start_ms, from_genai_prices
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
