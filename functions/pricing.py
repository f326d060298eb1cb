"""pricing:* - the one place a price is computed, for the console, the frontend and billing.

Every model's price is a schedule (functions/prices.py): the `prices` field, or for a video
model priced the simple way, its `costPerSecond` and `qualityMultipliers`, read as a schedule of
one entry. `quote` prices any usage at any moment on it; `getCreditCost` is the video shorthand
on the same engine. So the price shown is the price charged.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from db.schema import Model
from engine.errors import FunctionError
from engine.runtime import Context, query
from engine.values import Validator, v
from functions import models, prices
from functions.capabilities import check_quality, require_active, resolve_duration, resolve_request
from functions.documents import MICROS

OPTIONS = prices.OPTION_KEYS  # every option the engine prices by


class Moment(Validator):
    """A moment (`at`, `from`, `to`): milliseconds since the epoch, or an ISO 8601 time with
    its offset, read as a price entry's `effectiveFrom` is; the function gets milliseconds."""

    def check(self, value, path):
        at = prices.moment(value)
        if at is None:
            raise FunctionError("INVALID_ARGUMENT", f"{path} {prices.not_a_moment(value)}",
                                field=path)
        return at

    def schema(self):
        return {"oneOf": [{"type": "integer", "minimum": 0,
                           "maximum": prices.YEAR_10000_MS - 1},
                          {"type": "string", "format": "date-time"}]}


TIMESTAMP = Moment()


def schedule_of(model: Model) -> list[dict]:
    """The model's price schedule, whichever way it is stored."""
    if model.prices is not None:
        return model.prices
    return priced(lambda: prices.video_schedule(Decimal(model.cost_micros) / MICROS,
                                                model.quality_multipliers))


def priced(work):
    """Run `work()`, turning the engine's refusals into function errors."""
    try:
        return work()
    except prices.PricingError as error:
        field = f"options.{error.field}" if error.field in OPTIONS else error.field
        raise FunctionError(error.code, error.message, field=field, **error.data) from None


def _in_force_until(ctx: Context, schedule: list[dict], at: int) -> None:
    """An answer priced at "now" holds until the schedule's next change (a scheduled price or
    a time-of-day window): held answers and live subscriptions are re-run then."""
    ctx.valid_until(prices.next_change_after(schedule, at))


def _credits_per_usd(ctx: Context) -> Decimal:
    return Decimal(str(ctx.config["CREDITS_PER_USD"]))


class Count(Validator):
    """A usage count: a number, or a decimal string (exact fractional seconds)."""

    def check(self, value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise FunctionError("INVALID_ARGUMENT", f"{path} must be a number",
                                field=path)
        if isinstance(value, str) and len(value) > 40:
            raise FunctionError("INVALID_ARGUMENT", f"{path} is too long", field=path)
        return value

    def schema(self):
        return {"anyOf": [{"type": "number", "minimum": 0},
                          {"type": "string", "pattern": r"^\d+(\.\d+)?$", "maxLength": 40}]}


USAGE = v.record(v.string(1, 40), Count(), 40)  # its keys are the engine's to name (parse_usage)


@query({
    "modelId": v.string(1, 200),
    "usage": USAGE,
    "options": v.optional(v.object({name: v.optional(v.string(1, 64)) for name in OPTIONS})),
    "at": v.optional(TIMESTAMP),
}, moment="at")
def quote(ctx: Context, modelId: str, usage: dict[str, Any], options: dict | None = None,
          at: int | None = None) -> dict:
    """The price of one request: line items, exact USD and credits, at the prices in force
    `at` (ms; now when omitted). Video usage is checked against the model's durations.

    Now, only an active model is priced: it is what is offered. At a moment named, any model
    is, whatever its state since: a job that ran before its model was paused, disabled or
    deleted is billed at its prices then, and a disabled model's price can be previewed."""
    model = models.cached(ctx, modelId).model
    if at is None:
        require_active(model)
    options = options or {}
    if "quality" in options and (model.content_type == "video" or model.supported_qualities):
        check_quality(model, options["quality"], "options.quality")  # as getCreditCost
    schedule = schedule_of(model)
    when = ctx.now if at is None else at
    if at is None:  # before anything that reads the price in force may refuse
        _in_force_until(ctx, schedule, when)
    if model.content_type == "video":
        counts = priced(lambda: prices.parse_usage(usage))  # an unknown key or bad count first
        if "seconds" in usage:  # read as every count is (9, 9.0, "9"), then whole
            resolve_duration(model, whole_seconds(counts["second"]), "usage.seconds")
        elif priced(lambda: prices.prices_seconds(schedule, when)):  # not priced per request
            if model.fixed_duration is None:
                raise FunctionError("INVALID_ARGUMENT", "usage.seconds is required: how long "
                                    "the video is", field="usage.seconds")
            usage = {**usage, "seconds": model.fixed_duration}  # as getCreditCost takes it
    answer = priced(lambda: prices.quote(schedule, usage, options, when, _credits_per_usd(ctx)))
    if not usage and not any(line["quantity"] for line in answer["lines"]):
        _nothing_said(model.model_id, schedule, options, when)
    return {"modelId": model.model_id, **answer}


def whole_seconds(seconds: Decimal) -> int:
    """A video's `usage.seconds` (read as every count is): a whole number, or refused."""
    if seconds != seconds.to_integral_value():
        raise FunctionError("INVALID_ARGUMENT", "usage.seconds must be a whole number of "
                            "seconds for a video model", field="usage.seconds")
    return int(seconds)


def _nothing_said(model_id: str, schedule: list[dict], options: dict, when: int) -> None:
    """An empty usage that counted nothing: a mistake, not a $0 quote, when the prices that
    hold under these options charge for anything. (Free under them, $0 is the price.) A
    request fee that depends on declared options none of which was given is asked for as a
    quote of one request asks: the option is what is missing, not the usage."""
    entry = prices.entry_at(schedule, when)
    holding = prices.select_components(entry["components"], options)
    fees = [c for c in entry["components"] if c["unit"] == "request"]
    declared = set(entry.get("options", {}))
    if "request" not in holding and fees and all(set(c.get("when", {})) <= declared
                                                 for c in fees):
        priced(lambda: prices.quote(schedule, {"requests": 1}, options, when, Decimal(1)))
    if any(Decimal(component["price"]) for component in holding.values()):
        keys = ", ".join(sorted({prices.UNITS[unit].usage for unit in holding}))
        raise FunctionError("INVALID_ARGUMENT", "usage is empty: say what the request uses; "
                            f"{model_id} is priced by {keys}", field="usage")


@query({
    "modelId": v.string(1, 200),
    "duration": v.optional(v.int(1, 3600)),
    "quality": v.string(1, 100),
    "at": v.optional(TIMESTAMP),
})
def getCreditCost(ctx: Context, modelId: str, quality: str, duration: int | None = None,
                  at: int | None = None) -> dict:
    """The whole quote for one video generation: cost per second, multiplier, USD and credits,
    at the prices in force `at` (ms; now when omitted: then, as for pricing:quote, only an
    active model is priced)."""
    model = models.cached(ctx, modelId).model
    seconds = resolve_request(model, duration, quality, offered=at is None)
    quality = next((named for named in model.supported_qualities  # as the model spells it
                    if prices.same_option(quality, named)), quality)
    schedule = schedule_of(model)
    when = ctx.now if at is None else at
    if at is None:
        _in_force_until(ctx, schedule, when)
    try:
        return priced(lambda: prices.credit_cost(
            schedule, model_id=model.model_id, seconds=seconds, quality=quality, at=when,
            credits_per_usd=_credits_per_usd(ctx)))
    except FunctionError as error:
        option = (error.data.get("field") or "").removeprefix("options.")
        if error.code != "UNSUPPORTED_OPTION" or option in ("", "quality"):
            raise
        raise FunctionError(  # an option this shorthand has no argument for
            "UNSUPPORTED_OPTION", f"{model.model_id} is priced by {option}, which "
            f"getCreditCost does not take: ask pricing:quote with options.{option}",
            field="modelId", **{k: v for k, v in error.data.items()
                                if k not in ("code", "field")}) from None
