"""A price change's effect before it is saved: a typical request of the model's kind, priced
by the one engine (functions/prices.py, which `pricing:quote` runs) under the old and the new
price, once per option value the prices name (quality, resolution, size, tier)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from flask import current_app

from admin import charts, money
from functions import prices

PRICE_FIELDS = ("prices", "costPerSecond", "qualityMultipliers")
# A typical request, by usage count (what a quote asks for); others are left at zero.
TYPICAL = {"inputTokens": 1000, "outputTokens": 500, "characters": 1000, "images": 1,
           "imagePixels": 1024 * 1024, "inputAudioLengthSeconds": 60, "requests": 1,
           "sessionSeconds": 60}


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


def _typical(config: dict, schedule: list[dict], now_ms: int) -> dict:
    usage_keys, _options = money.calculator_inputs(schedule, now_ms)
    durations = ([config["fixedDuration"]] if config.get("fixedDuration")
                 else config.get("supportedDurations") or [5])
    typical = {**TYPICAL, "seconds": durations[0]}
    return {key: typical[key] for key in usage_keys if key in typical}


def _described(usage: dict) -> str:
    words = {"seconds": "s of video", "inputTokens": "input tokens",
             "outputTokens": "output tokens", "characters": "characters", "images": "image(s)",
             "imagePixels": "pixels", "inputAudioLengthSeconds": "s of audio",
             "requests": "request(s)", "sessionSeconds": "s of session"}
    return ", ".join(f"{count:,} {words.get(key, key)}" for key, count in usage.items())


def _usd(schedule: list[dict], usage: dict, options: dict, now_ms: int) -> str:
    try:
        answer = prices.quote(schedule, usage, options, now_ms,
                              Decimal(str(current_app.config["CREDITS_PER_USD"])))
    except prices.PricingError as error:
        return f"— ({error.message})"
    return money.usd(answer["usdExact"])


def preview(old: dict, new: dict, now_ms: int) -> list[dict] | None:
    """Rows of {request, old, new}, one per option value; None when the price is unchanged
    or the new one is not a price (the mutation explains)."""
    before, after = schedule(old), schedule(new)
    if after is None or before == after:
        return None
    usage = _typical(new, after, now_ms)
    _keys, options = money.calculator_inputs(after, now_ms)
    if new.get("contentType") == "video" and new.get("prices") is None:
        options = {"quality": list(new.get("supportedQualities") or [])}
    elif before:  # and the values only the old price names: what becomes of them
        for key, values in money.calculator_inputs(before, now_ms)[1].items():
            options[key] = list(dict.fromkeys([*options.get(key, []), *values]))
    variants = [{}] + [{key: value} for key, values in options.items() for value in values]
    # and at each scheduled change of either price (its entries replace whole lists): one the
    # new price drops is shown too, priced as it would have been and as it now will be
    later = sorted({e["effectiveFrom"] for e in [*(before or []), *after]
                    if e["effectiveFrom"] is not None and e["effectiveFrom"] > now_ms})
    return [{"request": (f"From {charts.when(at, charts.MINUTE)}: " if at != now_ms else "")
             + _described(usage)
             + "".join(f", {k} {v}" for k, v in variant.items()),
             "old": _usd(before, usage, variant, at) if before else "—",
             "new": _usd(after, usage, variant, at)}
            for at in [now_ms, *later[:MOST_SCHEDULED]] for variant in variants]


MOST_SCHEDULED = 3  # scheduled changes previewed


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
