"""The model's editable fields: their validators and the rules that tie them together."""

from __future__ import annotations

from jsonschema import Draft202012Validator, SchemaError

from engine.errors import FunctionError
from engine.values import v
from functions import ids, schemas

MODEL_ID = ids.MODEL_ID  # the id rule: functions/ids.py
QUALITY = v.string(
    1, 32, pattern=r"[a-z0-9][a-z0-9_-]*", hint="lower-case letters, digits, '_', '-'"
)
DURATION = v.int(1, 3600)
REVISION = v.int(1, 2**31 - 1)  # what an integer column holds on every database

# Every field a caller may set, with its validator. All are optional in a patch.
EDITABLE = {
    "name": v.string(1, 200),
    "description": v.string(0, 5000),
    "version": v.string(1, 50),
    "costPerSecond": v.number(exclusive_minimum=0, maximum=1000),
    "pricingUnit": v.literal("second"),
    "supportedDurations": v.array(DURATION, min_items=1, max_items=50, unique=True),
    "supportedQualities": v.array(QUALITY, min_items=1, max_items=20, unique=True),
    "maxDuration": v.int(1, 3600),
    "fixedDuration": v.nullable(DURATION),
    "qualityMultipliers": v.record(QUALITY, v.number(exclusive_minimum=0, maximum=100), 20),
    "isPremium": v.boolean(),
    "isActive": v.boolean(),
    "provider": v.string(1, 100),
    "category": v.string(0, 100),
    "tags": v.array(v.string(1, 50), max_items=50, unique=True),
    "contentType": v.string(1, 64, pattern=r"[a-z0-9][a-z0-9_]*", hint="e.g. prompt_to_video"),
    "inputSchema": v.nullable(v.json()),
    "replicateModelId": v.nullable(v.string(1, 200)),
    "modelParameters": v.nullable(v.json()),
    "requirements": v.nullable(v.json()),
}
REQUIRED_ON_CREATE = (
    "name", "costPerSecond", "supportedDurations", "supportedQualities", "provider",
)

CREATE_ARGS = {
    "modelId": MODEL_ID,
    **{k: (val if k in REQUIRED_ON_CREATE else v.optional(val)) for k, val in EDITABLE.items()},
    "isDefault": v.optional(v.boolean()),
    "reason": v.optional(v.string(0, 500)),
}
PATCH = v.object({k: v.optional(val) for k, val in EDITABLE.items()})

DEFAULTS = {
    "description": "",
    "version": "1.0",
    "pricingUnit": "second",
    "fixedDuration": None,
    "qualityMultipliers": {},
    "isPremium": False,
    "isActive": True,
    "category": "",
    "tags": [],
    "contentType": "prompt_to_video",
    "inputSchema": None,
    "replicateModelId": None,
    "modelParameters": None,
    "requirements": None,
}


def settle(config: dict, changed: set[str]) -> dict:
    """Normalize a whole configuration and check its cross-field rules."""
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
