"""Money as people read it: `$15.00 / 1M input tokens`, `$0.20 / s`, `$0.040 / image`.

Amounts are shown exactly (never rounded away), with at least two decimals and at least two
significant digits: 15 → $15.00, 0.2 → $0.20, 0.04 → $0.040, 0.0833333333333333 as it is.
A quote's amount in the price preview is too, unless it is a long quotient (usd_quoted).
"""

from __future__ import annotations

import json
from decimal import ROUND_DOWN, Decimal

from admin import charts
from admin.labels import label
from functions import prices

PER = {1_000_000: "1M ", 1_000: "1K ", 1: "", 3_600: ""}
# How a unit reads after its price; the rest read as their name ("web_search": "web search").
NAMES = {
    "second": "s",
    "audio_hour": "audio hour",
    "input_audio_hour": "input audio hour",
    "cache_read_tokens": "cached input tokens",
    "cache_write_tokens": "cache write tokens",
}


def usd(amount: Decimal | str | float | int) -> str:
    value = Decimal(str(amount)).normalize()
    exponent = value.as_tuple().exponent
    decimals = max(2, -exponent if isinstance(exponent, int) else 0)
    if 0 < abs(value) < 1:
        leading = -value.adjusted() - 1  # zeros after the point before the first digit
        decimals = max(decimals, leading + 2)
    return f"${value:,.{decimals}f}"


SHOWN_DIGITS = 12  # significant digits a quotient's amount shows


def usd_quoted(amount: Decimal | str) -> str:
    """A quote's amount: exactly, unless it has the 28 digits a per-hour quotient is worked to
    (a price per audio hour for a minute: 0.004166666666666666666666666667), when it reads as
    its first digits and "…" (never cut before the point)."""
    value = Decimal(str(amount)).normalize()
    if len(value.as_tuple().digits) < prices.GENAI_PRECISION:
        return usd(value)
    keep = max(SHOWN_DIGITS, value.adjusted() + 1)
    cut = value.quantize(Decimal(1).scaleb(value.adjusted() + 1 - keep), rounding=ROUND_DOWN)
    return usd(cut) + "…"


def unit(name: str) -> str:
    per = prices.UNITS[name].per if name in prices.UNITS else 1
    return PER.get(per, f"{per} ") + NAMES.get(name, name.replace("_", " "))


def price(amount: Decimal | str, unit_name: str) -> str:
    return f"{usd(amount)} / {unit(unit_name)}"


def summary(schedule: list[dict], now_ms: int, most: int = 2) -> str:
    """The price in force now, in a few words: its unconditional components (or, when every
    one has a condition, the first few, each with it: "$0.016 / image (size 256x256)")."""
    try:
        entry = prices.entry_at(schedule, now_ms)
    except prices.PricingError:
        return "not yet in force"
    plain = [c for c in entry["components"] if not c.get("when")] or entry["components"]
    words = " · ".join(price(c["price"], c["unit"])
                       + (f" ({condition(c)})" if c.get("when") else "") for c in plain[:most])
    return words + (" …" if len(entry["components"]) > most else "")


def quantity(count: int | str) -> str:
    """A quote line's quantity: a count with thousands separators, or fractional seconds as
    the engine answers them (a decimal string, '90.5')."""
    if isinstance(count, int):
        return f"{count:,}"
    whole, point, fraction = count.partition(".")
    return f"{int(whole):,}{point}{fraction}"


def calculator_inputs(schedule: list[dict], now_ms: int) -> tuple[list[str], dict]:
    """What the price calculator asks for: the usage counts the price in force takes, and
    the option values its components name. Before the first price starts, the first price's:
    what a request will be asked for, and quoted at a moment from then on."""
    try:
        entry = prices.entry_at(schedule, now_ms)
    except prices.PricingError as error:
        if error.code != "NO_PRICE" or not schedule:
            return [], {}
        entry = prices.entry_at(schedule, error.data["startsAt"])
    return inputs_of([entry])


def inputs_of(entries: list[dict]) -> tuple[list[str], dict]:
    """The usage counts these schedule entries' components take, and the option values they
    name (declared, or in a component's `when`), in the order they first appear."""
    usage = list(dict.fromkeys(prices.UNITS[c["unit"]].usage
                               for entry in entries for c in entry["components"]))
    options: dict[str, list[str]] = {}
    for entry in entries:
        named = [*entry.get("options", {}).items(),
                 *((key, [value]) for component in entry["components"]
                   for key, value in (component.get("when") or {}).items())]
        for key, values in named:
            known = options.setdefault(key, [])
            for value in values:
                if not prices.among_options(value, known):  # "High" is "high"
                    known.append(value)
    return usage, options


def condition(component: dict) -> str:
    """When a component applies, in words: 'quality hd, size 1024x1792'."""
    return ", ".join(f"{k} {v}" for k, v in (component.get("when") or {}).items())


def _in_force(entry: dict) -> str:
    """When a schedule entry applies: "since always", "from 2027-01-15 00:00 UTC", and its
    time-of-day window."""
    start = entry.get("effectiveFrom")
    if start is not None and start >= prices.YEAR_10000_MS:  # stored before starts were bounded
        return f"from {start} ms (after the year 9999)"
    when = "since always" if start is None else "from " + charts.when(start, charts.MINUTE)
    window = entry.get("utcTime")
    return when + (f", {window['start']}–{window['end']} UTC" if window else "")


def _tiers(component: dict) -> list[str]:
    return [f"above {t['start']:,} input tokens: {price(t['price'], component['unit'])}"
            for t in component.get("tiers", [])]


def schedule_rows(schedule: list[dict], now_ms: int) -> list[dict]:
    """The schedule as the details page lists it: each entry with when it applies (current,
    "from <date>", or a time-of-day window) and its components as money."""
    try:
        current = prices.entry_at(schedule, now_ms)
    except prices.PricingError:  # nothing in force yet: every entry is scheduled
        current = None
    return [{
        "when": _in_force(entry),
        "current": entry is current,
        "scheduled": entry.get("effectiveFrom") is not None and entry["effectiveFrom"] > now_ms,
        "components": [{"price": price(c["price"], c["unit"]), "condition": condition(c),
                        "tiers": _tiers(c)} for c in entry["components"]],
    } for entry in schedule]


def _priced(schedule: list[dict]) -> dict[str, str]:
    """Each price of a schedule by what it prices ("output tokens, since always"), as money."""
    points = {}
    for entry in schedule:
        for c in entry["components"]:
            what = ", ".join(filter(None, [
                NAMES.get(c["unit"], c["unit"]).replace("_", " ") if c["unit"] != "second"
                else "second", condition(c), _in_force(entry)]))
            points[what] = "; ".join([price(c["price"], c["unit"]), *_tiers(c)])
    return points


EMPTY = (None, [], {})


def changes_shown(changes: list[dict] | None) -> list[tuple[str, str, str]]:
    """A history entry's changes as (what, old, new) in words: each price that changed on its
    own line ("Prices, output tokens, since always: $10.00 → $12.00 / 1M output tokens"), and
    nothing for a field that only went from one empty value to another (null → [])."""
    shown = []
    for change in changes or ():
        name, old, new = change["field"], change["old"], change["new"]
        if old in EMPTY and new in EMPTY:
            continue
        if name == "prices" and isinstance(old, list) and isinstance(new, list):
            before, after = _priced(old), _priced(new)
            shown += [(f"{label(name)}, {what}", before.get(what, "none"),
                       after.get(what, "none"))
                      for what in dict.fromkeys([*before, *after])
                      if before.get(what) != after.get(what)]
            continue
        shown.append((label(name), field_value(name, old), field_value(name, new)))
    return shown


def field_value(field: str, value) -> str:
    """A field's value in a change (history): money as money, a switch as yes or no, nothing
    as "none", the rest as JSON (text in quotes, so that spaces show)."""
    if field == "costPerSecond" and value is not None:
        return price(str(value), "second")
    if field == "prices" and isinstance(value, list):
        return f"{len(value)} price entr{'y' if len(value) == 1 else 'ies'}"
    if value is None or isinstance(value, bool):
        return {None: "none", True: "yes", False: "no"}[value]
    return json.dumps(value, ensure_ascii=False)
