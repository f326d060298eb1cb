"""A price change's effect before it is saved: a typical request of the model's kind (and a
cached one and a long one, when the price names cache prices or tiers), priced by the one
engine (functions/prices.py, which `pricing:quote` runs) under the old and the new price, as
a quote would price it now, at each scheduled change and at a time-of-day window's edge, once
per option value the prices name (quality, resolution, size, tier); and the stretches in which
an active model would have no price."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from flask import current_app

from admin import charts, money
from admin.labels import words
from functions import prices

PRICE_FIELDS = ("prices", "costPerSecond", "qualityMultipliers")
MOST_SCHEDULED = 3  # scheduled changes previewed
# A typical request, by usage count (what a quote asks for). A count the price takes that this
# does not name is 0: a narrow count, part of a broader one (audio tokens of the input tokens).
TYPICAL = {"inputTokens": 1000, "outputTokens": 500, "characters": 1000,
           "outputCharacters": 1000, "images": 1, "imagePixels": 1024 * 1024, "inputImages": 1,
           "inputAudioLengthSeconds": 60, "inputVideoLengthSeconds": 60, "sessionSeconds": 60,
           "audioSeconds": 60, "requests": 1, "webSearches": 1, "storageSearches": 1,
           "mapsSearches": 1, "queries": 1, "documentPages": 1, "inputTextMessages": 1}
# The same request with part of its input cached, when the price names cache prices.
CACHED = {"cacheReadTokens": 500, "cacheWriteTokens": 200}
WORDS = {"seconds": "s of video", "inputTokens": "input tokens", "outputTokens": "output tokens",
         "cacheReadTokens": "of them cache reads", "cacheWriteTokens": "cache writes",
         "characters": "characters", "images": "image(s)", "imagePixels": "pixels",
         "inputAudioLengthSeconds": "s of input audio", "audioSeconds": "s of audio",
         "requests": "request(s)", "sessionSeconds": "s of session",
         "webSearches": "web search(es)", "storageSearches": "storage search(es)",
         "mapsSearches": "maps search(es)", "queries": "query(ies)",
         "documentPages": "document page(s)", "inputImages": "input image(s)",
         "inputTextMessages": "input message(s)", "outputCharacters": "output characters",
         "inputVideoLengthSeconds": "s of input video"}


def schedule(config: dict) -> list[dict] | None:
    """The price schedule a model's configuration describes; None when it describes none."""
    try:
        if config.get("prices") is not None:
            return prices.validate(config["prices"])
        if config.get("costPerSecond") is not None:
            return prices.video_schedule(config["costPerSecond"],
                                         config.get("qualityMultipliers"))
    except (prices.PricingError, ArithmeticError):  # ArithmeticError: Decimal("x")
        return None  # not a price (a multiplier "x"): the mutation refuses it, naming the field
    return None


def fingerprint(config: dict) -> str:
    """Names a price exactly, so that a preview confirms that price and no other."""
    text = json.dumps({k: config.get(k) for k in PRICE_FIELDS}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _requests(config: dict, keys: list[str], entries: list[dict]) -> list[tuple[str, dict]]:
    """The requests previewed, (what sets it apart, usage): a typical one; the same with part
    of its input cached, when a cache price is named; and one long enough for the highest
    tier of input tokens, when a price has tiers."""
    durations = ([config["fixedDuration"]] if config.get("fixedDuration")
                 else config.get("supportedDurations") or [5])
    typical = {**TYPICAL, "seconds": durations[0]}
    base = {key: typical.get(key, 0) for key in keys}
    requests = [("", base)]
    if base.get("inputTokens"):
        cached = {key: count for key, count in CACHED.items() if key in keys}
        if cached:
            requests.append(("cached", {**base, **cached}))
        starts = [tier["start"] for entry in entries for component in entry["components"]
                  for tier in component.get("tiers", [])]
        if starts:
            requests.append(("long", {**base, "inputTokens": max(starts) + base["inputTokens"]}))
    return requests


def _described(usage: dict) -> str:
    return ", ".join(f"{count:,} {WORDS.get(key) or words(key).lower()}"
                     for key, count in usage.items() if count)


def _usd(schedule: list[dict], usage: dict, options: dict, at: int, known: dict) -> str:
    """The request's price under `schedule`, as a quote answers it, and what it took to get
    one, said beside it: a count the price has no unit for is left out (a quote with it is
    refused), an option the price must also be given takes its first value."""
    answer, said, _asked = _quote(schedule, usage, options, at, known)
    if isinstance(answer, prices.PricingError):
        return f"— ({answer.message})"
    return money.usd_quoted(answer["usdExact"]) + (f" ({'; '.join(said)})" if said else "")


def _quote(schedule: list[dict], usage: dict, options: dict, at: int,
           known: dict) -> tuple[dict | prices.PricingError, list[str], dict]:
    """The quote (or its refusal), what was left out or added to get it, and the options it
    was asked with."""
    usage, asked, said = dict(usage), dict(options), []
    while True:
        try:
            credits = Decimal(str(current_app.config["CREDITS_PER_USD"]))
            return prices.quote(schedule, usage, asked, at, credits), said, asked
        except prices.PricingError as error:
            count = (error.field or "").removeprefix("usage.")
            if error.code == "UNSUPPORTED_USAGE" and usage.get(count):
                del usage[count]
                said.append(f"{words(count).lower()}: no price, refused")
            elif (error.message.startswith(f"{error.field} must be given")
                  and known.get(error.field) and error.field not in asked):
                asked[error.field] = known[error.field][0]
                said.append(f"{error.field} {asked[error.field]}")
            else:
                return error, said, asked


def _with_windows(moments: list[int], *schedules: list[dict] | None) -> list[int]:
    """The moments, and the next change within a day of each, when a time-of-day window of
    the prices in force opens or closes then: a change from midnight inside an off-peak
    window (22:00-06:00) also shows the day's price, from 06:00."""
    edges = {prices.next_change_after(schedule, at) for schedule in schedules if schedule
             for at in moments}
    return sorted({*moments, *(edge for edge in edges if edge is not None and any(
        at < edge < at + charts.DAY and edge not in moments for at in moments))})


def _taken_at(usage: dict, at: int, *schedules: list[dict] | None) -> dict:
    """The counts of a request made at `at`: those the prices in force then take (a model
    priced by the audio hour now and by the second later is asked for each then)."""
    taken = {key for schedule in schedules if schedule and _priced_at(schedule, at)
             for key in money.inputs_of([prices.entry_at(schedule, at)])[0]}
    return {key: count for key, count in usage.items() if key in taken} or usage


def _completed(schedule: list[dict], usage: dict, options: dict, at: int,
               given: dict) -> dict | None:
    """`given` with the first value of each option a quote of the price must also be given
    (an image priced by size and quality needs both); None when that prices nothing."""
    answer, _said, asked = _quote(schedule, usage, given, at, options)
    return None if isinstance(answer, prices.PricingError) else asked


def _variants(schedule: list[dict], usage: dict, options: dict, at: int) -> list[dict]:
    """The options the preview prices a request with: none (or the fewest the price needs),
    each component's own conditions, then each option value in turn: every price of the
    entry in force at `at` is shown."""
    entry = prices.entry_at(schedule, at) if _priced_at(schedule, at) else {"components": []}
    found = [_completed(schedule, usage, options, at, given) for given in
             [{}, *(c["when"] for c in entry["components"] if c.get("when"))]]
    found = [options_ for options_ in found if options_ is not None] or [{}]
    base = found[0]
    variants: list[dict] = []
    for variant in [*found, *({**base, key: value} for key, values in options.items()
                              for value in values)]:
        if variant not in variants:
            variants.append(variant)
    return variants


def _priced_at(schedule: list[dict], at: int) -> bool:
    """Whether a price is in force at `at`: an entry, with components (an empty one says the
    model is not priced for a while)."""
    try:
        return bool(prices.entry_at(schedule, at)["components"])
    except prices.PricingError:
        return False


def _first_priced(schedule: list[dict], moments: list[int]) -> int:
    """The first of the moments at which the schedule has a price (the first, if none)."""
    return next((at for at in moments if _priced_at(schedule, at)), moments[0])


def preview(old: dict, new: dict, now_ms: int) -> list[dict] | None:
    """Rows of {request, old, new}: a typical request (with a cached and a long one when the
    price names cache prices or tiers) under the old and the new price, now and at each
    scheduled change, once per option value the prices name (quality, resolution, size,
    tier); None when the price is unchanged or the new one is not a price (the mutation
    explains)."""
    before, after = schedule(old), schedule(new)
    if after is None or before == after:
        return None
    keys, options = money.inputs_of(after)
    old_keys, old_options = money.inputs_of(before or [])
    keys = list(dict.fromkeys([*keys, *old_keys]))
    if new.get("contentType") == "video" and new.get("prices") is None:
        options = {"quality": list(new.get("supportedQualities") or [])}
    else:  # and the values only the old price names: what becomes of them
        for key, values in old_options.items():
            options[key] = list(dict.fromkeys([*options.get(key, []), *values]))
    requests = _requests(new, keys, [*(before or []), *after])
    # at each scheduled change of either price too (its entries replace whole lists): one the
    # new price drops is shown, priced as it would have been and as it now will be
    later = sorted({e["effectiveFrom"] for e in [*(before or []), *after]
                    if e["effectiveFrom"] is not None and e["effectiveFrom"] > now_ms})
    moments = _with_windows([now_ms, *later[:MOST_SCHEDULED]], before, after)
    variants = _variants(after, requests[0][1], options, _first_priced(after, moments))
    rows = []
    for at in moments:
        asked = [(request, variant) for request in requests[:1] for variant in variants]
        asked += [(request, variants[0]) for request in requests[1:]]
        for (what, requested), variant in asked:
            usage = _taken_at(requested, at, before, after)
            rows.append({
                "request": (f"From {charts.when(at, charts.MINUTE)}: " if at != now_ms else "")
                + (f"{what}: " if what else "") + _described(usage)
                + "".join(f", {k} {v}" for k, v in variant.items()),
                "old": _usd(before, usage, variant, at, options) if before else "—",
                "new": _usd(after, usage, variant, at, options)})
    return rows


def backdated(old: dict, new: dict, now_ms: int) -> int | None:
    """The earliest past start of a dated entry the new price adds, changes or removes: it
    changes what a quote `at` a moment since then answers (the import refuses a past time; an
    edit may want it, to correct a mistake, so it is said before the save, not refused). The
    undated first entry is left out: editing it in place is the usual price change."""
    before = {e["effectiveFrom"]: e for e in schedule(old) or []}
    after = {e["effectiveFrom"]: e for e in schedule(new) or []}
    return min((start for start in before.keys() | after.keys()
                if start is not None and start < now_ms
                and before.get(start) != after.get(start)), default=None)


def unpriced(new: dict, now_ms: int) -> list[str]:
    """For an active model, the stretches from now on in which its new price has none (quotes
    answer NO_PRICE), in words: "now, until 2099-06-01 00:00 UTC", "from 2027-01-01 00:00 UTC,
    until 2027-03-01 00:00 UTC", "from 2028-01-01 00:00 UTC on", "now, nor later"; [] when it
    has none, or the model is not active."""
    after = schedule(new)
    if not new.get("isActive") or not after:
        return []
    starts = sorted({e["effectiveFrom"] for e in after
                     if e["effectiveFrom"] is not None and e["effectiveFrom"] > now_ms})
    gaps, opened = [], None
    for at in [now_ms, *starts]:
        priced = _priced_at(after, at)
        if not priced and opened is None:
            opened = at
        elif priced and opened is not None:
            gaps.append((opened, at))
            opened = None
    if opened is not None:
        gaps.append((opened, None))
    return [("now" if start == now_ms else f"from {charts.when(start, charts.MINUTE)}")
            + (f", until {charts.when(end, charts.MINUTE)}" if end is not None
               else " on" if start != now_ms else ", nor later")
            for start, end in gaps]
