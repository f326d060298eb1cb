"""Converters from public price maps to the engine's schedules (`functions.prices`).

- `from_genai_prices(model, provider_id)`: a genai-prices `ModelInfo` (Decimal data, exact).
- `from_litellm(key, entry)`: one entry of LiteLLM's `model_prices_and_context_window.json`
  (floats, taken by their shortest repr, so 2.5e-06 per token is exactly "2.5" per 1M).

Each returns `(schedule, reasons)`: `reasons` names what the converter could not express; a
genai-prices schedule is None when anything is missing (a partial price would misquote), a
LiteLLM schedule prices what was expressed. A LiteLLM reason is either a price left unexpressed
("<key> is not expressed", or a sentence saying why) or, for a key that is not a price of the
request the catalog quotes (an uplift for a special deployment region, a field LiteLLM's own cost
code does not read), "ignored: <key>: <why>" (`is_ignored`, `LITELLM_NOT_REQUEST_PRICES`):
nothing is dropped silently, and no key becomes a price other than the one LiteLLM charges.

LiteLLM keys and the engine usage that quotes them:

- `*_cost_per_token`, `*_above_<n>_tokens`, `tiered_pricing`: token units, tiered by input;
- `*_<tier>` (flex, balanced, priority, ultrafast): option `serviceTier` (LiteLLM's "fast"
  bills at the priority keys: quote priority); `*_batches`: option `processing: batch`;
- `cache_read_input_audio/image_token_cost`: `cacheAudioReadTokens`, `cacheImageReadTokens`;
- `cache_creation_input_token_cost_above_1hr/12hr`: `cacheWrite1hTokens`, `cacheWrite12hTokens`;
- `explicit_cache_read_input_token_cost`: option `cacheType: ephemeral` (LiteLLM's
  prompt_tokens_details.cache_type);
- `off_peak_pricing`: `utcTime` entries with `days`;
- `input_cost_per_query`: `queries` (rerank search units, search queries, query_count);
- `google_maps_grounding_cost_per_query`: `mapsSearches` (1 per grounded prompt, or the queries
  when `web_search_billing_unit` is "per_query");
- `input_cost_per_audio/video_per_second`: `inputAudioLengthSeconds`, `inputVideoLengthSeconds`;
- realtime `input_cost_per_second`, `input_cost_per_text_message`: `sessionSeconds`,
  `inputTextMessages`;
- `ocr_cost_per_page`, `annotation_cost_per_page`: `documentPages` = pages_processed +
  pages_processed_annotation (LiteLLM adds the two), `annotatedDocumentPages` =
  pages_processed_annotation;
- `input_cost_per_pixel` without a size in the key: `imagePixels` = width x height x images;
- fal.ai's `output_cost_per_image_<resolution>`: `images` with option `resolution`.

A model priced per character bills the characters in place of the text tokens: quote one or the
other. Media seconds likewise replace that medium's tokens.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from genai_prices.types import (
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)

from functions.prices import UNITS, PricingError, decimal_string, validate

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
        return validate(_free_priced(entries)), []
    except PricingError as error:
        return None, [error.message]


FREE_UNITS = ("input_tokens", "output_tokens")


def _free_priced(entries: list[dict]) -> list[dict]:
    """genai-prices entries with no price (a free model, or a free period: genai-prices prices
    it at 0) as a price of "0" for every unit the model is priced by otherwise (input and output
    tokens when it never is): so a quote of a free model is $0, not a refusal for want of a
    price."""
    units = list(dict.fromkeys(c["unit"] for e in entries for c in e["components"])) or FREE_UNITS
    return [e if e["components"] else {**e, "components": [{"unit": u, "price": "0"}
                                                            for u in units]}
            for e in entries]


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
# The cost rules followed are those of LiteLLM 1.110.2 (the wheel that ships the current map):
# `generic_cost_per_token` with `_get_token_base_cost`, `_calculate_input_cost`,
# `_calculate_cache_read_cost`, `get_modality_token_cost_key`, `_resolve_billed_reasoning_rate`
# and `get_cost_per_unit` (litellm_core_utils/llm_cost_calc/utils.py), `select_tier_for_input`
# (llm_cost_calc/tiered_pricing.py), `batch_cost_calculator` with `get_batch_cost_rates` and
# `_batch_prompt_cost`, `ocr_cost`, `ocr_batch_cost`, `default_image_cost_calculator`,
# `default_video_cost_calculator` (cost_calculator.py), `openai.cost_calculation.cost_per_second`,
# the rerank and search per-query calculators, `gemini.cost_calculator` (Google Maps grounding),
# `StandardBuiltInToolCostTracking.get_cost_for_web_search` and the dashscope calculator.
#
# Token prices are read the way LiteLLM resolves them for a request of n input tokens: each unit's
# rate is computed as a function of n (thresholds `*_above_<n>_tokens`, `tiered_pricing` ranges,
# service-tier suffixes and their fall-backs) and written as the engine's tiers, which are exact
# because those rates only change where n passes a threshold. Where LiteLLM and the engine
# differ on purpose, or LiteLLM applies a rule in code:
# - LiteLLM bills one web-search (and one Maps-grounding) query per response unless the model's
#   `web_search_billing_unit` is "per_query"; quote with `webSearches: 1` for that;
# - `*_batches` prices are read only when both sides are given: LiteLLM halves a missing side
#   (`_batch_or_half`), a price that is not in the map, so the entry then says so;
# - in code, fireworks_ai bills cached input at input_cost_per_token x 0.5 when the map has no
#   cache price (`FIREWORKS_AI_DEFAULT_CACHE_READ_RATE_RATIO`): the converter gives that exact
#   product as the cache-read price;
# - in code, xai's thresholds are reached at n >= threshold (others: n > threshold): the tier
#   starts one token lower, exactly the same for whole token counts;
# - a media price without input_cost_per_token (a transcription model priced per audio token):
#   LiteLLM bills the rest of the prompt at 0 (get_cost_per_unit's default); the engine needs the
#   broader price, so input_tokens is priced at that 0.
# - a request of 0 input tokens: `tiered_pricing` picks no tier (LiteLLM then reads the flat keys,
#   0 when absent); the schedule says the same with a tier starting at 0.
# - perplexity's `*_above_<n>k_tokens` keys are read as every provider's are: LiteLLM's perplexity
#   calculator bills what Perplexity reports, and in its fall-back reads only the flat rates; the
#   map's threshold rates are the provider's published ones, so they are kept.
# - fal.ai's keyed image prices (fal_ai/<quality>/<W>-x-<H>/<model>): `fal_keyed` gives LiteLLM's
#   defaults (quality "high", size 1024x768) and nearest row for the sizes a request may name;
#   another size is refused rather than priced at the nearest row.
#
# Keys that are not a price of the request the catalog quotes are listed in
# `LITELLM_NOT_REQUEST_PRICES` and reported as "ignored: <key>: <why>", never silently dropped.

# LiteLLM's service-tier cost-key suffixes (ServiceTier; "fast" bills at the "priority" keys).
SERVICE_TIERS = ("flex", "balanced", "priority", "ultrafast")
_TIER_SUFFIXES = ("_ultrafast", "_balanced", "_priority", "_auto", "_flex", "_fast")
_NON_STANDARD_SUFFIXES = (*_TIER_SUFFIXES, "_batches")
_RATE_PREFIXES = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
                  "cache_creation_input_token_cost")
TTL_KEYS = {"1hr": "cache_creation_input_token_cost_above_1hr",
            "12hr": "cache_creation_input_token_cost_above_12hr"}
TTL_UNITS = {"1hr": "cache_write_1h_tokens", "12hr": "cache_write_12h_tokens"}
_BATCH_TIER_KEY = re.compile(
    rf"^({'|'.join([*_RATE_PREFIXES, *TTL_KEYS.values()])})_above_(\d+k?)_tokens_batches$")
_ANY_THRESHOLD = re.compile(r"_above_(\d+k?)_tokens")
INCLUSIVE_THRESHOLD_PROVIDERS = frozenset({"xai"})
FIREWORKS_CACHE_READ_RATIO = Decimal("0.5")
_SIZE = re.compile(r"(\d+)-x-(\d+)")
IMAGE_QUALITIES = {"standard", "hd", "low", "medium", "high", "auto"}
PER_MILLION = 1_000_000
ZERO = Decimal(0)
IGNORED = "ignored: "

_UPLIFT = ("an uplift LiteLLM applies to every token price only when the request is served {}, "
           "a deployment the catalog does not quote")
# key -> why it is not a price of the request the catalog quotes (checked against LiteLLM's code)
LITELLM_NOT_REQUEST_PRICES = {
    "fedramp_uplift_multiplier": _UPLIFT.format("from OpenAI's FedRAMP endpoint "
                                                "(data_residency=fedramp)"),
    "regional_processing_uplift_multiplier_eu": _UPLIFT.format("from OpenAI's EU hostname "
                                                               "(data_residency=eu)"),
    "regional_processing_uplift_multiplier_us": _UPLIFT.format("from OpenAI's US hostname "
                                                               "(data_residency=us)"),
    "regional_endpoint_uplift_multiplier": _UPLIFT.format("from a non-global Vertex AI location"),
    "provider_specific_entry.us": _UPLIFT.format("in the US geo (Anthropic inference_geo=us)"),
    "input_dbu_cost_per_token": "Databricks DBUs per token, not dollars (the dollar price is "
                                "input_cost_per_token = DBUs x $0.07); LiteLLM's cost code does "
                                "not read it",
    "output_dbu_cost_per_token": "Databricks DBUs per token, not dollars (the dollar price is "
                                 "output_cost_per_token = DBUs x $0.07); LiteLLM's cost code does "
                                 "not read it",
    "input_cost_per_token_cache_hit": "LiteLLM's cost code does not read it (cached input is "
                                      "billed at cache_read_input_token_cost)",
    "cache_creation_input_audio_token_cost": "LiteLLM's cost code does not read it (cache writes "
                                             "are billed at the cache-write prices whatever their "
                                             "modality)",
    "input_cost_per_request": "LiteLLM's cost code does not read it",
    # keys of the 1.80 map that LiteLLM 1.110.2's cost code no longer reads
    "output_db_cost_per_token": "Databricks DBUs (a misspelt output_dbu_cost_per_token), not "
                                "dollars; LiteLLM's cost code does not read it",
    "input_cost_per_token_batch_requests": "LiteLLM's cost code does not read it",
    "output_cost_per_image_premium_image": "LiteLLM's cost code does not read it",
    "output_cost_per_image_above_512_and_512_pixels": "LiteLLM's cost code does not read it",
    "output_cost_per_image_above_512_and_512_pixels_and_premium_image":
        "LiteLLM's cost code does not read it",
    "output_cost_per_image_above_1024_and_1024_pixels": "LiteLLM's cost code does not read it",
    "output_cost_per_image_above_1024_and_1024_pixels_and_premium_image":
        "LiteLLM's cost code does not read it",
    "search_free_requests": "a free daily quota of searches, not a price; LiteLLM's cost code "
                            "does not read it",
}
# A provisioned-throughput commitment is a price of reserved capacity per second, owed whether
# or not requests are made; LiteLLM prorates it by a response's wall-clock time.
_COMMITMENT = ("a provisioned-throughput commitment (reserved capacity by the second, owed "
               "whatever the requests; LiteLLM prorates it by response time), not a price of a "
               "request")
# Gemini 1.5-era keys that only llms/vertex_ai/cost_calculator.py reads (vertex_ai calls), and
# those no LiteLLM code reads
_VERTEX_CHARACTER_KEYS = ("input_cost_per_character_above_128k_tokens",
                          "output_cost_per_character_above_128k_tokens")
_UNREAD_ABOVE_128K = ("input_cost_per_image_above_128k_tokens",
                      "input_cost_per_audio_per_second_above_128k_tokens",
                      "input_cost_per_video_per_second_above_128k_tokens")
# unit -> the LiteLLM key prefixes whose presence prices it
_PRESENT = {
    "input_tokens": ("input_cost_per_token",),
    "output_tokens": ("output_cost_per_token",),
    "cache_read_tokens": ("cache_read_input_token_cost",),
    "cache_write_tokens": ("cache_creation_input_token_cost",),
    "cache_write_1h_tokens": (TTL_KEYS["1hr"],),
    "cache_write_12h_tokens": (TTL_KEYS["12hr"],),
    "input_audio_tokens": ("input_cost_per_audio_token",),
    "input_image_tokens": ("input_cost_per_image_token",),
    "input_video_tokens": ("input_cost_per_video_token",),
    "cache_audio_read_tokens": ("cache_read_input_audio_token_cost",),
    "cache_image_read_tokens": ("cache_read_input_image_token_cost",),
    "output_audio_tokens": ("output_cost_per_audio_token",),
    "output_image_tokens": ("output_cost_per_image_token",),
    "output_video_tokens": ("output_cost_per_video_token",),
    "output_reasoning_tokens": ("output_cost_per_reasoning_token",),
}
_TIERED_KEYS = {"input_tokens": "input_cost_per_token", "output_tokens": "output_cost_per_token",
                "cache_read_tokens": "cache_read_input_token_cost",
                "cache_write_tokens": "cache_creation_input_token_cost",
                "output_reasoning_tokens": "output_cost_per_reasoning_token"}


def is_ignored(reason: str) -> bool:
    """A reason that classifies a key as not a price of the request (nothing left unexpressed)."""
    return reason.startswith(IGNORED)


def _decimal(value: Any) -> Decimal | None:
    """A LiteLLM rate as an exact decimal (a float by its shortest repr), or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(float(value)))
    if isinstance(value, str):
        try:
            return Decimal(repr(float(value)))
        except ValueError:
            return None
    return None


def _not_numbers(value: Any, where: str = "", rate: bool = False) -> Iterable[tuple[str, Any]]:
    """Each rate of an entry that is there but is no number ("abc", true), with its path: a
    rate is a value under a key that names a cost (tiers and blocks of them included); the
    converter reads such a value as no rate, so it must be said."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _not_numbers(inner, f"{where}.{key}" if where else str(key),
                                    rate or "cost" in str(key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _not_numbers(inner, f"{where}[{i}]", rate)
    elif rate and value is not None and _decimal(value) is None:
        yield where, value


def _threshold(label: str) -> int:
    """"200k" -> 200000 (LiteLLM's _parse_token_threshold, on whole labels)."""
    return int(label.rstrip("k")) * (1000 if label.endswith("k") else 1)


def _above(key: str) -> int:
    return _threshold(key.rsplit("_above_", 1)[1].split("_tokens")[0])


class _Entry:
    """A LiteLLM entry whose rates are resolved as LiteLLM resolves them, remembering the keys
    read."""

    def __init__(self, key: str, entry: Mapping[str, Any]):
        self.key = key
        self.entry = dict(entry)
        self.provider = entry.get("litellm_provider")
        self.inclusive = self.provider in INCLUSIVE_THRESHOLD_PROVIDERS
        self.used: set[str] = set()
        self.ignored: set[str] = set()  # keys read as no price of the request (_classified)
        self.off_peak: Mapping | None = None  # the off_peak_pricing block, while its rates apply
        self.tiered = entry.get("tiered_pricing") if isinstance(
            entry.get("tiered_pricing"), list) and entry.get("tiered_pricing") else None

    def get(self, key: str) -> Any:
        value = self.entry.get(key)
        if value is not None and key in self.entry:
            self.used.add(key)
        return value

    def has(self, key: str) -> bool:
        return _decimal(self.entry.get(key)) is not None

    def number(self, key: str) -> Decimal | None:
        return _decimal(self.get(key))

    def cpu(self, key: str, default: Decimal | None = ZERO) -> Decimal | None:
        """get_cost_per_unit: the key; if absent, the key less its service-tier suffix."""
        value = self.get(key)
        if value is not None:
            parsed = _decimal(value)
            return default if parsed is None else parsed
        for suffix in _TIER_SUFFIXES:
            if suffix in key:
                fallback = _decimal(self.get(key.replace(suffix, "")))
                if fallback is not None:
                    return fallback
                break
        return default

    def exceeds(self, n: int, threshold: float, inclusive: bool | None = None) -> bool:
        inclusive = self.inclusive if inclusive is None else inclusive
        return n > threshold or (inclusive and n == threshold)

    # ------------------------------------------------------------ standard requests

    def tier_at(self, n: int) -> Mapping | None:
        """select_tier_for_input, when the tier has an input price (_select_priced_tier)."""
        if not self.tiered or n <= 0:
            return None
        ranged = sorted(((t["range"], t) for t in self.tiered if isinstance(t, Mapping)
                         and _is_range(t.get("range"))), key=lambda r: r[0][0])
        if not ranged:
            return None
        self.used.add("tiered_pricing")
        match = [t for (start, end), t in ranged if start < n <= end]
        tier = match[0] if match else ranged[-1][1]
        return tier if "input_cost_per_token" in tier else None

    def base(self, n: int, tier: str | None) -> dict[str, Any]:
        """_get_token_base_cost: input, output, cache read, cache write and TTL write rates."""
        ranged = self.tier_at(n)
        if ranged is not None:
            rates = {"input": _tier_rate(ranged, "input_cost_per_token"),
                     "output": _tier_rate(ranged, "output_cost_per_token")
                     if "output_cost_per_token" in ranged
                     else self.cpu("output_cost_per_token") or ZERO,
                     "read": _tier_rate(ranged, "cache_read_input_token_cost",
                                        "input_cost_per_token"),
                     "write": _tier_rate(ranged, "cache_creation_input_token_cost",
                                         "input_cost_per_token")}
            rates = self.apply_off_peak(rates)
            rates["ttl"] = {ttl: rates["write"] if ranged.get(key) is None
                            else _tier_rate(ranged, key) for ttl, key in TTL_KEYS.items()}
            return rates
        suffix = f"_{_tier_key(tier)}" if tier else ""
        rate_in = self.cpu("input_cost_per_token" + suffix)
        rate_out = self.cpu("output_cost_per_token" + suffix)
        if rate_out == 0:
            image = self.cpu("output_cost_per_image_token", None)
            if image is not None:
                rate_out = image
        write = self.cpu("cache_creation_input_token_cost" + suffix, None)
        read = self.cpu("cache_read_input_token_cost" + suffix, None)
        ttl_keys = {ttl: key + suffix for ttl, key in TTL_KEYS.items()}
        prefixes = tuple(f"{p}_above_" for p in _RATE_PREFIXES)
        keys = [k for k in self.entry if k.startswith(prefixes) and "_tokens" in k and (
            not k.endswith(_NON_STANDARD_SUFFIXES) or (suffix and k.endswith(suffix)))]
        for key in sorted(keys, key=_above):  # a marker: its own price is read if it applies
            if self.entry.get(key) is None or not self.exceeds(n, _above(key)):
                continue
            label = key.rsplit("_above_", 1)[1].split("_tokens")[0]
            rate_in = self.cpu(f"input_cost_per_token_above_{label}_tokens{suffix}", rate_in)
            rate_out = self.cpu(f"output_cost_per_token_above_{label}_tokens{suffix}", rate_out)
            write = self.cpu(f"cache_creation_input_token_cost_above_{label}_tokens{suffix}",
                             write)
            ttl_keys = {ttl: (f"{TTL_KEYS[ttl]}_above_{label}_tokens{suffix}" if self.entry.get(
                f"{TTL_KEYS[ttl]}_above_{label}_tokens{suffix}") is not None else key)
                for ttl, key in ttl_keys.items()}
            read = self.cpu(f"cache_read_input_token_cost_above_{label}_tokens{suffix}", read)
        missing = rate_in  # an absent cache rate is the input rate (off-peak's, in its window)
        if self.off_peak is not None:
            missing = _off_peak_rate(self.off_peak, "input_cost_per_token", rate_in)
        rates = self.apply_off_peak({
            "input": rate_in, "output": rate_out, "read": missing if read is None else read,
            "write": missing if write is None else write})
        ttl = {}
        for name, key in ttl_keys.items():
            value = self.cpu(key, None)
            ttl[name] = rates["write"] if value is None else value
        return {**rates, "ttl": ttl}

    def apply_off_peak(self, rates: dict) -> dict:
        """apply_off_peak_pricing: inside an off-peak window its rates replace these."""
        if self.off_peak is None:
            return rates
        self.used.add("off_peak_pricing")
        return {**rates, **{name: _off_peak_rate(self.off_peak, key, rates[name]) for name, key in (
            ("input", "input_cost_per_token"), ("output", "output_cost_per_token"),
            ("read", "cache_read_input_token_cost"),
            ("write", "cache_creation_input_token_cost"))}}

    def modality_key(self, cost_key: str, n: int, inclusive: bool = False) -> str:
        """get_modality_token_cost_key."""
        suffix = next((s for s in _NON_STANDARD_SUFFIXES if cost_key.endswith(s)), "")
        base = cost_key.removesuffix(suffix)
        found = [k for k in self.entry if k.startswith(f"{base}_above_")
                 and k.endswith(("_tokens", f"_tokens{suffix}")) and self.entry.get(k) is not None
                 and self.exceeds(n, _above(k), inclusive)]
        if not found:
            return cost_key
        return max(found, key=_above).removesuffix(suffix) + suffix

    def modality(self, key: str, n: int, tier: str | None, rate_in: Decimal,
                 thresholds: bool) -> Decimal:
        """_modality_token_cost: the media rate, else the (resolved) input rate."""
        suffix = f"_{_tier_key(tier)}" if tier else ""
        cost_key = self.modality_key(key + suffix, n if thresholds else 0,
                                     self.inclusive if thresholds else False)
        standard = cost_key.removesuffix(suffix) if suffix else cost_key
        if self.entry.get(cost_key) is None and self.entry.get(standard) is None:
            return rate_in
        return self.cpu(cost_key)

    def reasoning(self, n: int, tier: str | None, rate_out: Decimal) -> Decimal:
        """_resolve_billed_reasoning_rate."""
        if self.off_peak is not None and _off_peak_value(
                self.off_peak.get("output_cost_per_reasoning_token")) is not None:
            return _off_peak_value(self.off_peak["output_cost_per_reasoning_token"])
        ranged = self.tier_at(n)
        if ranged is not None and ("output_cost_per_reasoning_token" in ranged
                                   or "output_cost_per_token" in ranged):
            return _tier_rate(ranged, "output_cost_per_reasoning_token", "output_cost_per_token")
        suffix = f"_{_tier_key(tier)}" if tier else ""
        if self.entry.get("output_cost_per_reasoning_token" + suffix) is not None:
            value = self.cpu("output_cost_per_reasoning_token" + suffix, None)
            if value is not None:
                return value
        if suffix and self.entry.get("output_cost_per_token" + suffix) is not None:
            return rate_out
        standard = self.cpu("output_cost_per_reasoning_token", None)
        return rate_out if standard is None else standard

    def standard_rates(self, n: int, tier: str | None) -> dict[str, Decimal]:
        """Every token unit's rate for a request of n input tokens under a service tier."""
        base = self.base(n, tier)
        rate_in, rate_out, read = base["input"], base["output"], base["read"]
        suffix = f"_{_tier_key(tier)}" if tier else ""
        rates = {"input_tokens": rate_in, "output_tokens": rate_out, "cache_read_tokens": read,
                 "cache_write_tokens": base["write"],
                 "cache_write_1h_tokens": base["ttl"]["1hr"],
                 "cache_write_12h_tokens": base["ttl"]["12hr"],
                 "input_audio_tokens": self.modality("input_cost_per_audio_token", n, tier,
                                                     rate_in, True),
                 "input_image_tokens": self.modality("input_cost_per_image_token", n, tier,
                                                     rate_in, False),
                 "input_video_tokens": self.modality("input_cost_per_video_token", n, tier,
                                                     rate_in, False),
                 "cache_audio_read_tokens": self.cpu(
                     "cache_read_input_audio_token_cost" + suffix, read),
                 "cache_image_read_tokens": self.cpu(
                     "cache_read_input_image_token_cost" + suffix, read),
                 "output_reasoning_tokens": self.reasoning(n, tier, rate_out)}
        for unit, key in (("output_audio_tokens", "output_cost_per_audio_token"),
                          ("output_image_tokens", "output_cost_per_image_token" + suffix),
                          ("output_video_tokens", "output_cost_per_video_token")):
            value = self.cpu(key, None)
            rates[unit] = rate_out if value is None else value
        return rates

    # ------------------------------------------------------------ batches

    def _batch_rate(self, key: str) -> Decimal | None:
        return self.number(key)

    def batch_prefix(self, prefix: str, n: int) -> Decimal | None:
        """_batch_rate_for_prefix."""
        flat = f"{prefix}_batches"
        labels = {m.group(2) for k, v in self.entry.items()
                  if v is not None and (m := _BATCH_TIER_KEY.match(k)) and m.group(1) == prefix}
        crossed = next((label for label in sorted(labels, key=_threshold, reverse=True)
                        if self.exceeds(n, _threshold(label))), None)
        if crossed is None:
            return self._batch_rate(flat)
        rate = self._batch_rate(f"{prefix}_above_{crossed}_tokens_batches")
        return self._batch_rate(flat) if rate is None else rate

    def batch_media(self, key: str, fallback: Decimal, n: int) -> Decimal:
        """cost_calculator._batch_rate."""
        context = self.cpu(self.modality_key(key, n), None)
        rate = _decimal(self.get(key)) if context is None else context
        return fallback if rate is None else rate

    def batch_rates(self, n: int) -> dict[str, Decimal | None]:
        """batch_cost_calculator with an input batch price (`_batch_prompt_cost`) and an output
        batch price: the rate of every token unit."""
        rate_in = self.batch_prefix("input_cost_per_token", n)
        rate_out = self.batch_prefix("output_cost_per_token", n)
        if rate_out is None and _decimal(self.entry.get("output_cost_per_token")) == 0:
            rate_out = ZERO  # _batch_or_half: half of a 0 output price, still 0
            self.used.add("output_cost_per_token")
        batch_read = self.batch_prefix("cache_read_input_token_cost", n)
        batch_write = self.batch_prefix("cache_creation_input_token_cost", n)
        ttl = {name: rate for name, key in TTL_KEYS.items()
               if (rate := self.batch_prefix(key, n)) is not None}
        if rate_in is None or rate_out is None:
            return {"input_tokens": rate_in, "output_tokens": rate_out}
        read = batch_read if batch_read is not None else self.cpu(
            self.modality_key("cache_read_input_token_cost", n), None)
        write = rate_in if batch_write is None else batch_write
        if read is None:  # cached tokens are then billed as text
            cached_audio = read_any = rate_in
        else:
            read_any = read
            audio_fallback = batch_read if batch_read is not None else self.cpu(
                self.modality_key("cache_read_input_audio_token_cost", n), None)
            cached_audio = self.batch_media("cache_read_input_audio_token_cost_batches",
                                            read if audio_fallback is None else audio_fallback, n)
        image_out = self._batch_rate("output_cost_per_image_token_batches")
        if image_out is None and self.has("output_cost_per_image_token"):
            image_out = None  # halved by LiteLLM: reported
        elif image_out is None:
            image_out = rate_out
        return {"input_tokens": rate_in, "output_tokens": rate_out,
                "cache_read_tokens": read_any, "cache_image_read_tokens": read_any,
                "cache_video_read_tokens": read_any, "cache_audio_read_tokens": cached_audio,
                "cache_write_tokens": write,
                "cache_write_1h_tokens": ttl.get("1hr", write),
                "cache_write_12h_tokens": ttl.get("12hr", write),
                "cache_audio_write_tokens": write, "cache_image_write_tokens": write,
                "cache_video_write_tokens": write,
                "input_audio_tokens": self.batch_media("input_cost_per_audio_token_batches",
                                                       rate_in, n),
                "input_image_tokens": self.batch_media("input_cost_per_image_token_batches",
                                                       rate_in, 0),
                "input_video_tokens": self.batch_media("input_cost_per_video_token_batches",
                                                       rate_in, 0),
                "output_audio_tokens": rate_out, "output_video_tokens": rate_out,
                "output_reasoning_tokens": rate_out, "output_image_tokens": image_out}

    def unread(self) -> list[str]:
        """The cost keys no rule read (each is then reported)."""
        return sorted(k for k, v in self.entry.items()
                      if k not in self.used and v is not None and not isinstance(v, bool)
                      and ("cost" in k or "multiplier" in k
                           or k in ("tiered_pricing", "off_peak_pricing")))

    # ------------------------------------------------------------ where rates change

    def starts(self) -> list[int]:
        """Every input-token count above which some rate may change: 0 (no tier for an empty
        request), each threshold (one lower where it is inclusive) and each range bound."""
        found = {0}
        for key in self.entry:
            for label in _ANY_THRESHOLD.findall(key):
                found |= {_threshold(label), _threshold(label) - 1}
        for tier in self.tiered or ():
            if isinstance(tier, Mapping) and _is_range(tier.get("range")):
                found |= {math.floor(bound) for bound in tier["range"]
                          if 0 <= bound < math.inf}  # (an open end is no start; NaN none)
        return sorted(s for s in found if s >= 0)


def _off_peak_value(value: Any) -> Decimal | None:
    """_parse_off_peak_rate."""
    return None if isinstance(value, bool) else _decimal(value)


def _off_peak_rate(block: Mapping, key: str, standard: Decimal) -> Decimal:
    value = _off_peak_value(block.get(key))
    return standard if value is None else value


def _is_range(value: Any) -> bool:
    return (isinstance(value, list | tuple) and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value))


def _tier_key(tier: str) -> str:
    return "priority" if tier == "fast" else tier


def _tier_rate(tier: Mapping, key: str, fallback: str | None = None) -> Decimal:
    """tiered_pricing.tier_rate."""
    value = tier.get(key)
    if value is not None:
        return _decimal(value) or ZERO
    if fallback is None:
        return ZERO
    return _decimal(tier.get(fallback, 0)) or ZERO


def _per_million(price: Decimal) -> str:
    return decimal_string(price * PER_MILLION)


def _piecewise(unit: str, rate, starts: list[int], when: dict) -> dict | None:
    """A component from rate(n): its price for n = 0 and a tier wherever it changes."""
    base = rate(0)
    if base is None:
        return None
    component: dict[str, Any] = {"unit": unit, "price": _per_million(base)}
    tiers, previous = [], base
    for start in starts:
        value = rate(start + 1)
        if value is None:
            return None
        if value != previous:
            tiers.append({"start": start, "price": _per_million(value)})
            previous = value
    if tiers:
        component["tiers"] = tiers
    if when:
        component["when"] = dict(when)
    return component


def from_litellm(key: str, entry: Mapping[str, Any]) -> tuple[list[dict] | None, list[str]]:
    """One LiteLLM price-map entry as a schedule, and what it could not express: "<key> is not
    expressed" (or a sentence saying why), and "ignored: <key>: <why>" for a key that is not a
    price of the request (`is_ignored`)."""
    entry = dict(entry)
    reasons: list[str] = []
    if (entry.get("litellm_provider") == "fireworks_ai" and entry.get(
            "cache_read_input_token_cost") is None and _decimal(
            entry.get("input_cost_per_token")) is not None):
        entry["cache_read_input_token_cost"] = (
            _decimal(entry["input_cost_per_token"]) * FIREWORKS_CACHE_READ_RATIO)
    lite = _Entry(key, entry)
    tokens = _litellm_tokens(lite, reasons)
    media = _litellm_media(key, lite, reasons)
    entries = [{"effectiveFrom": None, "components": tokens + media}]
    windows = _off_peak_windows(lite, reasons)
    if windows:
        lite.off_peak = lite.entry["off_peak_pricing"]
        order = _token_units(lite)
        batch = [c for c in tokens if c.get("when", {}).get("processing") == "batch"]
        off_peak = _token_components(lite, order, reasons, batch=False) + batch + media
        lite.off_peak = None
        entries += [{"effectiveFrom": None, "utcTime": window, "components": off_peak}
                    for window in windows]
    reasons += _classified(lite)
    unread = lite.unread()
    reasons += [f"{k} is not expressed" for k in unread]
    said = {*unread, *lite.ignored}
    reasons += [f"{where} is not expressed: {value!r} is not a number"  # read as no rate
                for where, value in _not_numbers(entry)
                if re.split(r"[.\[]", where)[0] not in said]
    try:
        return validate(entries), reasons
    except PricingError as error:
        return None, [*reasons, error.message]


def _off_peak_windows(lite: _Entry, reasons: list[str]) -> list[dict]:
    """off_peak_pricing's windows (_is_off_peak) as the engine's UTC windows: the every-day
    `hours_utc`, and each rule of `windows` on its weekdays, read on `weekday_timezone`'s calendar
    (a zone of fixed offset: its day starts at a fixed UTC time, where a window is split)."""
    block = lite.entry.get("off_peak_pricing")
    if not isinstance(block, Mapping):
        return []
    offset = _fixed_offset_minutes(block.get("weekday_timezone"))
    if offset is None:
        reasons.append(f"off_peak_pricing is not expressed (weekday_timezone "
                       f"{block.get('weekday_timezone')!r} has no fixed UTC offset)")
        lite.used.add("off_peak_pricing")
        return []
    rules = [(block.get("hours_utc"), None)]
    rules += [(rule.get("hours_utc"), rule.get("weekdays")) for rule in block.get("windows") or ()
              if isinstance(rule, Mapping)]
    found: list[dict] = []
    for hours, weekdays in rules:
        days = None if weekdays is None else _weekdays(weekdays)
        for text in [hours] if isinstance(hours, str) else hours or ():
            span = _span(text)
            if span is None:
                continue  # LiteLLM skips a malformed window
            for window in _utc_windows(*span, days, offset):
                if window not in found:
                    found.append(window)
    if found:
        lite.used.add("off_peak_pricing")
    return found


_WEEKDAY_NAMES = {"mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2, "wed": 3,
                  "wednesday": 3, "thu": 4, "thur": 4, "thurs": 4, "thursday": 4, "fri": 5,
                  "friday": 5, "sat": 6, "saturday": 6, "sun": 7, "sunday": 7}


def _weekdays(values: Any) -> set[int]:
    """_matches_weekdays' allowed days (an unusable list allows none)."""
    if isinstance(values, str) or not isinstance(values, list | tuple):
        return set()
    days = set()
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 7:
            days.add(value)
        elif isinstance(value, str) and value.strip().lower() in _WEEKDAY_NAMES:
            days.add(_WEEKDAY_NAMES[value.strip().lower()])
    return days


def _span(text: Any) -> tuple[int, int] | None:
    """"HH:MM-HH:MM" as minutes of the UTC day, or None when LiteLLM would skip it."""
    if not isinstance(text, str) or text.count("-") != 1:
        return None
    try:
        start, end = (datetime.strptime(part.strip(), "%H:%M") for part in text.split("-"))
    except ValueError:
        return None
    return start.hour * 60 + start.minute, end.hour * 60 + end.minute


def _fixed_offset_minutes(zone: Any) -> int | None:
    """The zone's UTC offset in minutes if it never changes (UTC when unnamed), else None."""
    if not isinstance(zone, str) or not zone.strip():
        return 0
    try:
        info = ZoneInfo(zone.strip())
    except (ValueError, ZoneInfoNotFoundError):
        return 0  # LiteLLM reads an unknown zone as UTC
    offsets = {info.utcoffset(datetime(year, month, 1)) for year in range(1995, 2040)
               for month in (1, 4, 7, 10)}
    if len(offsets) != 1:
        return None
    return int(offsets.pop().total_seconds() // 60)


def _utc_windows(start: int, end: int, days: set[int] | None, offset: int) -> list[dict]:
    """A window of UTC minutes [start, end) (wrapping midnight when end <= start; equal: the
    whole day) on days of a calendar offset from UTC, as engine windows on UTC days."""
    if days is not None and not days:
        return []
    pieces = [(start, end)] if start < end else [(start, 1440), (0, end)]
    if days is None:
        cuts = pieces
    else:
        boundary = (-offset) % 1440  # where the local day starts, in UTC minutes
        cuts = []
        for a, b in pieces:
            cuts += [(a, min(b, boundary)), (max(a, boundary), b)] if a < boundary < b else [
                (a, b)]
    windows = []
    for a, b in cuts:
        if a >= b:
            continue
        window: dict[str, Any] = {"start": _clock_minutes(a), "end": _clock_minutes(b % 1440)}
        if days is not None:
            local_shift = 0 if offset == 0 else (1 if offset > 0 and a >= (-offset) % 1440
                                                 else -1 if offset < 0 and a < (-offset) % 1440
                                                 else 0)
            window["days"] = sorted((d - 1 - local_shift) % 7 + 1 for d in days)
        elif window["start"] == window["end"]:
            return [{"start": "00:00", "end": "00:00", "days": list(range(1, 8))}]
        windows.append(window)
    return windows


def _clock_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _classified(lite: _Entry) -> list[str]:
    """"ignored: <key>: <why>" for each key that is not a price of the request, and what is a
    price but sits outside the cost keys (provider_specific_entry, off_peak_pricing)."""
    out = []

    def ignore(key: str, why: str) -> None:
        lite.used.add(key)
        lite.ignored.add(key)
        out.append(f"{IGNORED}{key}: {why}")

    special = lite.entry.get("provider_specific_entry")
    special = special if isinstance(special, Mapping) else {}
    for key, why in LITELLM_NOT_REQUEST_PRICES.items():
        child = key.partition(".")[2]
        present = child in special if child else lite.entry.get(key) is not None
        if present:
            ignore(key, why)
    if "commitment" in lite.key and not any(
            k.startswith(("input_cost_per_token", "output_cost_per_token")) for k in lite.entry):
        for key in ("cost_per_second", "input_cost_per_second", "output_cost_per_second"):
            if lite.entry.get(key) is not None:
                ignore(key, _COMMITMENT)
    if lite.entry.get("mode") == "audio_speech" and lite.has("output_cost_per_second"):
        ignore("output_cost_per_second", "LiteLLM's speech cost path bills characters or "
               "tokens and does not read it")
    for key in _UNREAD_ABOVE_128K:
        if lite.entry.get(key) is not None:
            ignore(key, "LiteLLM's cost code does not read it")
    if lite.provider == "gemini":
        for key in _VERTEX_CHARACTER_KEYS:
            if lite.entry.get(key) is not None:
                ignore(key, "read only by LiteLLM's Vertex AI character calculator; the gemini "
                       "provider's (generic_cost_per_token) does not read it")
    for child, why in (("fast", "a multiplier of every price for speed=fast"),
                       ("minimax_free_input_images", "input images free per request")):
        if child in special:
            out.append(f"provider_specific_entry.{child} ({why}) is not expressed")
    return out


def _litellm_tokens(lite: _Entry, reasons: list[str]) -> list[dict]:
    """Token prices: standard, by service tier (`serviceTier`) and batch (`processing`)."""
    return _token_components(lite, _token_units(lite), reasons, batch=True)


def _token_units(lite: _Entry) -> list[str]:
    """The token units the entry prices (with the broader units and overlaps they need)."""
    units = [u for u, prefixes in _PRESENT.items()
             if any(k.startswith(prefixes) and lite.has(k) for k in lite.entry)]
    for tier in lite.tiered or ():
        if isinstance(tier, Mapping):
            units += [u for u, k in _TIERED_KEYS.items() if tier.get(k) is not None]
    if not units:
        return []
    units = set(units)
    if any(dict(UNITS[u].dimensions).get("direction") == "input" for u in units):
        units.add("input_tokens")
    if any(dict(UNITS[u].dimensions).get("direction") == "output" for u in units):
        units.add("output_tokens")
    if units & set(TTL_UNITS.values()):
        units.add("cache_write_tokens")
    if units & {"input_audio_tokens", "input_image_tokens", "input_video_tokens"}:
        # LiteLLM bills cached media at the cache-read rate (the input rate when the entry has
        # none), not at the media rate
        units.add("cache_read_tokens")
    for cache in ("cache_read_tokens", "cache_write_tokens"):
        for media in ("input_audio_tokens", "input_image_tokens", "input_video_tokens"):
            if cache in units and media in units:
                units.add(_join(cache, media))
    return [u for u in UNITS if u in units]


def _token_components(lite: _Entry, order: list[str], reasons: list[str], batch: bool
                      ) -> list[dict]:
    if not order:
        return []
    starts = lite.starts()
    points = [0, *(s + 1 for s in starts)]

    def table(rates) -> dict[int, dict]:
        return {n: rates(n) for n in points}

    def component(rows: dict[int, dict], unit: str, when: dict) -> dict | None:
        return _piecewise(unit, lambda n: rows[n].get(unit), starts, when)

    default_rows = table(lambda n: _with_joins(lite.standard_rates(n, None)))
    default = {u: component(default_rows, u, {}) for u in order}
    components = [c for c in default.values() if c is not None]
    if batch:  # batch_cost_calculator knows no off-peak windows: one list serves both
        components += _batch_components(lite, order, starts, points, default, reasons)
        components += _explicit_cache(lite, order, default)
    for tier in SERVICE_TIERS:
        if not any(k.endswith(f"_{tier}") and lite.has(k) for k in lite.entry):
            continue
        rows = table(lambda n, tier=tier: _with_joins(lite.standard_rates(n, tier)))
        for unit in order:
            found = component(rows, unit, {"serviceTier": tier})
            if found is not None and not _same(found, default[unit]):
                components.append(found)
    return components


def _explicit_cache(lite: _Entry, order: list[str], default: dict) -> list[dict]:
    """resolve_explicit_cache_read_cost_rate: a cache hit of an explicit (cache_type
    "ephemeral") cache is billed at explicit_cache_read_input_token_cost (`cacheType`
    "ephemeral"), cached media included. Read only without service tiers, tiered_pricing and
    off-peak windows, which LiteLLM also weighs here."""
    price = lite.entry.get("explicit_cache_read_input_token_cost")
    if _decimal(price) is None or lite.tiered or lite.entry.get("off_peak_pricing") or any(
            k.endswith(tuple(f"_{t}" for t in SERVICE_TIERS)) for k in lite.entry):
        return []
    rate = lite.number("explicit_cache_read_input_token_cost")
    when = {"cacheType": "ephemeral"}
    found = [{"unit": "cache_read_tokens", "price": _per_million(rate), "when": when}]
    for unit in ("cache_audio_read_tokens", "cache_image_read_tokens", "cache_video_read_tokens"):
        if unit in order and _same(default[unit], default["cache_read_tokens"]):
            found.append({**found[0], "unit": unit})
    return found


def _with_joins(rates: dict) -> dict:
    """LiteLLM bills cached video at the cache-read rate and every cache write at the write
    rate, whatever its modality."""
    return {**rates, "cache_video_read_tokens": rates["cache_read_tokens"],
            **{_join("cache_write_tokens", m): rates["cache_write_tokens"]
               for m in ("input_audio_tokens", "input_image_tokens", "input_video_tokens")}}


def _same(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a["price"], a.get("tiers")) == (b["price"], b.get("tiers"))


def _join(a: str, b: str) -> str | None:
    dimensions = UNITS[a].dimensions | UNITS[b].dimensions
    return next((u.name for u in UNITS.values() if u.dimensions == dimensions), None)


def _batch_components(lite: _Entry, order: list[str], starts: list[int], points: list[int],
                      default: dict, reasons: list[str]) -> list[dict]:
    """processing=batch, as batch_cost_calculator bills a request when the entry gives both an
    input and an output batch price (the service tier does not apply to batches)."""
    present = sorted(k for k in lite.entry if k.endswith("_batches") and lite.has(k)
                     and not k.startswith(("ocr_", "annotation_")))
    if not present:
        return []
    before = set(lite.used)
    rows = {n: lite.batch_rates(n) for n in points}
    if any(rows[n]["input_tokens"] is None or rows[n]["output_tokens"] is None for n in points):
        reasons.append("batch prices need both input_cost_per_token_batches and "
                       "output_cost_per_token_batches (LiteLLM halves the missing one)")
    elif "output_image_tokens" in order and any(
            rows[n]["output_image_tokens"] is None for n in points):
        reasons.append("batch prices need output_cost_per_image_token_batches beside "
                       "output_cost_per_image_token (LiteLLM halves the missing one)")
    else:
        components = []
        for unit in order:
            found = _piecewise(unit, lambda n, unit=unit: rows[n][unit], starts,
                               {"processing": "batch"})
            if found is not None:  # every unit: a batch price wins over a service tier's
                components.append(found)
        return components
    lite.used = before | set(present)
    return []

def _litellm_media(key: str, lite: _Entry, reasons: list[str]) -> list[dict]:
    mode = lite.entry.get("mode", "chat")
    return [*_litellm_images(key, mode, lite, reasons), *_litellm_seconds(mode, lite, reasons),
            *_litellm_characters(lite), *_litellm_web_search(lite), *_litellm_per_unit(lite),
            *_litellm_input_seconds(lite), *_litellm_pages(mode, lite),
            *_litellm_realtime(mode, lite)]


def _litellm_per_unit(lite: _Entry) -> list[dict]:
    """input_cost_per_query: a query (the rerank calculator's search units, a search
    provider's queries, an embedding's query_count); google_maps_grounding_cost_per_query: a
    Maps-grounded prompt (or query, for web_search_billing_unit "per_query")."""
    components = []
    for unit, key in (("query", "input_cost_per_query"),
                      ("maps_search", "google_maps_grounding_cost_per_query")):
        by_results = any(isinstance(t, Mapping) and "max_results_range" in t
                         for t in lite.entry.get("tiered_pricing") or ())
        if lite.has(key) and not (unit == "query" and by_results):  # by max_results: unread
            components.append(_media(unit, lite.number(key), 1, {}))
    return components


def _litellm_realtime(mode: str, lite: _Entry) -> list[dict]:
    """A realtime (live) session: input_cost_per_second x the session's seconds (live voice
    seconds; xai: audio seconds sent and received) and input_cost_per_text_message x xai's text
    messages, beside its tokens (cost_calculator's realtime path)."""
    if mode != "realtime":
        return []
    components = []
    for unit, key in (("session_second", "input_cost_per_second"),
                      ("input_text_message", "input_cost_per_text_message")):
        if lite.has(key):
            components.append(_media(unit, lite.number(key), 1, {}))
    return components


def _litellm_input_seconds(lite: _Entry) -> list[dict]:
    """input_cost_per_audio_per_second / input_cost_per_video_per_second x the prompt's
    audio_length_seconds / video_length_seconds (_calculate_input_cost; those seconds then
    replace the audio or video tokens). Vertex's interval prices for video embeddings are a
    calculator of their own: with them, neither is read."""
    if any("_interval" in k for k in lite.entry):
        return []
    components = []
    for unit, key in (("input_audio_second", "input_cost_per_audio_per_second"),
                      ("input_video_second", "input_cost_per_video_per_second")):
        if lite.has(key):
            components.append(_media(unit, lite.number(key), 1, {}))
    return components


def _litellm_pages(mode: str, lite: _Entry) -> list[dict]:
    """ocr_cost: ocr_cost_per_page x pages_processed + annotation_cost_per_page (else the page
    price) x pages_processed_annotation; ocr_batch_cost: the `_batches` prices, each else its
    synchronous one. LiteLLM adds the two counts, so quote documentPages = pages_processed +
    pages_processed_annotation and annotatedDocumentPages = pages_processed_annotation."""
    if mode != "ocr":
        return []
    components = []
    for unit, key in (("document_page", "ocr_cost_per_page"),
                      ("annotated_document_page", "annotation_cost_per_page")):
        if lite.has(key):
            components.append(_media(unit, lite.number(key), 1, {}))
        if lite.has(f"{key}_batches"):
            components.append(_media(unit, lite.number(f"{key}_batches"), 1,
                                      {"processing": "batch"}))
    return components


def image_options(key: str) -> dict[str, str]:
    """The size and quality a LiteLLM image key names: "hd/1024-x-1792/dall-e-3" ->
    {"size": "1024x1792", "quality": "hd"}; {} when it names no size."""
    parts = key.split("/")
    sizes = [p for p in parts if _SIZE.fullmatch(p)]
    if not sizes:
        return {}
    options = {"size": sizes[0].replace("-x-", "x")}
    if parts[0] == "fal_ai" and len(parts) > 2 and _SIZE.fullmatch(parts[2]):
        options["quality"] = parts[1]  # fal_ai/<quality>/<W>-x-<H>/...: any word (xhigh, max)
        return options
    qualities = [p for p in parts if p in IMAGE_QUALITIES]
    if qualities:
        options["quality"] = qualities[0]
    return options


def _litellm_images(key: str, mode: str, lite: _Entry, reasons: list[str]) -> list[dict]:
    """Images: output_cost_per_image each; for a size key, input_cost_per_pixel x width x
    height each (LiteLLM's default image calculator). An image model with input_cost_per_image
    alone (xai's grok-imagine) is billed it per generated image, the first key that calculator
    reads; beside an output price it stays a price per input image."""
    when = image_options(key)
    components = []
    per_image = lite.number("output_cost_per_image")
    if (per_image is None and mode == "image_generation" and lite.has("input_cost_per_image")
            and not lite.has("input_cost_per_pixel")):
        return [_media("image", lite.number("input_cost_per_image"), 1, when)]
    if per_image is None and lite.has("input_cost_per_pixel"):
        if "gpt-image" in key and lite.provider in ("openai", "azure"):  # sized keys too
            lite.used.add("input_cost_per_pixel")
            reasons.append(f"{IGNORED}input_cost_per_pixel: LiteLLM prices gpt-image models by "
                           "tokens (openai image cost calculator) and does not read it")
        elif when:
            width, height = map(int, when["size"].split("x"))
            per_image = lite.number("input_cost_per_pixel") * width * height
        elif not lite.has("input_cost_per_image"):
            # default_image_cost_calculator: input_cost_per_pixel x width x height x n
            components.append(_media("image_pixel", lite.number("input_cost_per_pixel"), 1, {}))
    if lite.has("output_cost_per_pixel") and lite.number("output_cost_per_pixel") != 0:
        reasons.append("output_cost_per_pixel is not expressed (fal.ai bills it per started "
                       "megapixel of the returned image)" if lite.provider == "fal_ai" else
                       "output_cost_per_pixel is not used by LiteLLM's image calculator")
    if lite.provider == "fal_ai":  # fal's calculator: output_cost_per_image_<resolution> first
        for name in sorted(lite.entry):
            resolution = name.removeprefix("output_cost_per_image_")
            if name.startswith("output_cost_per_image_") and not resolution.startswith(
                    "token") and lite.has(name):
                components.append(_media("image", lite.number(name), 1,
                                         {**when, "resolution": resolution}))
    if per_image is not None:
        components.append(_media("image", per_image, 1, when))
    if lite.has("input_cost_per_image"):
        components.append(_media("input_image", lite.number("input_cost_per_image"), 1, {}))
    return components


def _litellm_seconds(mode: str, lite: _Entry, reasons: list[str]) -> list[dict]:
    if mode == "audio_transcription":
        # cost_per_second: output_cost_per_second x the audio's duration if it is above 0 (the
        # input price is then unused), else input_cost_per_second x duration (Deepgram's and
        # most transcription entries give output 0.0 and the price as input)
        price = lite.number("output_cost_per_second")
        if price is not None and price > 0:
            lite.used.add("input_cost_per_second")
        elif lite.has("input_cost_per_second"):
            price = lite.number("input_cost_per_second")
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

    def price(size: str) -> Decimal:  # not a number: none (reported by _not_numbers)
        return _decimal(prices.get(f"search_context_size_{size}")) or ZERO

    return [_media("web_search", price("medium"), 1, {}),
            *(_media("web_search", price(size), 1, {"searchContextSize": size})
              for size in ("low", "high"))]


def _media(unit: str, price: Decimal, scale: int, when: dict) -> dict:
    component: dict[str, Any] = {"unit": unit, "price": decimal_string(price * scale)}
    if when:
        component["when"] = dict(when)
    return component


def combine(schedules: Iterable[list[dict]], provider: str | None = None) -> list[dict]:
    """Single-entry schedules (say, one LiteLLM key per image size and quality) merged into
    one; fal.ai's keyed image prices with the defaults LiteLLM's fal calculator applies."""
    components = []
    for component in (c for schedule in schedules for entry in schedule
                      for c in entry["components"]):
        if component not in components:  # the same price in every key (azure's dall-e-3
            components.append(component)  # gives each size output_cost_per_token 0.0)
    if provider == "fal_ai":
        return validate([fal_keyed(components)])
    return validate([{"effectiveFrom": None, "components": components}])


# litellm/llms/fal_ai/cost_calculator.py: a request without a quality (or "auto") is priced at
# "high", one without a size (or "auto") at 1024x768, a named size at its dimensions, and any
# size at the keyed row nearest it in pixels (the smaller on a tie).
FAL_DEFAULT_QUALITY = "high"
FAL_DEFAULT_SIZE = (1024, 768)
FAL_NAMED_SIZES = {"square_hd": (1024, 1024), "square": (512, 512),
                   "portrait_4_3": (768, 1024), "portrait_16_9": (576, 1024),
                   "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
# Sizes clients commonly ask for (OpenAI's, 16:9 video frames), priced at their nearest row too.
FAL_COMMON_SIZES = ((512, 512), (1024, 1024), (1536, 1024), (1024, 1536), (1792, 1024),
                    (1024, 1792), (2048, 2048), (1280, 720), (720, 1280), (1920, 1080),
                    (1080, 1920), (2560, 1440), (1440, 2560), (3840, 2160), (2160, 3840))


def fal_keyed(components: list[dict]) -> dict:
    """One entry for a fal.ai image model priced by keys per quality and size
    (fal_ai/<quality>/<W>-x-<H>/<model>), as LiteLLM's fal calculator prices a request: a
    component for each quality and size a request may give (the keyed sizes, common ones, the
    named ones, "auto") alone and together, priced at the row it falls to. The values are
    declared, so another size, or a quality it has no row for, is refused (LiteLLM would take
    the nearest row, or the flat price)."""
    rows: dict[str, dict[tuple[int, int], str]] = {}
    others = []
    for component in components:
        when = component.get("when", {})
        if component["unit"] == "image" and set(when) == {"size", "quality"}:
            width, height = map(int, when["size"].split("x"))
            rows.setdefault(when["quality"], {})[(width, height)] = component["price"]
        elif component["unit"] != "image" or when:  # not the flat price: a default replaces it
            others.append(component)
    if FAL_DEFAULT_QUALITY not in rows:
        return {"effectiveFrom": None, "components": components}

    def price(quality: str, size: tuple[int, int]) -> str:
        target = size[0] * size[1]
        row = min(rows[quality], key=lambda d: (abs(d[0] * d[1] - target), d[0] * d[1]))
        return rows[quality][row]

    sizes = {f"{w}x{h}": (w, h) for keyed in rows.values() for w, h in keyed}
    sizes |= {f"{w}x{h}": (w, h) for w, h in FAL_COMMON_SIZES}
    sizes |= {**FAL_NAMED_SIZES, "auto": FAL_DEFAULT_SIZE}
    qualities = {**{quality: quality for quality in rows}, "auto": FAL_DEFAULT_QUALITY}
    image = [{"unit": "image", "price": price(FAL_DEFAULT_QUALITY, FAL_DEFAULT_SIZE)}]
    for name, quality in qualities.items():
        image.append({"unit": "image", "price": price(quality, FAL_DEFAULT_SIZE),
                      "when": {"quality": name}})
        image += [{"unit": "image", "price": price(quality, size),
                   "when": {"size": size_name, "quality": name}}
                  for size_name, size in sizes.items()]
    image += [{"unit": "image", "price": price(FAL_DEFAULT_QUALITY, size),
               "when": {"size": size_name}} for size_name, size in sizes.items()]
    return {"effectiveFrom": None, "options": {"size": list(sizes), "quality": list(qualities)},
            "components": others + image}
