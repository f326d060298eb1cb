"""The model spec: what a model is, declared once, as Convex's `schema.ts` declares a document.

Every field of a model is one `Field` below: its name, validator, default, label and help text,
group, and whether it is editable, listed, filterable and exported. Everything else derives
from this list:

- the documents the functions answer (`functions/documents.py`);
- the mutations' argument validators (`createModel`, `updateModel`'s patch, catalog entries);
- the catalog file's JSON Schema (`seeds/catalog.schema.json`, written by
  `flask --app wsgi docs`; a test keeps it in sync) and so the OpenAPI document;
- the console's forms (grouped by `group`, only the fields that fit the model's kind), its list
  columns and its filters;
- the README's table of model fields (a test keeps it in sync).

A new plain field is one entry here plus one migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from engine.errors import FunctionError
from engine.values import Validator, v
from functions import ids, prices
from functions.health_policy import HELP as HEALTH_POLICY_HELP
from functions.health_policy import HealthPolicy

# What a model produces. One of these is each model's `contentType`.
CONTENT_TYPES = {
    "chat": "text and chat: answers text (and maybe calls tools), priced per token",
    "embedding": "embeddings: turns input into vectors, priced per input token",
    "image": "image generation: priced per image, by size and quality",
    "video": "video generation: priced per second of output, by resolution or quality",
    "speech": "speech (text to speech): priced per character or per audio token",
    "transcription": "transcription (speech to text): priced per second of audio or per token",
}
MODALITIES = ("text", "image", "audio", "video", "embedding", "file")
# What a model can do, beyond its content type: the documented vocabulary of `capabilities`.
CAPABILITIES = {
    "vision": "reads images",
    "audio_input": "reads audio",
    "audio_output": "answers with audio",
    "video_input": "reads video",
    "pdf_input": "reads PDF files",
    "tools": "calls tools (function calling)",
    "parallel_tools": "calls several tools at once",
    "tool_choice": "can be told which tool to call",
    "structured_output": "answers in a given JSON Schema",
    "response_schema": "answers in a given JSON Schema (LiteLLM's name for the same)",
    "reasoning": "thinks before answering (reasoning tokens)",
    "prompt_caching": "caches prompts (cache read/write prices)",
    "system_messages": "takes system messages",
    "web_search": "searches the web",
    "computer_use": "operates a computer",
    "assistant_prefill": "continues a given start of its answer",
    "image_to_video": "animates a given image",
    "text_to_video": "makes video from text",
    "text_to_image": "makes images from text",
    "image_editing": "edits a given image",
    "audio_sync": "makes video with synchronized audio",
}
GROUPS = {
    "identity": "Identity",
    "capabilities": "Capabilities",
    "prices": "Prices",
    "technical": "Technical",
    "state": "State",
}

MODEL_ID = ids.MODEL_ID  # the id rule: functions/ids.py
QUALITY = v.string(
    1, 32, pattern=r"[a-z0-9][a-z0-9_-]*", hint="lower-case letters, digits, '_', '-'"
)
DURATION = v.int(1, 3600)
REVISION = v.int(1, 2**31 - 1)  # what an integer column holds on every database
DATE = v.date()
SCHEME = r"[Hh][Tt][Tt][Pp][Ss]?://"  # a scheme's case does not matter (RFC 3986 3.1)
URL = v.string(1, 2000, pattern=SCHEME + r"\S+", hint="an http(s) URL")


class RequestedUrl(Validator):
    """A URL the service itself requests (webhooks): printable ASCII, as http.client sends (one
    with "é" in it was taken, then failed every attempt), naming a host and a port one can connect
    to, and no user or password (http.client would drop them, and every list would show them)."""

    text = v.string(1, 2000, pattern=SCHEME + r"[!-~]+",
                    hint="an http(s) URL in ASCII (percent-encode other characters)")

    def check(self, value, path):
        value = self.text.check(value, path)
        where = path or "url"
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises for a port that is no number, or out of range
        except ValueError as error:
            raise FunctionError("INVALID_ARGUMENT", f"{where} is not a URL: {error}",
                                field=path or None) from None
        if not parts.hostname:
            raise FunctionError("INVALID_ARGUMENT", f"{where} names no host", field=path or None)
        if parts.port == 0:
            raise FunctionError("INVALID_ARGUMENT", f"{where} names port 0, which no server "
                                "listens on", field=path or None)
        if parts.username is not None or parts.password is not None:
            raise FunctionError("INVALID_ARGUMENT", f"{where} carries a user or password "
                                "(before '@'), which would not be sent: a receiver that needs a "
                                "secret takes it in the path, or use a signed webhook",
                                field=path or None)
        return value

    def schema(self):
        return self.text.schema()


ASCII_URL = RequestedUrl()


class Schedule(Validator):
    """A price schedule (functions/prices.py): checked and normalized by the pricing engine."""

    def check(self, value, path):
        try:
            return prices.validate(value)
        except prices.PricingError as error:
            where = (error.field or "schedule").replace("schedule", path, 1)
            message = error.message  # the engine's paths start with "schedule": the caller's
            text = path + message.removeprefix("schedule") if message.startswith("schedule") \
                else f"{where}: {message}"
            raise FunctionError("INVALID_ARGUMENT", text, field=where) from None

    def schema(self):
        return {"type": "array", "minItems": 1, "maxItems": prices.MAX_ENTRIES,
                "items": {"type": "object"},
                "description": "price schedule entries: {effectiveFrom, components, utcTime?, "
                               "options?} (README: Prices)"}


MEDIA = frozenset({"video", "image"})
VIDEO = frozenset({"video"})
TOKENS = frozenset({"chat", "embedding", "speech", "transcription"})


@dataclass(frozen=True)
class Field:
    """One field of a model, and where it appears."""

    name: str  # the document's (camelCase) name
    validator: Validator
    label: str
    group: str
    help: str = ""
    default: Any = None
    required: bool = False  # must be given on create
    editable: bool = True  # set by createModel / updateModel
    listed: bool = False  # a column of the console's list
    filterable: bool = False  # a filter of the console's list
    caseless: bool = False  # filters ignore case (imports spell "OpenAI" and "openai")
    exported: bool = True  # written to catalog files
    kinds: frozenset[str] | None = None  # the content types it fits; None: every kind
    column: str = ""  # the database column; derived from the name when empty

    @property
    def attr(self) -> str:
        return self.column or re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()

    def fits(self, content_type: str | None) -> bool:
        return self.kinds is None or content_type is None or content_type in self.kinds


def _f(name, validator, label, group, help="", **flags) -> Field:
    return Field(name, validator, label, group, help, **flags)


FIELDS: tuple[Field, ...] = (
    # -- identity ------------------------------------------------------------------------------
    _f("modelId", MODEL_ID, "Model id", "identity",
       "e.g. google/veo-3; cannot be changed later", required=True, editable=False,
       listed=True),
    _f("name", v.line(1, 200), "Name", "identity", required=True, listed=True),
    _f("description", v.string(0, 5000), "Description", "identity", default=""),
    _f("version", v.line(1, 50), "Version", "identity", default="1.0"),
    _f("provider", v.line(1, 100), "Provider", "identity", required=True, listed=True,
       filterable=True, caseless=True),
    _f("category", v.line(0, 100), "Category", "identity", default="", listed=True,
       filterable=True),
    _f("contentType", v.literal(*CONTENT_TYPES), "Content type", "identity",
       "what the model produces: " + ", ".join(CONTENT_TYPES), default="video", listed=True,
       filterable=True),
    _f("tags", v.array(v.string(1, 50), max_items=50, unique=True), "Tags", "identity",
       default=[]),
    _f("logoUrl", v.nullable(URL), "Logo URL", "identity", "an http(s) URL of the logo"),
    _f("isPremium", v.boolean(), "Premium", "identity", default=False, filterable=True),
    # -- capabilities --------------------------------------------------------------------------
    _f("inputModalities", v.array(v.literal(*MODALITIES), max_items=len(MODALITIES),
                                  unique=True),
       "Input modalities", "capabilities", "what it reads: " + ", ".join(MODALITIES),
       default=[]),
    _f("outputModalities", v.array(v.literal(*MODALITIES), max_items=len(MODALITIES),
                                   unique=True),
       "Output modalities", "capabilities", "what it produces: " + ", ".join(MODALITIES),
       default=[]),
    _f("capabilities", v.array(v.literal(*CAPABILITIES), max_items=len(CAPABILITIES),
                               unique=True),
       "Capabilities", "capabilities", "from the documented vocabulary", default=[],
       filterable=True),
    _f("contextWindow", v.nullable(v.int(1, 100_000_000)), "Context window (tokens)",
       "capabilities", "input and output tokens it can hold", kinds=TOKENS),
    _f("maxOutputTokens", v.nullable(v.int(1, 100_000_000)), "Max output tokens",
       "capabilities", kinds=frozenset({"chat"})),
    _f("supportedDurations", v.array(DURATION, max_items=50, unique=True),
       "Supported durations (s)", "capabilities", "comma-separated, e.g. 5, 9", default=[],
       kinds=VIDEO),
    _f("maxDuration", v.nullable(v.int(1, 3600)), "Max duration (s)", "capabilities",
       "empty: the longest supported duration", kinds=VIDEO),
    _f("fixedDuration", v.nullable(DURATION), "Fixed duration (s)", "capabilities",
       "only for models that always run this long", kinds=VIDEO),
    _f("supportedQualities", v.array(QUALITY, max_items=20, unique=True),
       "Supported qualities", "capabilities", "comma-separated, e.g. standard, high, ultra",
       default=[], kinds=MEDIA),
    # -- prices --------------------------------------------------------------------------------
    _f("prices", v.nullable(Schedule()), "Prices", "prices",
       "price components by unit, options and input-token tiers, scheduled in time (README: "
       "Prices); a video model may give costPerSecond instead"),
    _f("costPerSecond", v.nullable(v.amount(exclusive_minimum=0, maximum=1000, decimals=6)),
       "Cost per second (USD)", "prices",
       "the simple price of a video model: USD per second, at most 6 decimals",
       kinds=VIDEO, column="cost_micros"),
    _f("pricingUnit", v.nullable(v.literal("second")), "Pricing unit", "prices",
       "`second` for a video model priced by costPerSecond", kinds=VIDEO),
    _f("qualityMultipliers", v.record(QUALITY, v.amount(exclusive_minimum=0, maximum=100), 20),
       "Quality multipliers", "prices", 'e.g. {"high": 1.5}; a missing quality costs 1x',
       default={}, kinds=VIDEO),
    # -- technical -----------------------------------------------------------------------------
    _f("estimatedTimeSeconds", v.nullable(v.int(1, 86400)), "Estimated time (s)", "technical",
       "how long a typical generation takes", kinds=MEDIA),
    _f("deprecationDate", v.nullable(DATE), "Deprecation date", "technical",
       "when the provider retires it (YYYY-MM-DD)"),
    _f("successorModelId", v.nullable(MODEL_ID), "Successor", "technical",
       "the model to move to when this one is retired"),
    _f("task", v.nullable(v.string(1, 64, pattern=r"[a-z0-9][a-z0-9_-]*",
                                    hint="e.g. prompt_to_video")),
       "Task", "technical", "the provider's own name for what it does, e.g. prompt_to_video"),
    _f("replicateModelId", v.nullable(v.string(1, 200)), "Replicate model id", "technical"),
    _f("inputSchema", v.nullable(v.json()), "Input schema (JSON Schema)", "technical",
       "every pattern in it must be a regular expression that compiles"),
    _f("modelParameters", v.nullable(v.json()), "Model parameters", "technical"),
    _f("requirements", v.nullable(v.json()), "Requirements", "technical"),
    _f("healthPolicy", v.nullable(HealthPolicy()), "Health policy", "technical",
       HEALTH_POLICY_HELP),
    _f("pauseWhenFailing", v.nullable(v.boolean()), "Pause when failing", "technical",
       "true: the health monitor deactivates it when its health turns failing (never the "
       "default or a locked model: those only alert); empty: it only alerts"),
    # -- state (changed by their own mutations, not by a patch; isActive by either) -----------
    _f("isActive", v.boolean(), "Active", "state", default=True, listed=True, filterable=True),
    _f("isDefault", v.boolean(), "Default", "state", editable=False, listed=True),
    _f("isDeprecated", v.boolean(), "Deleted", "state", editable=False, filterable=True),
    _f("isLocked", v.boolean(), "Locked", "state", editable=False, filterable=True),
    _f("deprecatedAt", v.nullable(v.int(0)), "Deleted at", "state", editable=False,
       exported=False),
)
BY_NAME = {f.name: f for f in FIELDS}

EDITABLE_FIELDS = tuple(f for f in FIELDS if f.editable)
# The state flags a catalog file carries beside the editable fields.
STATE_FLAGS = ("isDefault", "isLocked", "isDeprecated")
LISTED = tuple(f.name for f in FIELDS if f.listed)
FILTERABLE = tuple(f.name for f in FIELDS if f.filterable)


def fields_for(content_type: str | None, group: str | None = None) -> list[Field]:
    """The editable fields that fit a kind of model, in declaration order."""
    return [f for f in EDITABLE_FIELDS
            if f.fits(content_type) and (group is None or f.group == group)]


def readme_table() -> str:
    """The README's table of model fields."""
    rows = ["| field | group | kinds | meaning |", "| --- | --- | --- | --- |"]
    for f in FIELDS:
        kinds = ", ".join(sorted(f.kinds)) if f.kinds else "all"
        meaning = f.label + (f": {f.help}" if f.help else "")
        flags = [] if f.editable else ["read-only"]
        rows.append(f"| `{f.name}` | {f.group} | {kinds} | {meaning}"
                    + (f" ({', '.join(flags)})" if flags else "") + " |")
    return "\n".join(rows)
