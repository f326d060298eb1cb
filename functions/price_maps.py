"""Converters from public price maps to the engine's schedules (`functions.prices`).

- `from_genai_prices(model, provider_id)`: a genai-prices `ModelInfo` (Decimal data, exact).
- `from_litellm(key, entry)`: one entry of LiteLLM's `model_prices_and_context_window.json`
  (floats, taken by their shortest repr, so 2.5e-06 per token is exactly "2.5" per 1M).

Each returns `(schedule, reasons)`: `reasons` names what the converter could not express; a
genai-prices schedule is None when anything is missing (a partial price would misquote), a
LiteLLM schedule prices what was expressed (LiteLLM entries carry many keys that are not prices
of a request: the reasons say which were left out).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from genai_prices.types import (
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)

from functions.prices import PricingError, decimal_string, validate

# ---------------------------------------------------------------- genai-prices

# genai-prices price key -> (unit, what its price is divided by to be per our unit)
GENAI_PRICE_KEYS: dict[str, tuple[str, int]] = {
    "input_mtok": ("input_tokens", 1),
    "output_mtok": ("output_tokens", 1),
    "cache_read_mtok": ("cache_read_tokens", 1),
    "cache_write_mtok": ("cache_write_tokens", 1),
    "cache_write_1h_mtok": ("cache_write_1h_tokens", 1),
    "input_audio_mtok": ("input_audio_tokens", 1),
    "cache_audio_read_mtok": ("cache_audio_read_tokens", 1),
    "input_image_mtok": ("input_image_tokens", 1),
    "cache_image_read_mtok": ("cache_image_read_tokens", 1),
    "input_video_mtok": ("input_video_tokens", 1),
    "output_audio_mtok": ("output_audio_tokens", 1),
    "output_image_mtok": ("output_image_tokens", 1),
    "output_video_mtok": ("output_video_tokens", 1),
    "output_reasoning_mtok": ("output_reasoning_tokens", 1),
    "output_citation_mtok": ("output_citation_tokens", 1),
    "input_mchars": ("characters", 1000),  # per 1M characters -> per 1K
    "requests_kcount": ("request", 1000),  # per 1K -> per one
    "web_searches_kcount": ("web_search", 1000),
    "storage_searches_kcount": ("storage_search", 1000),
    "input_document_kpages": ("document_page", 1000),
    "input_annotated_document_kpages": ("annotated_document_page", 1000),
    "input_text_messages_kcount": ("input_text_message", 1000),
    "audio_hours": ("audio_hour", 1),
    "input_audio_hours": ("input_audio_hour", 1),
}
# Prices that genai-prices applies in code rather than in its data.
GENAI_CODE_RULES = {
    ("groq", "whisper-large-v3"): "groq bills at least 10 s of audio per request "
                                  "(genai-prices ModelInfo.calc_price, in code)",
    ("groq", "whisper-large-v3-turbo"): "groq bills at least 10 s of audio per request "
                                        "(genai-prices ModelInfo.calc_price, in code)",
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def day_start_ms(day: date) -> int:
    return calendar.timegm(day.timetuple()) * 1000


def from_genai_prices(model: ModelInfo, provider_id: str | None = None
                      ) -> tuple[list[dict] | None, list[str]]:
    """The model's genai-prices prices (conditional by start date and UTC time of day, and its
    request-context variants) as one schedule, or None and why not."""
    reasons: list[str] = []
    if provider_id is not None and (provider_id, model.id) in GENAI_CODE_RULES:
        reasons.append(GENAI_CODE_RULES[(provider_id, model.id)])
    conditionals = _conditionals(model)
    variants = list(model.price_variants or ())
    reasons += _variant_reasons(variants)
    dates = sorted({c.constraint.start_date for c in [*conditionals, *variants]
                    if isinstance(c.constraint, StartDateConstraint)})
    entries: list[dict] = []
    for day in [None, *dates]:
        start = None if day is None else day_start_ms(day)
        fallback, windows = _resolve(conditionals, day or date.min)
        active = [v for v in variants if v.constraint is None or (
            isinstance(v.constraint, StartDateConstraint) and (day or date.min)
            >= v.constraint.start_date)]
        entries.append({"effectiveFrom": start,
                        "components": _genai_components(fallback.prices, active, reasons)})
        seen: set[tuple[str, str]] = set()
        for window in windows:
            utc = _genai_window(window.constraint, reasons)
            if utc is None or (utc["start"], utc["end"]) in seen:
                continue
            seen.add((utc["start"], utc["end"]))
            entries.append({"effectiveFrom": start, "utcTime": utc,
                            "components": _genai_components(window.prices, active, reasons)})
    if reasons:
        return None, sorted(set(reasons))
    try:
        return validate(entries), []
    except PricingError as error:
        return None, [f"{error.field}: {error.message}"]


def _conditionals(model: ModelInfo) -> list[ConditionalPrice]:
    if isinstance(model.prices, ModelPrice):
        return [ConditionalPrice(constraint=None, prices=model.prices)]
    return list(model.prices)


def _resolve(conditionals: list[ConditionalPrice], day: date
             ) -> tuple[ConditionalPrice, list[ConditionalPrice]]:
    """As genai-prices' ModelInfo.get_prices on `day`: the last price whose constraint holds
    wins; time-of-day prices met before the first date-valid one win inside their window; with
    none valid, the first price applies."""
    windows: list[ConditionalPrice] = []
    for conditional in reversed(conditionals):
        constraint = conditional.constraint
        if isinstance(constraint, TimeOfDateConstraint):
            windows.append(conditional)
        elif constraint is None or day >= constraint.start_date:
            return conditional, windows
    return conditionals[0], windows


def _genai_window(constraint: TimeOfDateConstraint, reasons: list[str]) -> dict | None:
    edges = []
    for edge in (constraint.start_time, constraint.end_time):
        if edge.tzinfo is not None:
            edge = datetime.combine(date(1970, 1, 1), edge).astimezone(UTC).time()
        if edge.microsecond:
            reasons.append(f"time of day {edge} is finer than a second")
            return None
        edges.append(_clock(edge))
    return {"start": edges[0], "end": edges[1]}


def _clock(moment: time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def _variant_reasons(variants: list) -> list[str]:
    reasons = []
    for i, variant in enumerate(variants):
        if isinstance(variant.constraint, TimeOfDateConstraint):
            reasons.append(f"price variant {variant.when} applies only at a time of day")
        for earlier in variants[:i]:
            shadowed = set(earlier.when.items()) < set(variant.when.items())
            if shadowed and _price_keys(earlier.prices) & _price_keys(variant.prices):
                reasons.append(f"price variant {variant.when} is shadowed by {earlier.when} "
                               "(genai-prices takes the first; the engine the most specific)")
    return reasons


def _price_keys(prices: ModelPrice) -> set[str]:
    return {k for k, v in prices.__dict__.items() if not k.startswith("_") and v is not None}


def _genai_components(prices: ModelPrice, variants: list, reasons: list[str]) -> list[dict]:
    components = _price_components(prices, {}, reasons)
    seen = {(c["unit"], ()) for c in components}
    for variant in variants:
        when = {camel(key): value for key, value in variant.when.items()}
        for component in _price_components(variant.prices, when, reasons):
            key = (component["unit"], tuple(sorted(when.items())))
            if key not in seen:  # genai-prices: the first matching variant sets a price
                seen.add(key)
                components.append(component)
    return components


def _price_components(prices: ModelPrice, when: dict, reasons: list[str]) -> list[dict]:
    components = []
    for key in sorted(_price_keys(prices), key=list(prices.__dict__).index):
        if key not in GENAI_PRICE_KEYS:
            reasons.append(f"price key {key} has no unit in the engine")
            continue
        unit, divisor = GENAI_PRICE_KEYS[key]
        components.append(_component(unit, getattr(prices, key), divisor, when))
    return components


def _component(unit: str, value: Decimal | TieredPrices, divisor: int, when: dict) -> dict:
    def scaled(price: Decimal) -> str:
        return format(price / divisor if divisor != 1 else price, "f")

    component: dict[str, Any] = {"unit": unit}
    if isinstance(value, TieredPrices):
        component["price"] = scaled(value.base)
        component["tiers"] = [{"start": t.start, "price": scaled(t.price)} for t in value.tiers]
    else:
        component["price"] = scaled(value)
    if when:
        component["when"] = dict(when)
    return component


# ---------------------------------------------------------------- LiteLLM


def _per(value: Any, scale: int = 1) -> str:
    """A LiteLLM float (USD per one unit) as an exact decimal string per `scale` units."""
    return decimal_string(Decimal(repr(float(value))) * scale)


SERVICE_TIERS = ("priority", "flex")
_ABOVE = re.compile(r"input_cost_per_token_above_(\d+)(k?)_tokens")
_SIZE = re.compile(r"(\d+)-x-(\d+)")
IMAGE_QUALITIES = {"standard", "hd", "low", "medium", "high", "auto"}
# LiteLLM token-cost key (without tier or service-tier suffix) -> (unit, scale)
LITELLM_TOKEN_KEYS = {
    "input_cost_per_token": ("input_tokens", 1_000_000),
    "output_cost_per_token": ("output_tokens", 1_000_000),
    "cache_read_input_token_cost": ("cache_read_tokens", 1_000_000),
    "cache_creation_input_token_cost": ("cache_write_tokens", 1_000_000),
}


def from_litellm(key: str, entry: Mapping[str, Any]) -> tuple[list[dict] | None, list[str]]:
    """One LiteLLM price-map entry as a schedule, and the cost keys it could not express."""
    raise NotImplementedError


def combine(schedules: Iterable[list[dict]]) -> list[dict]:
    """Single-entry schedules (say, one LiteLLM key per image size) merged into one."""
    components = [c for schedule in schedules for entry in schedule for c in entry["components"]]
    return validate([{"effectiveFrom": None, "components": components}])
