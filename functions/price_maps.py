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

from functions.prices import UNITS, PricingError, decimal_string, select_components, validate

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
        return None, [error.message]


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
#
# The format and the cost rules followed are those of LiteLLM's main branch as read for this
# converter (litellm 1.80.x; pyproject of BerriAI/litellm 813b8fd): `generic_cost_per_token(model,
# usage, custom_llm_provider, service_tier, data_residency)` and `_get_token_base_cost` in
# litellm_core_utils/llm_cost_calc/utils.py, `batch_cost_calculator`,
# `default_image_cost_calculator`, `default_video_cost_calculator` with
# `_video_output_cost_per_second`, `openai.cost_calculation.cost_per_second`, and
# `StandardBuiltInToolCostTracking.get_cost_for_web_search`. Where LiteLLM and the engine differ
# on purpose:
# - an entry without a cache price bills cached tokens at 0 in LiteLLM (its default); the
#   converter leaves them at the input rate (genai-prices' rule) rather than invent a free price;
# - LiteLLM bills one web-search query per response; quote with `webSearches: 1` for that;
# - `*_batches` prices are read only in pairs (input and output); LiteLLM halves the other side.

SERVICE_TIERS = ("priority", "flex")
_ABOVE = re.compile(r"input_cost_per_token_above_(\d+k?)_tokens")
_SIZE = re.compile(r"(\d+)-x-(\d+)")
IMAGE_QUALITIES = {"standard", "hd", "low", "medium", "high", "auto"}
# unit -> (LiteLLM base key, its key above a threshold, with {t} for "200k")
TOKEN_KEYS = {
    "input_tokens": ("input_cost_per_token", "input_cost_per_token_above_{t}_tokens"),
    "output_tokens": ("output_cost_per_token", "output_cost_per_token_above_{t}_tokens"),
    "cache_read_tokens": ("cache_read_input_token_cost",
                          "cache_read_input_token_cost_above_{t}_tokens"),
    "cache_write_tokens": ("cache_creation_input_token_cost",
                           "cache_creation_input_token_cost_above_{t}_tokens"),
    "cache_write_1h_tokens": ("cache_creation_input_token_cost_above_1hr",
                              "cache_creation_input_token_cost_above_1hr_above_{t}_tokens"),
}
# unit -> flat LiteLLM key (no tiers); only input audio follows the service tier
MEDIA_TOKEN_KEYS = {
    "input_audio_tokens": "input_cost_per_audio_token",
    "input_image_tokens": "input_cost_per_image_token",
    "input_video_tokens": "input_cost_per_video_token",
    "output_audio_tokens": "output_cost_per_audio_token",
    "output_image_tokens": "output_cost_per_image_token",
    "output_video_tokens": "output_cost_per_video_token",
    "output_reasoning_tokens": "output_cost_per_reasoning_token",
}
PER_MILLION = 1_000_000


class _Entry:
    """A LiteLLM entry whose cost keys are read as exact decimals, remembering which."""

    def __init__(self, entry: Mapping[str, Any]):
        self.entry = entry
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        value = self.entry.get(key)
        return value is not None and not isinstance(value, bool)

    def number(self, key: str) -> Decimal | None:
        if not self.has(key):
            return None
        self.used.add(key)
        return Decimal(repr(float(self.entry[key])))

    def rate(self, key: str, tier: str | None, default: Decimal | None) -> Decimal | None:
        """LiteLLM's _get_cost_per_unit(_get_service_tier_cost_key(key, tier), default)."""
        if tier is not None and self.has(f"{key}_{tier}"):
            return self.number(f"{key}_{tier}")
        value = self.number(key)
        return default if value is None else value

    def unread(self) -> list[str]:
        return sorted(k for k, v in self.entry.items()
                      if k not in self.used and v is not None and not isinstance(v, bool)
                      and ("cost" in k or "multiplier" in k or k == "tiered_pricing"))


def from_litellm(key: str, entry: Mapping[str, Any]) -> tuple[list[dict] | None, list[str]]:
    """One LiteLLM price-map entry as a schedule, and the cost keys it could not express."""
    lite = _Entry(entry)
    reasons: list[str] = []
    components = _litellm_tokens(lite, reasons)
    components += _litellm_media(key, lite, reasons)
    reasons += [f"{k} is not expressed" for k in lite.unread()]
    try:
        return validate([{"effectiveFrom": None, "components": components}]), reasons
    except PricingError as error:
        return None, [*reasons, error.message]


def _thresholds(lite: _Entry) -> list[tuple[str, int]]:
    """LiteLLM's price thresholds: ("200k", 200000) for input_cost_per_token_above_200k_tokens."""
    found = []
    for key in lite.entry:
        match = _ABOVE.fullmatch(key)
        if match and lite.has(key):
            label = match.group(1)
            found.append((label, int(label.rstrip("k")) * (1000 if label.endswith("k") else 1)))
    return sorted(found, key=lambda t: t[1])


def _litellm_tokens(lite: _Entry, reasons: list[str]) -> list[dict]:
    tiers = [s for s in SERVICE_TIERS if any(k.endswith(f"_{s}") and lite.has(k)
                                             for k in lite.entry)]
    components = []
    for tier in [None, *tiers]:
        components += _token_components(lite, tier)
    components = _with_overlaps(components)
    return components + _batch_components(lite, components, reasons)


def _token_components(lite: _Entry, tier: str | None) -> list[dict]:
    """The token prices under one service tier (None: standard), as LiteLLM resolves them."""
    when = {"serviceTier": tier} if tier else {}
    thresholds = _thresholds(lite)
    chosen: dict[str, dict] = {}
    for unit, (base_key, above_key) in TOKEN_KEYS.items():
        base = lite.rate(base_key, tier, None)
        if unit == "output_tokens" and not base:
            base = lite.number("output_cost_per_image_token") or base
        if base is None:
            continue
        chosen[unit] = {"unit": unit, "price": _per_million(base)}
        if thresholds:
            chosen[unit]["tiers"] = [
                {"start": start, "price": _per_million(
                    lite.rate(above_key.format(t=label), tier, base))}
                for label, start in thresholds]
    for unit, key in MEDIA_TOKEN_KEYS.items():
        price = lite.rate(key, tier if unit == "input_audio_tokens" else None, None)
        if price is not None:
            chosen[unit] = {"unit": unit, "price": _per_million(price)}
        if unit == "input_audio_tokens" and tier and not lite.has(f"{key}_{tier}") and (
                price is not None and "input_tokens" in chosen):
            # LiteLLM: without a tier audio price, audio goes at the tier's input rate
            chosen[unit] = {**chosen["input_tokens"], "unit": unit}
    for component in chosen.values():
        if when:
            component["when"] = dict(when)
    return list(chosen.values())


def _per_million(price: Decimal) -> str:
    return decimal_string(price * PER_MILLION)


def _with_overlaps(components: list[dict]) -> list[dict]:
    """Price the overlaps the engine requires (cached audio input when both cache reads and
    audio input are priced) at the cache price: in LiteLLM's usage, cached and media tokens
    are disjoint, so these counts are 0 there."""
    out = list(components)
    whens = [{}] + [c["when"] for c in components if "when" in c]
    for options in whens:
        chosen = select_components(out, options)
        for cache in ("cache_read_tokens", "cache_write_tokens"):
            for media in ("input_audio_tokens", "input_image_tokens", "input_video_tokens"):
                join = _join(cache, media)
                if cache in chosen and media in chosen and join and join not in chosen:
                    component = {k: v for k, v in chosen[cache].items() if k != "when"}
                    component["unit"] = join
                    if options:
                        component["when"] = dict(options)
                    out.append(component)
                    chosen = select_components(out, options)
    return out


def _join(a: str, b: str) -> str | None:
    dimensions = UNITS[a].dimensions | UNITS[b].dimensions
    return next((u.name for u in UNITS.values() if u.dimensions == dimensions), None)


def _batch_components(lite: _Entry, components: list[dict], reasons: list[str]) -> list[dict]:
    """processing=batch: LiteLLM's batch_cost_calculator bills every prompt token (cached too)
    at input_cost_per_token_batches and every completion token at output_cost_per_token_batches,
    without tiers."""
    keys = ("input_cost_per_token_batches", "output_cost_per_token_batches")
    present = [k for k in keys if lite.has(k)]
    if not present:
        return []
    if len(present) == 1 or not all(lite.entry[k] for k in keys):
        reasons.append("batch prices need both input_cost_per_token_batches and "
                       "output_cost_per_token_batches (LiteLLM halves the missing one)")
        lite.used.update(present)
        return []
    prices = {"input": _per_million(lite.number(keys[0])),
              "output": _per_million(lite.number(keys[1]))}
    units = dict.fromkeys(c["unit"] for c in components if UNITS[c["unit"]].tiered)
    return [{"unit": unit, "price": prices[dict(UNITS[unit].dimensions)["direction"]],
             "when": {"processing": "batch"}} for unit in units]


def _litellm_media(key: str, lite: _Entry, reasons: list[str]) -> list[dict]:
    mode = lite.entry.get("mode", "chat")
    return [*_litellm_images(key, lite, reasons), *_litellm_seconds(mode, lite, reasons),
            *_litellm_characters(lite), *_litellm_web_search(lite)]


def image_options(key: str) -> dict[str, str]:
    """The size and quality a LiteLLM image key names: "hd/1024-x-1792/dall-e-3" ->
    {"size": "1024x1792", "quality": "hd"}; {} when it names no size."""
    parts = key.split("/")
    sizes = [p for p in parts if _SIZE.fullmatch(p)]
    if not sizes:
        return {}
    options = {"size": sizes[0].replace("-x-", "x")}
    qualities = [p for p in parts if p in IMAGE_QUALITIES]
    if qualities:
        options["quality"] = qualities[0]
    return options


def _litellm_images(key: str, lite: _Entry, reasons: list[str]) -> list[dict]:
    """Images: output_cost_per_image each; for a size key, input_cost_per_pixel x width x
    height each (LiteLLM's default image calculator)."""
    when = image_options(key)
    components = []
    per_image = lite.number("output_cost_per_image")
    if per_image is None and lite.has("input_cost_per_pixel"):
        if when:
            width, height = map(int, when["size"].split("x"))
            per_image = lite.number("input_cost_per_pixel") * width * height
        else:
            reasons.append("input_cost_per_pixel without a size in the key (the size is the "
                           "request's): use the size keys")
    if lite.has("output_cost_per_pixel") and lite.number("output_cost_per_pixel") != 0:
        reasons.append("output_cost_per_pixel is not used by LiteLLM's image calculator")
    if per_image is not None:
        components.append(_media("image", per_image, 1, when))
    if lite.has("input_cost_per_image"):
        components.append(_media("input_image", lite.number("input_cost_per_image"), 1, {}))
    return components


def _litellm_seconds(mode: str, lite: _Entry, reasons: list[str]) -> list[dict]:
    if mode == "audio_transcription":
        # cost_per_second: output_cost_per_second x the audio's duration if set (the input
        # price is then unused), else input_cost_per_second x duration
        price = lite.number("output_cost_per_second")
        if price is None:
            price = lite.number("input_cost_per_second")
        else:
            lite.used.add("input_cost_per_second")
        return [] if price is None else [_media("audio_hour", price, 3600, {})]
    if mode != "video_generation":
        return []  # per-second keys of other modes (response time) stay unread
    per_video_second = lite.number("output_cost_per_video_per_second")
    if per_video_second is not None:  # LiteLLM takes it before any other per-second key
        lite.used |= {k for k in lite.entry if k.startswith("output_cost_per_second")}
        return [_media("second", per_video_second, 1, {})]
    components = []
    if lite.has("output_cost_per_second"):
        components.append(_media("second", lite.number("output_cost_per_second"), 1, {}))
    for key in sorted(lite.entry):
        if key.startswith("output_cost_per_second_") and lite.has(key):
            resolution = key.removeprefix("output_cost_per_second_").lower()
            components.append(_media("second", lite.number(key), 1, {"resolution": resolution}))
    return components


def _litellm_characters(lite: _Entry) -> list[dict]:
    components = []
    for unit, key in (("characters", "input_cost_per_character"),
                      ("output_characters", "output_cost_per_character")):
        if lite.has(key):
            components.append(_media(unit, lite.number(key), 1000, {}))
    return components


def _litellm_web_search(lite: _Entry) -> list[dict]:
    """search_context_cost_per_query: medium when the request names no size (LiteLLM's
    default), low and high by `searchContextSize`; a size without a price costs 0."""
    prices = lite.entry.get("search_context_cost_per_query")
    if not isinstance(prices, Mapping):
        return []
    lite.used.add("search_context_cost_per_query")

    def price(size: str) -> Decimal:
        return Decimal(repr(float(prices.get(f"search_context_size_{size}") or 0)))

    return [_media("web_search", price("medium"), 1, {}),
            *(_media("web_search", price(size), 1, {"searchContextSize": size})
              for size in ("low", "high"))]


def _media(unit: str, price: Decimal, scale: int, when: dict) -> dict:
    component: dict[str, Any] = {"unit": unit, "price": decimal_string(price * scale)}
    if when:
        component["when"] = dict(when)
    return component


def combine(schedules: Iterable[list[dict]]) -> list[dict]:
    """Single-entry schedules (say, one LiteLLM key per image size and quality) merged into
    one."""
    components = [c for schedule in schedules for entry in schedule for c in entry["components"]]
    return validate([{"effectiveFrom": None, "components": components}])
