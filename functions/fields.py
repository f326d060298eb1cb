"""The model's editable fields, derived from the model spec, and the rules tying them together."""

from __future__ import annotations

from jsonschema import Draft202012Validator, SchemaError

from engine.errors import FunctionError
from engine.values import Boolean, Nullable, Validator, v
from functions import prices, schemas, spec
from functions.spec import DURATION, MODEL_ID, QUALITY, REVISION  # noqa: F401 - re-exported

# Every field a caller may set, with its validator. All are optional in a patch.
EDITABLE: dict[str, Validator] = {f.name: f.validator for f in spec.EDITABLE_FIELDS}
DEFAULTS: dict = {f.name: f.default for f in spec.EDITABLE_FIELDS if not f.required}
REQUIRED_ON_CREATE = tuple(f.name for f in spec.EDITABLE_FIELDS if f.required)

CREATE_ARGS = {
    "modelId": MODEL_ID,
    **{k: (val if k in REQUIRED_ON_CREATE else v.optional(val)) for k, val in EDITABLE.items()},
    "isDefault": v.optional(v.boolean()),
    "isDeprecated": v.optional(v.boolean()),
    "reason": v.optional(v.string(0, 500)),
}
PATCH = v.object({k: v.optional(val) for k, val in EDITABLE.items()})
# Flags that may be empty (pauseWhenFailing): empty and false both mean "no".
OPTIONAL_FLAGS = tuple(f.name for f in spec.EDITABLE_FIELDS if isinstance(
    f.validator, Nullable) and isinstance(f.validator.inner, Boolean))


# What a video model priced the simple way must give.
SIMPLE_VIDEO = ("costPerSecond", "supportedDurations", "supportedQualities")


def settle(config: dict, changed: set[str]) -> dict:
    """Normalize a whole configuration and check its cross-field rules."""
    kind = config["contentType"]
    for name in OPTIONAL_FLAGS:
        if config.get(name) is False:
            config[name] = None  # empty and false mean the same: one way to say it
    for field in spec.EDITABLE_FIELDS:
        if field.fits(kind) or config.get(field.name) in (None, [], {}, field.default):
            continue
        if field.name in changed:
            raise FunctionError(
                "INVALID_ARGUMENT", f"{field.name} does not apply to {kind} models",
                field=field.name)
        config[field.name] = field.default  # the model changed kind: the field no longer fits
    if kind == "video" and config.get("prices") is None:
        # A video model priced the simple way (costPerSecond, qualityMultipliers) lists its
        # durations and qualities. One priced by `prices` may leave them empty (the public price
        # maps give none): then it takes any duration up to maxDuration (3,600 s without one)
        # and any quality, priced by its schedule (functions/capabilities.py). What is missing
        # is named at once, not one field a try.
        missing = [name for name in SIMPLE_VIDEO if config.get(name) in (None, [], {})]
        if missing:
            raise FunctionError(
                "INVALID_ARGUMENT", f"{', '.join(missing[:-1])}{' and ' if missing[1:] else ''}"
                f"{missing[-1]} "
                f"{'is' if len(missing) == 1 else 'are'} required for a video model without "
                "prices (costPerSecond, supportedDurations and supportedQualities price it the "
                "simple way)", field=missing[0], missing=missing)
    _settle_price(config, kind)
    if kind == "video":
        if config["supportedDurations"]:
            _settle_durations(config, changed)
        elif config.get("fixedDuration") is not None:
            raise FunctionError("INVALID_ARGUMENT", "fixedDuration needs supportedDurations "
                                "(it must be one of them)", field="fixedDuration")
    return _settle_common(config)


def _settle_price(config: dict, kind: str) -> None:
    """Every model has one price: `prices`, or for video the simple costPerSecond (with
    qualityMultipliers), never both."""
    simple = config.get("costPerSecond") is not None
    if config.get("prices") is not None and (simple or config.get("qualityMultipliers")):
        field = "costPerSecond" if simple else "qualityMultipliers"
        raise FunctionError(
            "INVALID_ARGUMENT", f"give either prices or {field}, not both (set {field} to "
            "null to price this model by prices alone)", field=field)
    if config.get("prices") is None and not simple:  # (a video model's: settle says)
        raise FunctionError("INVALID_ARGUMENT", f"prices is required for {kind} models",
                            field="prices")
    config["pricingUnit"] = "second" if simple else None
    if simple:
        _check_multiplied_prices(config)


VIDEO_UNITS = {"second", "request"}  # what a video model's price counts: seconds, or clips


def check_kind_given(given: dict) -> None:
    """A new model's (or a catalog file entry's) kind, when it is not given: video, the spec's
    default, is priced per second or per clip, so prices without either mean another kind was
    meant. Refused, naming it (such a model was stored as video and refused every video
    quote). A kind given is taken as given; a schedule's unpriced gap (no components) is no
    sign either way."""
    if "contentType" in given or not given.get("prices"):
        return
    for index, entry in enumerate(given["prices"]):
        units = sorted({component["unit"] for component in entry["components"]})
        if units and VIDEO_UNITS.isdisjoint(units):
            raise FunctionError(
                "INVALID_ARGUMENT", f"contentType is video when not given, and prices[{index}] "
                f"prices {', '.join(units)}, not video's seconds or requests: give the model's "
                "contentType", field="contentType")


def _check_multiplied_prices(config: dict) -> None:
    """Each quality's price (costPerSecond x its multiplier, exact) must be a price the engine
    can hold, as any price given directly (prices.parse_price: digits, places, size)."""
    for quality, multiplier in (config.get("qualityMultipliers") or {}).items():
        try:
            prices.video_schedule(config["costPerSecond"], {quality: multiplier})
        except prices.PricingError as error:
            why = error.message.removeprefix(f"{error.field} ")  # the price's own path: inner
            raise FunctionError(
                "INVALID_ARGUMENT", f"qualityMultipliers.{quality}: costPerSecond x "
                f"{multiplier} {why}; prices are kept exact, so give the multiplier fewer "
                "digits", field=f"qualityMultipliers.{quality}") from None


def _settle_durations(config: dict, changed: set[str]) -> None:
    config["supportedDurations"] = sorted(config["supportedDurations"])
    longest = config["supportedDurations"][-1]
    if config.get("maxDuration") is None or (
        "supportedDurations" in changed and "maxDuration" not in changed
    ):
        config["maxDuration"] = longest
    if config["maxDuration"] < longest:
        raise FunctionError(
            "INVALID_ARGUMENT",
            f"maxDuration ({config['maxDuration']}) is below the longest supported duration "
            f"({longest})",
            field="maxDuration",
        )
    fixed = config.get("fixedDuration")
    if fixed is not None and fixed not in config["supportedDurations"]:
        raise FunctionError(
            "INVALID_ARGUMENT",
            f"fixedDuration ({fixed}) must be one of supportedDurations "
            f"({', '.join(map(str, config['supportedDurations']))})",
            field="fixedDuration",
        )


def _settle_common(config: dict) -> dict:
    for quality in config["qualityMultipliers"]:
        if quality not in config["supportedQualities"]:
            raise FunctionError(
                "INVALID_ARGUMENT",
                f"qualityMultipliers.{quality}: '{quality}' is not a supported quality "
                f"({', '.join(config['supportedQualities'])})",
                field=f"qualityMultipliers.{quality}",
            )
    if config.get("inputSchema") is not None:
        schemas.check_patterns(config["inputSchema"], "inputSchema")
        try:
            Draft202012Validator.check_schema(config["inputSchema"])
        except SchemaError as error:
            raise FunctionError(
                "INVALID_ARGUMENT", f"inputSchema is not a valid JSON Schema: {error.message}",
                field="inputSchema",
            ) from None
    return config
