"""pricing:* - the one place a price is computed, for the console, the frontend and billing."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

from db.schema import Model
from engine.runtime import Context, query
from engine.values import v
from functions import models
from functions.capabilities import resolve_request
from functions.documents import MICROS, from_micros


def quality_multiplier(model: Model, quality: str) -> Decimal:
    return Decimal(str(model.quality_multipliers.get(quality, 1)))


def _per_second(model: Model, duration: int | None, quality: str) -> dict:
    seconds = resolve_request(model, duration, quality)
    multiplier = quality_multiplier(model, quality)
    usd = Decimal(model.cost_micros) * seconds * multiplier / MICROS
    return {
        "duration": seconds,
        "costPerSecond": from_micros(model.cost_micros),
        "qualityMultiplier": float(multiplier),
        "usd": usd,
    }


# One quoter per pricing unit: a new unit (per image, per million tokens) is a new entry here.
QUOTERS: dict[str, Callable[[Model, int | None, str], dict]] = {"second": _per_second}


def quote(model: Model, duration: int | None, quality: str, credits_per_usd: Decimal) -> dict:
    priced = QUOTERS[model.pricing_unit](model, duration, quality)
    usd: Decimal = priced.pop("usd")
    return {
        "modelId": model.model_id,
        "quality": quality,
        "pricingUnit": model.pricing_unit,
        **priced,
        "usd": float(usd),
        "usdExact": format(usd.normalize(), "f"),
        "credits": math.ceil(usd * credits_per_usd),
    }


@query({
    "modelId": v.string(1, 200),
    "duration": v.optional(v.int(1, 3600)),
    "quality": v.string(1, 100),
})
def getCreditCost(ctx: Context, modelId: str, quality: str, duration: int | None = None) -> dict:
    """The whole quote for one generation: cost per second, multiplier, USD and credits."""
    credits_per_usd = Decimal(str(ctx.config["CREDITS_PER_USD"]))
    return quote(models.cached(ctx, modelId).model, duration, quality, credits_per_usd)
