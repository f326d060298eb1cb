"""models:recommendModel - the best model that can do a request, priced by the one engine.

Candidates are the active models of the requested content type (narrowed, when asked, to a
provider, a category, premium or not, and models that list every capability named). Each is
left out, with the reason, when it cannot take the request (its context window is smaller than
the request's input and output tokens; what `pricing:quote` refuses: a quality or duration it
lacks, a usage or option it has no price for), when its health is `failing`, or when its quote
is above `maxCredits`. The rest are ranked by the preference:

- `cheapest` (the default): by exact USD, then health, then speed;
- `fastest`: by p50 generation time over the health window (a model without data by its
  `estimatedTimeSeconds`, after those with data), then price;
- `reliable`: by success rate over the window, judged by the generations behind it: the lower
  bound of its 95% Wilson score interval, so 4 successes of 4 rank below 995 of 1,000 (no data
  counts after every measured model); then health, then price.

The quote in the answer is `pricing:quote`'s own answer for that model, so it is the price
charged. Like any query it can be subscribed to; an answer that depends on a scheduled price
holds until that price changes.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

from engine.errors import FunctionError
from engine.runtime import Context, query
from engine.values import v
from functions import health, models, prices, pricing
from functions.health_policy import effective
from functions.spec import CONTENT_TYPES

PREFERENCES = ("cheapest", "fastest", "reliable")
# A recommendation prices every candidate: it counts against its caller's rate limit as one
# call per this many (about 0.1 ms each; an ordinary call's work is a few).
MODELS_PER_CALL = 20
STATE_ORDER = {"healthy": 0, "unknown": 1, "degraded": 2}
LAST = float("inf")


def _speed(doc: dict, model) -> tuple[int, float]:
    if doc["p50GenerationTime"] is not None:
        return 0, doc["p50GenerationTime"]
    if model.estimated_time_seconds is not None:
        return 1, float(model.estimated_time_seconds)
    return 2, LAST


Z = 1.96  # a 95% interval


def wilson_lower_bound(successes: int, generations: int) -> float:
    """The least success rate (0 to 1) that `successes` of `generations` make likely at 95%:
    the lower bound of the Wilson score interval. A few lucky generations are not evidence:
    4 of 4 gives 0.51, 995 of 1,000 gives 0.99."""
    share, z2 = successes / generations, Z * Z
    spread = Z * math.sqrt(share * (1 - share) / generations + z2 / (4 * generations ** 2))
    return max(0.0, (share + z2 / (2 * generations) - spread) / (1 + z2 / generations))


def _reliability(row) -> float:
    if row is None or not row.generations:
        return LAST
    return -wilson_lower_bound(row.successes, row.generations)


def _rank(prefer: str, quote: dict, doc: dict, row, model) -> tuple:
    price = Decimal(quote["usdExact"])
    state = STATE_ORDER[doc["state"]]
    if prefer == "fastest":
        return _speed(doc, model), price, state, model.model_id
    if prefer == "reliable":
        return _reliability(row), state, price, model.model_id
    return price, state, _speed(doc, model), model.model_id


def _tokens(usage: dict, content_type: str) -> Decimal:
    """A request's input and output tokens, read once for every candidate. A usage that is not
    counts (an unknown key, a count that is no number, a video's fraction of a second) is the
    caller's to fix, whatever the model: refused here, not once per candidate. So is one that
    counts nothing, which would make every model free (and "cheapest" a pick by id)."""
    counts = pricing.priced(lambda: prices.parse_usage(usage))
    if not any(counts.values()):
        raise FunctionError("INVALID_ARGUMENT", "usage must say what the request uses, e.g. "
                            '{"inputTokens": 1000, "outputTokens": 500} or {"seconds": 8}',
                            field="usage")
    if content_type == "video" and "second" in counts:
        pricing.whole_seconds(counts["second"])
    return counts.get("input_tokens", 0) + counts.get("output_tokens", 0)


def _past_context(model, tokens: Decimal | None) -> str | None:
    """Why a request's tokens do not fit the model's context window, if they do not (a quote
    prices what happened whatever the window; a recommendation is for what may happen)."""
    window = model.context_window
    if window is None or tokens is None or tokens <= window:
        return None
    return f"its context window holds {window:,} tokens; the request has {tokens:,.0f}"


def _narrowed(narrowed: dict, capabilities: list[str] | None) -> str:
    """How a recommendation was narrowed, as its NO_MODEL message says it."""
    said = [f"{name} {json.dumps(value)}" for name, value in narrowed.items()]
    if capabilities:
        said.append("capabilities " + ", ".join(capabilities))
    return f" with {' and '.join(said)}" if said else ""


def _credits(count: int) -> str:
    return f"{count} credit{'' if count == 1 else 's'}"


def _reason(prefer: str, chosen: dict, doc: dict, fitting: int) -> str:
    what = {"cheapest": f"the cheapest ({_credits(chosen['credits'])}, ${chosen['usdExact']})",
            "fastest": "the fastest" + (f" (p50 {doc['p50GenerationTime']:g} s)"
                                        if doc["p50GenerationTime"] is not None else ""),
            "reliable": "the most reliable" + (
                f" ({doc['successRate']:g}% success of {doc['generations']:,} generations)"
                if doc["successRate"] is not None else "")}[prefer]
    return f"{what} of {fitting} active model(s) that can do this request; health {doc['state']}"


# listModels' filters a recommendation may be narrowed by (each as listModels takes it).
NARROWED_BY = ("provider", "category", "isPremium")
CAPABILITY = models.LIST_FILTERS["capability"].validator.item


@query({
    "contentType": v.literal(*CONTENT_TYPES),
    "usage": pricing.USAGE,
    "options": v.optional(v.object({name: v.optional(v.string(1, 64))
                                    for name in pricing.OPTIONS})),
    "maxCredits": v.optional(v.int(0, 10**12)),
    "prefer": v.optional(v.literal(*PREFERENCES)),
    "capabilities": v.optional(v.array(CAPABILITY, 1, 20, unique=True)),
    **{name: v.optional(models.LIST_FILTERS[name].validator) for name in NARROWED_BY},
}, name="models:recommendModel", moment="quote.at")
def recommendModel(ctx: Context, contentType: str, usage: dict, options: dict | None = None,
                   maxCredits: int | None = None, prefer: str = "cheapest",
                   capabilities: list[str] | None = None, **narrowed) -> dict:
    """The best active, capable, not failing model within `maxCredits`, by `prefer`:
    {modelId, quote, health, reason}; NO_MODEL (with each candidate's reason) when none fits.
    `provider`, `category`, `isPremium` and `capabilities` (every one listed) narrow the
    candidates, as listModels' filters do."""
    tokens = _tokens(usage, contentType)
    needed = set(capabilities or ())
    entries = [e for e in models.catalog(ctx).active if e.model.content_type == contentType
               and models.matches(e, narrowed)
               and needed <= set(e.config.get("capabilities") or ())]
    ctx.weigh(1 + len(entries) // MODELS_PER_CALL)
    rows = health.health_by_pk(ctx, [e.pk for e in entries]) if entries else {}
    fitting, left_out = [], []
    for entry in entries:
        model = entry.model
        row = rows.get(entry.pk)
        doc = health.health_document(model.model_id, row,
                                     effective(ctx.config, model.health_policy))
        if doc["state"] == "failing":
            left_out.append({"modelId": model.model_id, "code": "FAILING",
                             "reason": f"its health is failing (success rate "
                                       f"{doc['successRate']:.1f}% of {doc['generations']} "
                                       f"generations over {doc['windowSeconds'] // 60} min)"})
            continue
        try:
            quote = pricing.quote(ctx, modelId=model.model_id, usage=usage, options=options)
        except FunctionError as error:
            left_out.append({"modelId": model.model_id, "code": error.code,
                             "reason": error.message})
            continue
        too_long = _past_context(model, tokens)
        if too_long:
            left_out.append({"modelId": model.model_id, "code": "CONTEXT_TOO_SMALL",
                             "reason": too_long})
            continue
        if maxCredits is not None and quote["credits"] > maxCredits:
            left_out.append({"modelId": model.model_id, "code": "OVER_BUDGET",
                             "reason": f"costs {_credits(quote['credits'])}, more than "
                                       f"maxCredits ({maxCredits})"})
            continue
        fitting.append((_rank(prefer, quote, doc, row, model), model.model_id, quote, doc))
    if not fitting:
        which = _narrowed(narrowed, capabilities)
        why = (f"no active {contentType} model{which}" if not entries else
               f"none of the {len(entries)} active {contentType} model(s){which} fits")
        raise FunctionError("NO_MODEL", f"No model can do this request: {why}",
                            candidates=left_out)
    fitting.sort(key=lambda item: item[0])
    _, model_id, quote, doc = fitting[0]
    return {"modelId": model_id, "quote": quote, "health": doc,
            "reason": _reason(prefer, quote, doc, len(fitting))}
