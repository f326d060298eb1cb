"""The one pricing engine: a model's price as components, scheduled in time, quoted exactly.

Pure Python and `decimal`: no database, no Flask. The catalog stores a model's price *schedule*
(JSON: exact decimals are strings) and `quote` prices one request against it.

## Components

A price is a list of components; each prices one unit:

    {"unit": "input_tokens", "price": "1.25",
     "when": {"serviceTier": "priority"},             # optional: the options it applies to
     "tiers": [{"start": 200000, "price": "2.5"}]}    # optional: by total input tokens

`price` is an exact decimal string (digits, at most one point; no sign, no exponent; at most 20
significant digits and 26 decimal places; below 1,000,000), stored as given
("0.0833333333333333", "2.50") and never rounded.

| unit | usage key | price per | counts |
| --- | --- | --- | --- |
| `input_tokens` | `inputTokens` | 1M tokens | every input token, cached and media ones included |
| `cache_read_tokens` | `cacheReadTokens` | 1M tokens | input tokens read from cache |
| `cache_write_tokens` | `cacheWriteTokens` | 1M tokens | input tokens written to cache |
| `cache_write_1h_tokens` | `cacheWrite1hTokens` | 1M tokens | cache writes kept one hour |
| `cache_write_12h_tokens` | `cacheWrite12hTokens` | 1M tokens | cache writes kept 12 hours |
| `input_audio_tokens` | `inputAudioTokens` | 1M tokens | audio input (cached included) |
| `input_image_tokens` | `inputImageTokens` | 1M tokens | image input (cached included) |
| `input_video_tokens` | `inputVideoTokens` | 1M tokens | video input (cached included) |
| `cache_audio_read_tokens` (`image`, `video`) | `cacheAudioReadTokens` | 1M tokens | read |
| `cache_audio_write_tokens` (`image`, `video`) | `cacheAudioWriteTokens` | 1M tokens | written |
| `output_tokens` | `outputTokens` | 1M tokens | every output token |
| `output_audio_tokens` (`image`, `video`) | `outputAudioTokens` | 1M tokens | media output |
| `output_reasoning_tokens` | `outputReasoningTokens` | 1M tokens | reasoning output (text) |
| `output_citation_tokens` | `outputCitationTokens` | 1M tokens | citation output |
| `characters` | `characters` | 1K characters | input characters (speech) |
| `output_characters` | `outputCharacters` | 1K characters | output characters |
| `second` | `seconds` | 1 second | seconds of output (video, audio) |
| `input_audio_second` | `inputAudioLengthSeconds` | 1 second | length of the input audio |
| `input_video_second` | `inputVideoLengthSeconds` | 1 second | length of the input video |
| `session_second` | `sessionSeconds` | 1 second | seconds of a realtime (live) session |
| `image` | `images` | 1 image | images generated |
| `image_pixel` | `imagePixels` | 1 pixel | pixels generated (width x height x images) |
| `input_image` | `inputImages` | 1 image | images given as input |
| `request` | `requests` | 1 request | requests (1 when omitted) |
| `web_search` | `webSearches` | 1 search | web searches |
| `storage_search` | `storageSearches` | 1 search | file/storage searches |
| `maps_search` | `mapsSearches` | 1 search | map (Google Maps grounding) searches |
| `query` | `queries` | 1 query | search queries, rerank search units |
| `document_page` | `documentPages` | 1 page | input document pages |
| `annotated_document_page` | `annotatedDocumentPages` | 1 page | annotated pages (of those) |
| `input_text_message` | `inputTextMessages` | 1 message | input text messages |
| `audio_hour` | `audioSeconds` | 1 hour (3,600 s) | seconds of audio (transcription) |
| `input_audio_hour` | `inputAudioSeconds` | 1 hour (3,600 s) | seconds of input audio (of those) |

Broad units include narrow ones, as in genai-prices: `inputTokens` counts every input token.
When a narrower unit is priced, its count is taken out of the broader one, so each token is paid
once: with `input_tokens`, `cache_read_tokens` and `input_audio_tokens` priced, uncached text =
input - cache reads - audio + cached audio. Two overlapping priced units need their overlap
priced too (`cache_audio_read_tokens` here), and a narrow unit needs its broader units priced:
`validate` enforces both. Reasoning output is text, so it does not overlap media output (a
request's reasoning, image, audio and video output tokens are disjoint parts of its output).
A narrow count whose unit has no price is paid at its broader unit's rate (cache reads at the
input rate).

## Options and `when`

Options of a quote: `quality`, `resolution`, `size` ("1024x1024"), `serviceTier`, `processing`
("batch"), `speed`, `route`, `searchType`, `searchContextSize`, `cacheType` ("ephemeral": an
explicit cache); string values, compared without regard to case ("4K" is "4k": a value spelt
otherwise must not fall to the default price), so an entry cannot name two values that differ
only in case; a value with a space around it ("4K ") is refused, for the same reason. For each
unit, the component used is the one whose `when` holds (each key equals the option given) with
the most keys, the first listed on a tie: a component without `when` is the default.
An option no component mentions is ignored, unless the entry declares its values (`"options":
{"quality": ["standard", "high"]}`), which refuses any other. A quote that needs a unit whose
components all want other option values is refused, with the supported values.

Video quality multipliers are components: `video_schedule(costPerSecond, qualityMultipliers)`
gives one default `second` component and one per quality whose multiplier is not 1 (price = cost
x multiplier, exact); `credit_cost` gives back `costPerSecond` and `qualityMultiplier`.

## Tiers

`tiers` are by the request's total input tokens (`inputTokens`, cached included), as genai-prices'
`TieredPrices`: when the total is strictly above a tier's `start`, the whole request pays that
tier's price for that unit (the highest such tier), otherwise `price`. Starts ascend strictly;
only token units take tiers.

## Schedules and time of day

A schedule is a list of at most 200 entries `{"effectiveFrom": ms | null, "components": [...]}`,
optionally with `"utcTime": {"start": "HH:MM[:SS]", "end": "HH:MM[:SS]"}` and `"options"`.
`effectiveFrom` is before the year 10000; a time with its offset ("2027-01-15T00:00:00Z") is
read as its milliseconds. The entries with
the latest `effectiveFrom <= at` (null: always) are in force; among them the first whose
`utcTime` contains `at`'s UTC time of day replaces the whole component list, else the one
without `utcTime` applies (each `effectiveFrom` has exactly one). A window contains `t` when
`start <= t < end`, or, wrapping midnight (`end < start`), when `t >= start or t < end`
(genai-prices' `TimeOfDateConstraint`; its `StartDateConstraint` is an `effectiveFrom` at 00:00
UTC). A window may name `"days"`, ISO weekdays of `at` in UTC (1 = Monday): it then holds only
on those days, and `start` = `end` means the whole day (LiteLLM's `off_peak_pricing` windows).
`next_change_after(schedule, at)` is the next instant a quote may change (an entry starts, a
window opens or closes, a day starts for windows with days), for re-running live subscriptions.

## Quotes, rounding, credits

`quote(schedule, usage, options, at, credits_per_usd)` answers `{at, lines: [{unit, quantity,
unitPrice, per, usdExact, when?}], usd, usdExact, credits}`: a line per unit with a non-zero
quantity, in component order, with the `when` of its component when it has one (none: the
default price, which also prices an option value no component names); `quantity` is the
count paid at that unit once narrower units are taken out (an int, or a decimal string for
fractional seconds); `unitPrice` the price applied (after
tiers), for `per` of the unit's usage (1,000,000 tokens, 1,000 characters, 3,600 seconds);
`usdExact` = unitPrice x quantity / per. Nothing is rounded: prices have at most 20 significant
digits and 26 decimal places and are below 1,000,000; counts have at most 10 significant digits
and 6 decimal places and are at most 10^15; so every product and sum is exact (computed at 60
digits). The
one exception: a per-hour price whose quotient by 3,600 does not terminate is cut at 28
significant digits, and the total then summed at 28 digits, exactly as genai-prices does.
`usdExact` is a normalized decimal string without exponent ("1.62", "10", "0.00000001"); `usd`
is the same as a float, for display. `credits` = ceil(usdExact x credits_per_usd), exactly.

Usage: counts are whole numbers except seconds (`seconds`, `audioSeconds`, `inputAudioSeconds`,
`inputAudioLengthSeconds`, `inputVideoLengthSeconds`, `sessionSeconds`), which may be
fractional; ints, decimal strings or `Decimal` (a float is read by its repr).

## Errors

`PricingError(code, message, field, **data)`, for the caller to map onto a function error:

- `INVALID_PRICE`: what `validate` refuses; `field` is the path
  (`schedule[0].components[2].tiers[1].start`).
- `INVALID_ARGUMENT`: an unknown usage or option key; a negative, fractional (where whole),
  non-numeric, over-10-digit or over-6-place count; inconsistent usage (`cacheReadTokens` above
  `inputTokens`); a priced overlap of two counts given, not given itself
  (`cacheAudioReadTokens`); `requests` below 1 where a request is priced.
- `UNSUPPORTED_QUALITY` (option `quality`) / `UNSUPPORTED_OPTION` (others): the value has no
  price; `supported` lists those that do.
- `UNSUPPORTED_USAGE`: a usage kind the model has no price for (`images` on a chat model);
  `supported` lists the usage keys it takes.
- `NO_PRICE`: nothing is in force at `at` (every entry starts later); `startsAt` says when.

## Examples

A chat model with a tier above 200k input tokens, cache prices and a priority tier:

    [{"effectiveFrom": null, "components": [
      {"unit": "input_tokens", "price": "1.25", "tiers": [{"start": 200000, "price": "2.5"}]},
      {"unit": "cache_read_tokens", "price": "0.125",
       "tiers": [{"start": 200000, "price": "0.25"}]},
      {"unit": "cache_write_tokens", "price": "1.625"},
      {"unit": "output_tokens", "price": "10", "tiers": [{"start": 200000, "price": "15"}]},
      {"unit": "input_tokens", "price": "2.25", "when": {"serviceTier": "priority"}}]}]

An image model by size and quality:

    [{"effectiveFrom": null, "components": [
      {"unit": "image", "price": "0.04", "when": {"size": "1024x1024", "quality": "standard"}},
      {"unit": "image", "price": "0.08", "when": {"size": "1024x1792", "quality": "standard"}},
      {"unit": "image", "price": "0.08", "when": {"size": "1024x1024", "quality": "hd"}},
      {"unit": "image", "price": "0.12", "when": {"size": "1024x1792", "quality": "hd"}}]}]

A video model by resolution (720p by default), cheaper from 2026-06-01:

    [{"effectiveFrom": null, "components": [
      {"unit": "second", "price": "0.4"},
      {"unit": "second", "price": "0.6", "when": {"resolution": "1080p"}}]},
     {"effectiveFrom": 1780272000000, "components": [
      {"unit": "second", "price": "0.35"},
      {"unit": "second", "price": "0.5", "when": {"resolution": "1080p"}}]}]

The seed model luma/ray-2-720p ($0.18/s, every quality the same), and the same at 0.123457/s
with qualityMultipliers {"high": 1.5, "ultra": 2.25}:

    [{"effectiveFrom": null, "components": [{"unit": "second", "price": "0.18"}]}]
    [{"effectiveFrom": null, "components": [
      {"unit": "second", "price": "0.123457"},
      {"unit": "second", "price": "0.1851855", "when": {"quality": "high"}},
      {"unit": "second", "price": "0.27777825", "when": {"quality": "ultra"}}]}]

Off-peak prices (DeepSeek's shape): a `utcTime` entry beside the default one:

    [{"effectiveFrom": null, "components": [{"unit": "input_tokens", "price": "0.27"},
                                            {"unit": "output_tokens", "price": "1.1"}]},
     {"effectiveFrom": null, "utcTime": {"start": "16:30", "end": "00:30"},
      "components": [{"unit": "input_tokens", "price": "0.135"},
                     {"unit": "output_tokens", "price": "0.55"}]}]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from functools import lru_cache
from itertools import product
from typing import Any

from engine.values import TOO_LARGE, InexactFloat

# An option's value is folded as a model id is: its ASCII letters in lower case and nothing
# else changed ("4K" is "4k"; neither the Kelvin sign nor a long s is a Latin letter here).
from functions.ids import canonical as fold

DAY_MS = 86_400_000
MAX_PRICE_DIGITS = 20
MAX_PRICE = 10**6  # USD per unit (per 1M tokens, per image, ...): a price is below this
# Decimal places of a price (LiteLLM's float 3.3333333333333335e-05 a second has 21): an amount
# is below 10^21 (price x count) and its last digit at most 26 + 6 places down (a fractional
# count's places, or per 1M tokens), so every quote's exact sum fits EXACT_PRECISION.
MAX_PRICE_PLACES = 26
MAX_COUNT_DIGITS = 10
MAX_COUNT_PLACES = 6  # decimal places of a fractional count (a microsecond)
MAX_COUNT = 10**15  # of any unit in one request: a quote in USD stays a finite number
# genai-prices' (and Python's default) precision: only non-terminating per-hour quotients use it.
GENAI_PRECISION = 28
EXACT_PRECISION = 60
MAX_ENTRIES = 200  # entries of one schedule, on every path (an import's scheduling too)


class PricingError(Exception):
    """A price that cannot be stored, or a request that cannot be priced."""

    def __init__(self, code: str, message: str, field: str | None = None, **data: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.data = data


@dataclass(frozen=True)
class Unit:
    name: str
    usage: str
    per: int
    dimensions: frozenset[tuple[str, str]]
    whole: bool = True

    @property
    def tiered(self) -> bool:
        return ("family", "tokens") in self.dimensions


def _unit(name: str, usage: str, per: int, whole: bool = True, **dimensions: str) -> Unit:
    return Unit(name, usage, per, frozenset(dimensions.items()), whole)


M = 1_000_000
_TOKENS = {"family": "tokens"}
UNITS: dict[str, Unit] = {u.name: u for u in (
    _unit("input_tokens", "inputTokens", M, **_TOKENS, direction="input"),
    _unit("output_tokens", "outputTokens", M, **_TOKENS, direction="output"),
    _unit("cache_read_tokens", "cacheReadTokens", M, **_TOKENS, direction="input",
          token_type="cache_read"),
    _unit("cache_write_tokens", "cacheWriteTokens", M, **_TOKENS, direction="input",
          token_type="cache_write"),
    _unit("cache_write_1h_tokens", "cacheWrite1hTokens", M, **_TOKENS, direction="input",
          token_type="cache_write", cache_ttl="1h"),
    _unit("cache_write_12h_tokens", "cacheWrite12hTokens", M, **_TOKENS, direction="input",
          token_type="cache_write", cache_ttl="12h"),
    _unit("input_audio_tokens", "inputAudioTokens", M, **_TOKENS, direction="input",
          modality="audio"),
    _unit("cache_audio_read_tokens", "cacheAudioReadTokens", M, **_TOKENS, direction="input",
          modality="audio", token_type="cache_read"),
    _unit("input_image_tokens", "inputImageTokens", M, **_TOKENS, direction="input",
          modality="image"),
    _unit("cache_image_read_tokens", "cacheImageReadTokens", M, **_TOKENS, direction="input",
          modality="image", token_type="cache_read"),
    _unit("input_video_tokens", "inputVideoTokens", M, **_TOKENS, direction="input",
          modality="video"),
    _unit("cache_video_read_tokens", "cacheVideoReadTokens", M, **_TOKENS, direction="input",
          modality="video", token_type="cache_read"),
    _unit("cache_audio_write_tokens", "cacheAudioWriteTokens", M, **_TOKENS, direction="input",
          modality="audio", token_type="cache_write"),
    _unit("cache_image_write_tokens", "cacheImageWriteTokens", M, **_TOKENS, direction="input",
          modality="image", token_type="cache_write"),
    _unit("cache_video_write_tokens", "cacheVideoWriteTokens", M, **_TOKENS, direction="input",
          modality="video", token_type="cache_write"),
    _unit("output_audio_tokens", "outputAudioTokens", M, **_TOKENS, direction="output",
          modality="audio"),
    _unit("output_image_tokens", "outputImageTokens", M, **_TOKENS, direction="output",
          modality="image"),
    _unit("output_video_tokens", "outputVideoTokens", M, **_TOKENS, direction="output",
          modality="video"),
    _unit("output_reasoning_tokens", "outputReasoningTokens", M, **_TOKENS, direction="output",
          token_type="reasoning", modality="text"),
    _unit("output_citation_tokens", "outputCitationTokens", M, **_TOKENS, direction="output",
          token_type="citation"),
    _unit("characters", "characters", 1000, family="characters", direction="input"),
    _unit("output_characters", "outputCharacters", 1000, family="characters", direction="output"),
    _unit("second", "seconds", 1, False, family="media_seconds", direction="output"),
    _unit("input_audio_second", "inputAudioLengthSeconds", 1, False, family="media_seconds",
          direction="input", modality="audio"),
    _unit("input_video_second", "inputVideoLengthSeconds", 1, False, family="media_seconds",
          direction="input", modality="video"),
    _unit("session_second", "sessionSeconds", 1, False, family="session_seconds"),
    _unit("image", "images", 1, family="images", direction="output"),
    _unit("image_pixel", "imagePixels", 1, family="pixels", direction="output"),
    _unit("input_image", "inputImages", 1, family="images", direction="input"),
    _unit("request", "requests", 1, family="requests"),
    _unit("web_search", "webSearches", 1, family="tool_calls", tool_type="web_search"),
    _unit("storage_search", "storageSearches", 1, family="tool_calls", tool_type="storage_search"),
    _unit("maps_search", "mapsSearches", 1, family="tool_calls", tool_type="maps_search"),
    _unit("query", "queries", 1, family="queries"),
    _unit("document_page", "documentPages", 1, family="document_pages", direction="input"),
    _unit("annotated_document_page", "annotatedDocumentPages", 1, family="document_pages",
          direction="input", page_type="annotated"),
    _unit("input_text_message", "inputTextMessages", 1, family="messages", direction="input",
          modality="text"),
    _unit("audio_hour", "audioSeconds", 3600, False, family="durations", modality="audio"),
    _unit("input_audio_hour", "inputAudioSeconds", 3600, False, family="durations",
          direction="input", modality="audio"),
)}
UNITS_BY_USAGE: dict[str, Unit] = {u.usage: u for u in UNITS.values()}
_UNITS_BY_DIMENSIONS: dict[frozenset, Unit] = {u.dimensions: u for u in UNITS.values()}
OPTION_KEYS = ("quality", "resolution", "size", "serviceTier", "processing", "speed", "route",
               "searchType", "searchContextSize", "cacheType")
ENTRY_KEYS = {"effectiveFrom", "utcTime", "options", "components"}
COMPONENT_KEYS = {"unit", "price", "when", "tiers"}
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")


# ---------------------------------------------------------------- units: broader and narrower


def is_within(narrow: Unit, broad: Unit) -> bool:
    """Every count of `narrow` is also a count of `broad` (genai-prices' descendant-or-self)."""
    return broad.dimensions <= narrow.dimensions


# Each unit's strictly broader units (cache reads: input tokens).
BROADER: dict[str, tuple[Unit, ...]] = {
    unit.name: tuple(o for o in UNITS.values() if o is not unit and is_within(unit, o))
    for unit in UNITS.values()}


def _compatible(a: Unit, b: Unit) -> bool:
    keys_a = dict(a.dimensions)
    return all(keys_a.get(key, value) == value for key, value in b.dimensions)


def coverage_problem(priced: Iterable[str]) -> str | None:
    """Why a set of priced units would pay a count twice or not at all, or None.

    Every broader unit of a priced unit must be priced, and two overlapping priced units (cache
    reads and audio input) need their overlap priced (cached audio input), as genai-prices
    requires."""
    return _coverage_problem(frozenset(priced))


@lru_cache(maxsize=1024)  # a property of the set alone: each quote asks it again
def _coverage_problem(priced: frozenset[str]) -> str | None:
    units = sorted((UNITS[name] for name in priced), key=lambda u: u.name)
    names = {u.name for u in units}
    for unit in units:
        missing = sorted(o.name for o in UNITS.values()
                         if o is not unit and is_within(unit, o) and o.name not in names)
        if missing:
            return f"{unit.name} needs a price for {', '.join(missing)} too"
    for a, b, join in _overlaps(units):
        if join is None:
            return f"{a.name} and {b.name} overlap and cannot both be priced"
        if join.name not in names:
            return f"{a.name} and {b.name} overlap: {join.name} needs a price too"
    return None


def _overlaps(units: Sequence[Unit]) -> Iterable[tuple[Unit, Unit, Unit | None]]:
    """Each pair of these units that overlap without one holding the other (cache reads and
    audio input), with the unit of their overlap (cached audio input; None when there is
    none), in the order given."""
    for i, a in enumerate(units):
        for b in units[i + 1:]:
            if _compatible(a, b) and not is_within(a, b) and not is_within(b, a):
                yield a, b, _UNITS_BY_DIMENSIONS.get(a.dimensions | b.dimensions)


# ---------------------------------------------------------------- decimals

# Shared by every thread: an operation raises on its own conditions only (the flags it leaves
# are never read), so one context of each kind serves them all.
EXACT = Context(prec=EXACT_PRECISION, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
# The same, refusing to round: an amount that would not be exact is an error.
STRICT = Context(prec=EXACT_PRECISION, rounding=ROUND_HALF_EVEN,
                 traps=[InvalidOperation, Inexact])


def _as_sent(value: Any) -> str:
    """A refused value as the client wrote it: a JSON number a double does not hold, in its
    own digits (its double would hide why), the rest as Python spells it."""
    return value.text if isinstance(value, InexactFloat) else repr(value)


def parse_price(value: Any, field: str) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise PricingError("INVALID_PRICE", f"{field} must be a decimal string such as \"0.18\" "
                           f"(no sign, no exponent), got {_as_sent(value)}", field)
    price = Decimal(value)
    shape = price.normalize(EXACT).as_tuple()
    if len(shape.digits) > MAX_PRICE_DIGITS:
        raise PricingError("INVALID_PRICE", f"{field} has more than {MAX_PRICE_DIGITS} "
                           f"significant digits: {value}", field)
    if price >= MAX_PRICE:
        raise PricingError("INVALID_PRICE", f"{field} must be below {MAX_PRICE:,} (USD per its "
                           f"unit), got {value}", field)
    if -shape.exponent > MAX_PRICE_PLACES:
        raise PricingError("INVALID_PRICE", f"{field} has more than {MAX_PRICE_PLACES} decimal "
                           f"places: {value}", field)
    return price


@lru_cache(maxsize=4096)  # the prices of the schedules in force, parsed once
def _stored_price(value: str, field: str) -> Decimal:
    return parse_price(value, field)


def decimal_string(value: Decimal) -> str:
    """An exact decimal as a normalized string without exponent: "1.62", "0", "150"."""
    return format(value.normalize(EXACT), "f")


# ---------------------------------------------------------------- validation


def validate(schedule: Any) -> list[dict]:
    """The schedule, checked and normalized (entries in order; nothing rounded), or a
    PricingError("INVALID_PRICE") whose field is the path of the first problem."""
    if not isinstance(schedule, list) or not schedule:
        raise PricingError("INVALID_PRICE", "a price schedule is a non-empty list of entries",
                           "schedule")
    if len(schedule) > MAX_ENTRIES:
        raise PricingError("INVALID_PRICE", f"schedule must have at most {MAX_ENTRIES} "
                           f"entries, got {len(schedule)}", "schedule")
    entries = [_validate_entry(entry, f"schedule[{i}]") for i, entry in enumerate(schedule)]
    ordered = sorted(entries, key=lambda e: (_start(e), "utcTime" in e))
    seen: set[tuple] = set()
    for entry in ordered:
        key = (entry["effectiveFrom"], _window_key(entry))
        if key in seen:
            raise PricingError("INVALID_PRICE", f"two entries are in force {_since(key[0])} "
                               "with the same time of day", "schedule")
        seen.add(key)
    for start, group in _groups(ordered):
        if sum("utcTime" not in e for e in group) != 1:
            raise PricingError("INVALID_PRICE", f"the entries in force {_since(start)} need "
                               "exactly one entry without utcTime (the price outside windows)",
                               "schedule")
    return ordered


YEAR_10000_MS = 253402300800000  # effectiveFrom is before it: a moment datetime can show
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _since(start: int | None) -> str:
    """When an entry comes into force, in words: 'since always' (effectiveFrom null) or
    'from 2026-01-01T00:00:00Z (1767225600000)'."""
    if start is None:
        return "since always (effectiveFrom null)"
    return f"from {utc_text(start)} ({start})"


def utc_text(ms: int) -> str:
    """A moment in milliseconds since the epoch as people read it: '2026-01-01T00:00:00Z'."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment_text(ms: int) -> str:
    """A moment in an answer: as people read it, and as sent (ms), '2027-06-01T00:00:00Z
    (1811808000000)'; beyond what a date can hold (year 10000 on), the ms alone."""
    return f"{utc_text(ms)} ({ms})" if 0 <= ms < YEAR_10000_MS else str(ms)


# RFC 3339's date-time (what the schemas' "date-time" names: "T" or "t", "Z" or "z", any
# fraction), and the spellings of it people write: a space for "T", no seconds, "+0100".
TIME_WITH_OFFSET = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2}))")


def moment(value: Any) -> int | None:
    """A moment as milliseconds since the epoch: given so, or as a time with its offset
    ("2027-01-15T00:00:00Z", RFC 3339) to the millisecond; from 1970 to the year 9999. None
    when it is neither."""
    if isinstance(value, str):
        value = _time_with_offset(value)
    elif isinstance(value, float) and value.is_integer() and 0 <= value < 2**53 \
            and not isinstance(value, InexactFloat):
        value = int(value)  # a JSON number as some clients send it (the Python client: 1.0)
    return value if type(value) is int and 0 <= value < YEAR_10000_MS else None


def _time_with_offset(text: str) -> int | None:
    spelt = TIME_WITH_OFFSET.fullmatch(text) if len(text) <= 40 else None
    if spelt is None:
        return None
    day, hour, minute, second, fraction, sign, off_hours, off_minutes = spelt.groups()
    fraction = (fraction or "").ljust(9, "0")
    if fraction[3:].strip("0"):  # finer than a millisecond
        return None
    try:
        when = datetime.fromisoformat(day).replace(
            hour=int(hour), minute=int(minute), second=int(second or 0),
            microsecond=int(fraction[:3]) * 1000, tzinfo=UTC)
    except ValueError:  # 2027-02-30, 24:00, a leap second
        return None
    offset = 0 if sign is None else (1 if sign == "+" else -1) * (
        int(off_hours) * 60 + int(off_minutes))
    if sign is not None and (int(off_hours) > 23 or int(off_minutes) > 59):
        return None
    return (when - EPOCH) // timedelta(milliseconds=1) - offset * 60_000


MOMENT_HINT = ("milliseconds since the epoch or a time with its offset, e.g. "
               "\"2027-01-15T00:00:00Z\" (1970 to 9999)")


def not_a_moment(value: Any, nullable: bool = False) -> str:
    """Why `value` is no moment, to follow its name: what a time people often send gets
    wrong, or what a moment (or null, when `nullable`) must be."""
    spelt = TIME_WITH_OFFSET.fullmatch(value) if isinstance(value, str) and len(
        value) <= 40 else None
    if spelt is not None:  # a time that only this keeps from being read
        start, end = spelt.span(5)
        if (spelt.group(5) or "")[3:].strip("0") and moment(
                value[:start + 3] + value[end:]) is not None:
            return ("is finer than a millisecond: send at most 3 digits after the second "
                    "(Python: isoformat(timespec='milliseconds'))")
        start, end = spelt.span(4)
        if spelt.group(4) == "60" and moment(value[:start] + "59" + value[end:]) is not None:
            return ("is a leap second, which Unix time does not count: send :59.999 or the "
                    "next minute")
    return f"must be {'null, ' if nullable else ''}{MOMENT_HINT}"


def _effective_from(start: Any, path: str) -> int | None:
    """An entry's start: null, or a moment (milliseconds, or an ISO 8601 time with its
    offset)."""
    if start is None:
        return None
    at = moment(start)
    if at is not None:
        return at
    raise PricingError("INVALID_PRICE", f"{path}.effectiveFrom {not_a_moment(start, True)}",
                       f"{path}.effectiveFrom")


def _validate_entry(entry: Any, path: str) -> dict:
    if not isinstance(entry, dict):
        raise PricingError("INVALID_PRICE", f"{path} must be an object", path)
    _refuse_unknown(entry, ENTRY_KEYS, path)
    out: dict = {"effectiveFrom": _effective_from(entry.get("effectiveFrom"), path)}
    if "utcTime" in entry:
        out["utcTime"] = _validate_window(entry["utcTime"], f"{path}.utcTime")
    if "options" in entry:
        out["options"] = _validate_declared(entry["options"], f"{path}.options")
    components = entry.get("components")
    if not isinstance(components, list):
        raise PricingError("INVALID_PRICE", f"{path}.components must be a list",
                           f"{path}.components")
    out["components"] = [_validate_component(c, f"{path}.components[{i}]")
                         for i, c in enumerate(components)]
    _check_components(out, path)
    return out


def _validate_window(window: Any, path: str) -> dict:
    if not isinstance(window, dict) or not {"start", "end"} <= set(window) or not set(window) <= {
            "start", "end", "days"}:
        raise PricingError("INVALID_PRICE", f"{path} must be {{\"start\": \"HH:MM\", \"end\": "
                           "\"HH:MM\"}} (UTC), with \"days\" optionally", path)
    out = {"start": window["start"], "end": window["end"]}
    if "days" in window:
        days = window["days"]
        if (not isinstance(days, list) or not days or len(set(days)) != len(days)
                or not all(type(d) is int and 1 <= d <= 7 for d in days)):
            raise PricingError("INVALID_PRICE", f"{path}.days must list distinct ISO weekdays "
                               "(1 = Monday ... 7 = Sunday)", f"{path}.days")
        out["days"] = sorted(days)
    start = time_of_day_ms(window["start"], f"{path}.start")
    if start == time_of_day_ms(window["end"], f"{path}.end") and "days" not in out:
        raise PricingError("INVALID_PRICE", f"{path}: start and end must differ (equal, they "
                           "mean whole days, which need \"days\")", path)
    return out


def time_of_day_ms(value: Any, field: str) -> int:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PricingError("INVALID_PRICE", f"{field} must be a UTC time \"HH:MM\" or "
                           f"\"HH:MM:SS\", got {value!r}", field)
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((hours * 60 + minutes) * 60 + seconds) * 1000


def _validate_declared(options: Any, path: str) -> dict:
    if not isinstance(options, dict):
        raise PricingError("INVALID_PRICE", f"{path} must map options to their values", path)
    _refuse_unknown(options, set(OPTION_KEYS), path)
    for key, values in options.items():
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, str) and v and v == v.strip() for v in values)
                or len({fold(v) for v in values}) != len(values)):
            raise PricingError("INVALID_PRICE", f"{path}.{key} must list distinct non-empty "
                               "strings, no space around them (distinct whatever their case)",
                               f"{path}.{key}")
    return {key: list(values) for key, values in options.items()}


def _validate_component(component: Any, path: str) -> dict:
    if not isinstance(component, dict):
        raise PricingError("INVALID_PRICE", f"{path} must be an object", path)
    _refuse_unknown(component, COMPONENT_KEYS, path)
    unit = component.get("unit")
    if unit not in UNITS:
        raise PricingError("INVALID_PRICE", f"{path}.unit must be one of {', '.join(UNITS)}; got "
                           f"{unit!r}", f"{path}.unit")
    parse_price(component.get("price"), f"{path}.price")
    out = {"unit": unit, "price": component["price"]}
    if "when" in component:
        out["when"] = _validate_when(component["when"], f"{path}.when")
    if "tiers" in component:
        out["tiers"] = _validate_tiers(component["tiers"], UNITS[unit], f"{path}.tiers")
    return out


def _validate_when(when: Any, path: str) -> dict:
    if not isinstance(when, dict) or not when:
        raise PricingError("INVALID_PRICE", f"{path} must be a non-empty object of options",
                           path)
    _refuse_unknown(when, set(OPTION_KEYS), path)
    for key, value in when.items():
        if not isinstance(value, str) or not value or value != value.strip():
            raise PricingError("INVALID_PRICE", f"{path}.{key} must be a non-empty string, "
                               "no space around it", f"{path}.{key}")
    return dict(when)


def _validate_tiers(tiers: Any, unit: Unit, path: str) -> list[dict]:
    if not unit.tiered:
        raise PricingError("INVALID_PRICE", f"{path}: only token units take tiers", path)
    if not isinstance(tiers, list) or not tiers:
        raise PricingError("INVALID_PRICE", f"{path} must be a non-empty list", path)
    previous = -1
    for i, tier in enumerate(tiers):
        here = f"{path}[{i}]"
        if not isinstance(tier, dict) or set(tier) != {"start", "price"}:
            raise PricingError("INVALID_PRICE", f"{here} must be {{\"start\", \"price\"}}", here)
        start = tier["start"]
        if type(start) is not int or start < 0:
            raise PricingError("INVALID_PRICE", f"{here}.start must be a whole number of input "
                               f"tokens, 0 or more, got {_as_sent(start)}", f"{here}.start")
        if start <= previous:
            raise PricingError("INVALID_PRICE", f"{here}.start must be above the tier before "
                               f"it ({previous:,}), got {start:,}: tiers ascend", f"{here}.start")
        parse_price(tier["price"], f"{here}.price")
        previous = start
    return [{"start": t["start"], "price": t["price"]} for t in tiers]


def _check_components(entry: dict, path: str) -> None:
    components = entry["components"]
    seen: set[tuple] = set()
    for i, component in enumerate(components):
        key = (component["unit"], tuple(sorted((k, fold(v))
                                               for k, v in component.get("when", {}).items())))
        if key in seen:
            raise PricingError("INVALID_PRICE", f"{path}.components[{i}]: two {key[0]} "
                               "components with the same `when` (case aside)",
                               f"{path}.components[{i}]")
        seen.add(key)
    declared = entry.get("options", {})
    for i, component in enumerate(components):
        for key, value in component.get("when", {}).items():
            if key in declared and not among_options(value, declared[key]):
                raise PricingError("INVALID_PRICE", f"{path}.components[{i}].when.{key}: "
                                   f"{value!r} is not among the declared options",
                                   f"{path}.components[{i}].when.{key}")
    for options in _option_cases(components, path):
        problem = coverage_problem(select_components(components, options))
        if problem:
            when = f" (with options {options})" if options else ""
            raise PricingError("INVALID_PRICE", f"{path}.components{when}: {problem}",
                               f"{path}.components")


MAX_OPTION_CASES = 1024  # combinations of an entry's `when` values (LiteLLM's maps: 24 at most)


def _option_cases(components: Sequence[dict], path: str) -> list[dict]:
    """Every set of options that selects components differently: each key named in a `when`,
    absent or at each value named for it, in every combination (a quote may give any of them
    together, so each must price every count once)."""
    named: dict[str, set[str]] = {}
    for component in components:
        for key, value in component.get("when", {}).items():
            if not among_options(value, named.setdefault(key, set())):
                named[key].add(value)
    keys = sorted(named)
    if math.prod(len(named[key]) + 1 for key in keys) > MAX_OPTION_CASES:
        raise PricingError("INVALID_PRICE", f"{path}.components: the options named in `when` "
                           f"combine in more than {MAX_OPTION_CASES} ways", f"{path}.components")
    return [{key: value for key, value in zip(keys, values, strict=True) if value is not None}
            for values in product(*([None, *sorted(named[key])] for key in keys))]


def _refuse_unknown(obj: Mapping, known: set[str], path: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise PricingError("INVALID_PRICE", f"{path}: unknown key {unknown[0]!r}; known: "
                           f"{', '.join(sorted(known))}", f"{path}.{unknown[0]}")


# ---------------------------------------------------------------- what is in force at `at`


def _start(entry: Mapping) -> int:
    start = entry.get("effectiveFrom")
    return -1 if start is None else start


def _window_key(entry: Mapping) -> tuple | None:
    window = entry.get("utcTime")
    return None if window is None else (window["start"], window["end"],
                                        tuple(window.get("days", ())))


def _groups(entries: Sequence[dict]) -> list[tuple[int | None, list[dict]]]:
    groups: list[tuple[int | None, list[dict]]] = []
    for entry in entries:
        if groups and _start(groups[-1][1][0]) == _start(entry):
            groups[-1][1].append(entry)
        else:
            groups.append((entry.get("effectiveFrom"), [entry]))
    return groups


def _group_at(schedule: Sequence[dict], at: int) -> list[dict] | None:
    in_force = None
    for _start_ms, group in _groups(sorted(schedule, key=_start)):
        if _start(group[0]) <= at:
            in_force = group
    return in_force


def in_window(window: Mapping, at: int) -> bool:
    """`at`'s UTC time of day is inside the window (genai-prices TimeOfDateConstraint) and, when
    the window names `days`, `at`'s UTC weekday is one of them (start = end: the whole day)."""
    if "days" in window and utc_weekday(at) not in window["days"]:
        return False
    t = at % DAY_MS
    start = time_of_day_ms(window["start"], "utcTime.start")
    end = time_of_day_ms(window["end"], "utcTime.end")
    if end == start:
        return True
    if end < start:
        return t >= start or t < end
    return start <= t < end


def utc_weekday(at: int) -> int:
    """ISO weekday (1 = Monday) of an instant in UTC; 1970-01-01 was a Thursday."""
    return (at // DAY_MS + 3) % 7 + 1


def entry_at(schedule: Sequence[dict], at: int) -> dict:
    """The schedule entry that prices a request made at `at` (ms since the epoch, UTC)."""
    group = _group_at(schedule, at)
    if group is None:
        first = min(_start(e) for e in schedule)
        raise PricingError("NO_PRICE", f"no price is in force at {_moment_text(at)}; the "
                           f"first starts at {_moment_text(first)}", "at", startsAt=first)
    for entry in group:
        if "utcTime" in entry and in_window(entry["utcTime"], at):
            return entry
    return next(e for e in group if "utcTime" not in e)


def next_change_after(schedule: Sequence[dict], at: int) -> int | None:
    """The first instant after `at` at which the price in force may change (a scheduled entry
    starts, or a time-of-day window of the entries in force opens or closes), or None."""
    later = [_start(e) for e in schedule if _start(e) > at]
    candidates = [min(later)] if later else []
    group = _group_at(schedule, at) or []
    day = at - at % DAY_MS
    for entry in group:
        window = entry.get("utcTime")
        if window is None:
            continue
        for edge in (window["start"], window["end"]):
            moment = day + time_of_day_ms(edge, "utcTime")
            candidates.append(moment if moment > at else moment + DAY_MS)
        if "days" in window:  # the day may change what is in force
            candidates.append(day + DAY_MS)
    return min(candidates) if candidates else None


# ---------------------------------------------------------------- choosing components


def _holds(when: Mapping[str, str], options: Mapping[str, str]) -> bool:
    return all(same_option(options.get(key), value) for key, value in when.items())


def same_option(given: str | None, named: str) -> bool:
    """Whether an option's value is the one a price names (ASCII case aside): the one
    comparison of option values, for the engine, the capability checks and the console."""
    return given is not None and fold(given) == fold(named)


def among_options(given: str, named: Iterable[str]) -> bool:
    return any(same_option(given, value) for value in named)


def select_components(components: Sequence[dict], options: Mapping[str, str]) -> dict[str, dict]:
    """Unit -> the component that prices it under these options (most specific `when` that
    holds; first listed on a tie), in the order units first appear."""
    chosen: dict[str, dict] = {}
    for component in components:
        when = component.get("when", {})
        if not _holds(when, options):
            continue
        current = chosen.get(component["unit"])
        if current is None or len(when) > len(current.get("when", {})):
            chosen[component["unit"]] = component
    order = list(dict.fromkeys(c["unit"] for c in components))
    return {unit: chosen[unit] for unit in order if unit in chosen}


def _check_declared(entry: Mapping, options: Mapping[str, str]) -> None:
    for key, values in entry.get("options", {}).items():
        if key in options and not among_options(options[key], values):
            raise _unsupported_option(key, options[key], values)


def _unsupported_option(key: str, value: str | None, supported: Iterable[str]) -> PricingError:
    supported = sorted(set(supported))
    code = "UNSUPPORTED_QUALITY" if key == "quality" else "UNSUPPORTED_OPTION"
    if value is None:
        message = f"{key} must be given: the price depends on it; supported: "
    else:
        message = f"{key} '{value}' has no price; supported: "
    return PricingError(code, message + ", ".join(supported), key, supported=supported)


def _why_unpriced(components: Sequence[dict], unit: Unit, options: Mapping[str, str]
                  ) -> PricingError | None:
    """The option that keeps `unit` (or a broader unit) from having a price, if one does."""
    related = [c for c in components if is_within(unit, UNITS[c["unit"]])]
    if not related:
        return None
    for key in sorted({k for c in related for k in c.get("when", {})}):
        values = [c["when"][key] for c in related if key in c.get("when", {})]
        if options.get(key) is None or not among_options(options[key], values):
            return _unsupported_option(key, options.get(key), values)
    priced = [c["when"] for c in related]
    return PricingError("UNSUPPORTED_OPTION", f"no {unit.name} price for options {dict(options)}"
                        f"; priced: {priced}", "options", supported=priced)


# ---------------------------------------------------------------- usage


def _count(value: Any, unit: Unit) -> Decimal:
    field = f"usage.{unit.usage}"
    if isinstance(value, bool):
        raise PricingError("INVALID_ARGUMENT", f"{field} must be a number", field)
    try:
        if isinstance(value, InexactFloat):  # as sent: 1e-400 is no 0, 0.999… no 1
            count = Decimal(value.text)
        elif isinstance(value, float):
            if not math.isfinite(value):  # 1e400 as JSON
                raise PricingError("INVALID_ARGUMENT", f"{field} {TOO_LARGE}", field)
            count = Decimal(repr(value))
        elif isinstance(value, int | Decimal):
            count = Decimal(value)
        elif isinstance(value, str) and _DECIMAL.fullmatch(value.removeprefix("-")):
            count = Decimal(value)
        else:
            raise InvalidOperation
    except InvalidOperation:
        raise PricingError("INVALID_ARGUMENT", f"{field} must be a number, or decimal digits "
                           f"in a string (\"7\", \"61.5\"), got {_as_sent(value)}",
                           field) from None
    if count.is_signed():  # "-0" too
        raise PricingError("INVALID_ARGUMENT", f"{field} cannot be negative", field)
    if count > MAX_COUNT:
        raise PricingError("INVALID_ARGUMENT", f"{field} must be at most {MAX_COUNT:,}", field)
    if unit.whole and count != count.to_integral_value():
        raise PricingError("INVALID_ARGUMENT", f"{field} must be a whole number", field)
    shape = count.normalize(EXACT).as_tuple()
    if len(shape.digits) > MAX_COUNT_DIGITS and count != 0:
        raise PricingError("INVALID_ARGUMENT", f"{field} has more than {MAX_COUNT_DIGITS} "
                           "significant digits", field)
    if -shape.exponent > MAX_COUNT_PLACES:
        raise PricingError("INVALID_ARGUMENT", f"{field} has more than {MAX_COUNT_PLACES} "
                           "decimal places", field)
    return count


def parse_usage(usage: Any) -> dict[str, Decimal]:
    """Unit name -> count; refuses unknown keys and bad counts."""
    if not isinstance(usage, Mapping):
        raise PricingError("INVALID_ARGUMENT", "usage must be an object", "usage")
    unknown = sorted(set(usage) - set(UNITS_BY_USAGE))
    if unknown:
        raise PricingError("INVALID_ARGUMENT", f"unknown usage key {unknown[0]!r}; known: "
                           f"{', '.join(UNITS_BY_USAGE)}", f"usage.{unknown[0]}")
    return {UNITS_BY_USAGE[k].name: _count(v, UNITS_BY_USAGE[k]) for k, v in usage.items()}


def _check_consistent(counts: Mapping[str, Decimal], priced: Iterable[str]) -> None:
    """A narrow count cannot exceed a broader count that includes it (cache reads above input
    tokens), when the broader one is given or priced (a missing one counts 0). And a priced
    overlap of two counts given (cached audio input, of cache reads and audio input) must be
    given too, as genai-prices requires: how much of each is also the other is not known."""
    priced = set(priced)
    for name, count in counts.items():
        for broad in BROADER[name]:
            if (broad.name in counts or broad.name in priced) and count > counts.get(
                    broad.name, 0):
                raise PricingError(
                    "INVALID_ARGUMENT", f"usage.{UNITS[name].usage} ({count}) cannot exceed "
                    f"usage.{broad.usage} ({counts.get(broad.name, 0)}), which includes it",
                    f"usage.{UNITS[name].usage}")
    given = sorted((UNITS[name] for name, count in counts.items() if count > 0),
                   key=lambda u: u.name)
    for a, b, join in _overlaps(given):
        if join is not None and join.name in priced and join.name not in counts:
            raise PricingError(
                "INVALID_ARGUMENT", f"usage.{join.usage} must be given: usage.{a.usage} and "
                f"usage.{b.usage} overlap, and it says how many count as both (0 when none "
                "do)", f"usage.{join.usage}")


def _leaf_counts(priced: Sequence[str], counts: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Each priced unit's count less what its priced narrower units take (genai-prices'
    compute_leaf_values)."""
    leaves: dict[str, Decimal] = {}
    for unit, within in _leaf_order(frozenset(priced)):
        leaf = EXACT.subtract(counts.get(unit.name, Decimal(0)),
                              sum((leaves[o.name] for o in within), Decimal(0)))
        if leaf < 0:
            parts = ", ".join(f"usage.{o.usage}" for o in within)
            raise PricingError("INVALID_ARGUMENT", f"the narrower counts {parts} add up to more "
                               f"than usage.{unit.usage}", f"usage.{unit.usage}")
        leaves[unit.name] = leaf
    return leaves


@lru_cache(maxsize=1024)
def _leaf_order(priced: frozenset[str]) -> tuple[tuple[Unit, tuple[Unit, ...]], ...]:
    """The priced units, narrowest first, each with the priced units within it."""
    units = sorted((UNITS[n] for n in priced), key=lambda u: (-len(u.dimensions), u.name))
    return tuple((unit, tuple(o for o in units if o is not unit and is_within(o, unit)))
                 for unit in units)


def prices_seconds(schedule: Sequence[dict], at: int) -> bool:
    """Whether the price in force at `at` counts seconds of video."""
    return "seconds" in _usage_keys(entry_at(schedule, at))


def _usage_keys(entry: Mapping) -> list[str]:
    return sorted({UNITS[c["unit"]].usage for c in entry["components"]})


def _check_usage_is_priced(entry: Mapping, priced: Mapping[str, dict],
                           counts: Mapping[str, Decimal], options: Mapping[str, str]) -> None:
    for name, count in counts.items():
        unit = UNITS[name]
        if count == 0 or any(is_within(unit, UNITS[p]) for p in priced):
            continue
        problem = _why_unpriced(entry["components"], unit, options)
        if problem is not None:
            raise problem
        takes = _usage_keys(entry)
        raise PricingError("UNSUPPORTED_USAGE", f"this model has no price for usage.{unit.usage}"
                           f"; it takes: {', '.join(takes) or 'nothing'}", f"usage.{unit.usage}",
                           supported=takes)


def _check_options(options: Any) -> dict[str, str]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise PricingError("INVALID_ARGUMENT", "options must be an object", "options")
    for key, value in options.items():
        if key not in OPTION_KEYS:
            raise PricingError("INVALID_ARGUMENT", f"unknown option {key!r}; known: "
                               f"{', '.join(OPTION_KEYS)}", f"options.{key}")
        if not isinstance(value, str):
            raise PricingError("INVALID_ARGUMENT", f"options.{key} must be a string",
                               f"options.{key}")
        if value != value.strip():  # "4K " is no "4K": it would fall to the default price
            raise PricingError("INVALID_ARGUMENT", f"options.{key} must not start or end "
                               f"with a space, got {value!r}", f"options.{key}")
    return dict(options)


# ---------------------------------------------------------------- quoting


def tier_price(component: Mapping, total_input_tokens: Decimal) -> str:
    """The price string that applies: the highest tier whose start the total input exceeds."""
    price = component["price"]
    for tier in component.get("tiers", ()):
        if total_input_tokens > tier["start"]:
            price = tier["price"]
    return price


def _line(unit: Unit, unit_price: str, quantity: Decimal, genai: Context) -> tuple[dict, bool]:
    """One line, and whether its amount was cut at 28 digits: a per-hour price follows
    genai-prices' arithmetic (price x count, then / 3600, at 28 significant digits); every other
    amount is exact."""
    price = (_stored_price(unit_price, unit.name) if isinstance(unit_price, str)
             else parse_price(unit_price, unit.name))
    if unit.per == 3600:
        genai.clear_flags()
        amount = genai.divide(genai.multiply(price, quantity), unit.per)
        cut = bool(genai.flags[Inexact])
    else:
        try:
            amount = STRICT.divide(STRICT.multiply(price, quantity), unit.per)
        except Inexact:
            raise PricingError("INVALID_ARGUMENT", f"the {unit.name} amount is too large to "
                               "price exactly", f"usage.{unit.usage}") from None
        cut = False
    shown = int(quantity) if quantity == quantity.to_integral_value() else decimal_string(quantity)
    return {"unit": unit.name, "quantity": shown, "unitPrice": unit_price, "per": unit.per,
            "usdExact": decimal_string(amount), "_amount": amount}, cut


def _total(amounts: Sequence[Decimal], cut: bool, genai: Context) -> Decimal:
    """The sum of the lines: exact, or at 28 digits in line order when a line was cut (as
    genai-prices adds)."""
    context = genai if cut else STRICT
    total = Decimal(0)
    try:
        for amount in amounts:
            total = context.add(total, amount)
    except Inexact:
        raise PricingError("INVALID_ARGUMENT", "the quote is too large to price exactly",
                           "usage") from None
    return total


def credits_for(usd: Decimal, credits_per_usd: Decimal) -> int:
    """ceil(usd x credits_per_usd), exactly."""
    return math.ceil(EXACT.multiply(usd, Decimal(credits_per_usd)))


def quote(schedule: Sequence[dict], usage: Mapping[str, Any], options: Mapping[str, str] | None,
          at: int, credits_per_usd: Decimal) -> dict:
    """The price of one request made at `at` (ms since the epoch) with this usage and these
    options, under a schedule that passed `validate`."""
    if type(at) is not int:
        raise PricingError("INVALID_ARGUMENT", "at must be milliseconds since the epoch", "at")
    options = _check_options(options)
    counts = parse_usage(usage)
    entry = entry_at(schedule, at)
    if not entry["components"]:  # an entry may say the model is not priced for a while
        raise PricingError("NO_PRICE", f"no price is in force at {_moment_text(at)}: the "
                           "entry in force lists no components", "at")
    _check_declared(entry, options)
    priced = select_components(entry["components"], options)
    _check_usage_is_priced(entry, priced, counts, options)
    _check_consistent(counts, priced)
    problem = coverage_problem(priced)
    if problem:
        raise PricingError("INVALID_PRICE", f"the price in force at {at}: {problem}", "price")
    if "request" in priced:  # a request fee: every quote is for one request or more
        if counts.setdefault("request", Decimal(1)) < 1:
            raise PricingError("INVALID_ARGUMENT", "usage.requests must be at least 1: this "
                               "price has a fee per request (1 when omitted)", "usage.requests")
    leaves = _leaf_counts(list(priced), counts)
    total_input = counts.get("input_tokens", Decimal(0))
    genai = Context(prec=GENAI_PRECISION, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
    lines, cut = [], False
    for name, component in priced.items():
        if leaves[name] == 0:
            continue
        line, line_cut = _line(UNITS[name], tier_price(component, total_input), leaves[name],
                               genai)
        if component.get("when"):  # priced by the options it names (none: the default price)
            line["when"] = dict(component["when"])
        lines.append(line)
        cut = cut or line_cut
    total = _total([line.pop("_amount") for line in lines], cut, genai)
    return {"at": at, "lines": lines, "usd": float(total), "usdExact": decimal_string(total),
            "credits": credits_for(total, credits_per_usd)}


# ---------------------------------------------------------------- video: the getCreditCost view


def video_schedule(cost_per_second: Decimal | str | float | int,
                   quality_multipliers: Mapping[str, Any] | None = None,
                   effective_from: int | None = None) -> list[dict]:
    """A per-second price with quality multipliers as one default `second` component and one
    component per quality whose multiplier is not 1 (price = cost x multiplier, exact)."""
    cost = Decimal(str(cost_per_second))
    components = [{"unit": "second", "price": decimal_string(cost)}]
    for quality, multiplier in (quality_multipliers or {}).items():
        factor = Decimal(str(multiplier))
        if factor != 1:
            components.append({"unit": "second", "when": {"quality": quality},
                               "price": decimal_string(EXACT.multiply(cost, factor))})
    return validate([{"effectiveFrom": effective_from, "components": components}])


def credit_cost(schedule: Sequence[dict], *, model_id: str, seconds: int, quality: str, at: int,
                credits_per_usd: Decimal, options: Mapping[str, str] | None = None) -> dict:
    """`pricing:getCreditCost`'s answer, from a quote on the same engine: {modelId, duration,
    quality, pricingUnit, costPerSecond, qualityMultiplier, usd, usdExact, credits}.

    costPerSecond is the `second` price without the quality option; qualityMultiplier is the
    quality's price over it (1 when they are equal)."""
    others = {k: v for k, v in (options or {}).items() if k != "quality"}
    entry = entry_at(schedule, at)
    # A price that also depends on an option not given (a resolution): its default would be
    # quoted as if it were the price of every value, a 4K job at the 720p price.
    unasked = sorted({key for c in entry["components"] for key in c.get("when") or {}
                      if key != "quality" and key not in others})
    if unasked:
        values = sorted({*entry.get("options", {}).get(unasked[0], ()),
                         *(c["when"][unasked[0]] for c in entry["components"]
                           if unasked[0] in (c.get("when") or {}))})
        raise PricingError("UNSUPPORTED_OPTION", f"{model_id} is priced by {unasked[0]}",
                           unasked[0], supported=values)
    priced = quote(schedule, {"seconds": seconds}, {**others, "quality": quality}, at,
                   credits_per_usd)
    applied = select_components(entry["components"], {**others, "quality": quality})["second"]
    base = select_components(entry["components"], others).get("second", applied)
    base_price, applied_price = Decimal(base["price"]), Decimal(applied["price"])
    multiplier = EXACT.divide(applied_price, base_price) if base_price else Decimal(1)
    return {
        "modelId": model_id,
        "duration": seconds,
        "quality": quality,
        "pricingUnit": "second",
        "costPerSecond": float(base_price),
        "qualityMultiplier": float(multiplier),
        "usd": priced["usd"],
        "usdExact": priced["usdExact"],
        "credits": priced["credits"],
    }
