"""Public price maps as import entries: LiteLLM's map and genai-prices' data, converted.

Pure: no database, no Flask. `litellm(data, providers)` and `genai_prices(providers)` answer a
`Conversion`: the entries the catalog can hold (`{keys, modelId, fields, notes}`, checked by the
same rules as the import's arguments, `imports.check_entry`), and every entry it cannot hold,
with its reasons (`{keys, reasons, priced}`). Nothing is dropped silently: an entry is either
converted or reported, and a converted one lists in `notes` what of it was left out (a source
field the spec refuses, a key the price converter classed as not a price of a request).

Prices come from the one set of converters, `functions.price_maps`. A price the engine cannot
express makes the whole entry not representable (never a partial price).

Model ids:
- genai-prices: `<provider id>/<model id>`;
- LiteLLM: the key when it already starts with `<litellm_provider>/`, otherwise
  `<litellm_provider>/<key>`; the keys of one image model by size and quality
  (`hd/1024-x-1792/dall-e-3`) are one model (`openai/dall-e-3`) priced by `size` and `quality`.
Ids are canonical (lower case, functions/ids.py); one that breaks the grammar is reported.

The LiteLLM format followed is that of litellm 1.110.2's `model_prices_and_context_window.json`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import FunctionError
from functions import ids, price_maps, spec
from functions.imports import check_entry

SOURCES = ("litellm", "genai-prices")
LITELLM_VERSION = "1.110.2"

# LiteLLM mode -> content type. Modes not here (rerank, moderation, search, ocr, ...) have no
# content type in the catalog: their entries are reported.
LITELLM_MODES = {
    "chat": "chat", "completion": "chat", "responses": "chat", "realtime": "chat",
    "embedding": "embedding",
    "image_generation": "image", "image_edit": "image",
    "video_generation": "video",
    "audio_speech": "speech",
    "audio_transcription": "transcription",
}
# What the mode itself says the model can do.
MODE_CAPABILITIES = {
    "image_generation": ["text_to_image"],
    "image_edit": ["image_editing"],
    "video_generation": ["text_to_video"],
    "realtime": ["audio_input", "audio_output"],
}
# LiteLLM `supports_*` -> the spec's capability vocabulary (functions/spec.py).
LITELLM_CAPABILITIES = {
    "supports_vision": "vision",
    "supports_image_input": "vision",
    "supports_audio_input": "audio_input",
    "supports_audio_output": "audio_output",
    "supports_video_input": "video_input",
    "supports_pdf_input": "pdf_input",
    "supports_function_calling": "tools",
    "supports_parallel_function_calling": "parallel_tools",
    "supports_tool_choice": "tool_choice",
    "supports_native_structured_output": "structured_output",
    "supports_response_schema": "response_schema",
    "supports_reasoning": "reasoning",
    "supports_prompt_caching": "prompt_caching",
    "supports_system_messages": "system_messages",
    "supports_web_search": "web_search",
    "supports_computer_use": "computer_use",
    "supports_assistant_prefill": "assistant_prefill",
}
assert set(LITELLM_CAPABILITIES.values()) <= set(spec.CAPABILITIES)
for _caps in MODE_CAPABILITIES.values():
    assert set(_caps) <= set(spec.CAPABILITIES)
IGNORED = "ignored: "  # price_maps' prefix for a key that is not a price of a request
_ID = re.compile(ids.PATTERN)


@dataclass
class Conversion:
    """What a source holds, as import entries and reported entries."""

    source: str
    models: list[dict] = field(default_factory=list)
    not_representable: list[dict] = field(default_factory=list)
    entries: int = 0  # entries read from the source (after the provider filter)
    priced: int = 0  # of those, entries that carry a price

    def refuse(self, keys: list[str], reasons: Iterable[str], priced: bool,
               model_id: str | None = None) -> None:
        item: dict[str, Any] = {"keys": keys, "reasons": sorted(set(reasons)), "priced": priced}
        if model_id is not None:
            item["modelId"] = model_id
        self.not_representable.append(item)

    def args(self) -> dict:
        """The `models` and `notRepresentable` arguments of catalog:planImport/importPrices."""
        return {"source": self.source, "models": self.models,
                "notRepresentable": self.not_representable}


Progress = Callable[[int], None]


def _blocking(reasons: Iterable[str]) -> list[str]:
    return [r for r in reasons if not r.startswith(IGNORED)]


def _ignored(reasons: Iterable[str]) -> list[str]:
    return [r for r in reasons if r.startswith(IGNORED)]


def _accept(conversion: Conversion, keys: list[str], model_id: str, fields: dict,
            notes: list[str], priced: bool) -> None:
    """Check an entry as the import will; report it when the catalog cannot hold it."""
    entry = {"keys": keys, "modelId": model_id, "fields": fields}
    if notes:
        entry["notes"] = sorted(set(notes))
    try:
        checked = check_entry(entry, "entry")
    except FunctionError as error:
        conversion.refuse(keys, [error.message], priced, model_id)
        return
    conversion.models.append(checked)


def _canonical_id(raw: str) -> str | None:
    """The canonical id, or None when it breaks the id grammar."""
    if len(raw) > 200 or not _ID.fullmatch(raw):
        return None
    return ids.canonical(raw)


def _bad_id(raw: str) -> str:
    """Why an id is refused, in words that group the same refusals (the key is listed)."""
    if len(raw) > 200:
        return "its model id is longer than 200 characters"
    return f"its model id breaks the id grammar: {ids.HINT}"


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


def _count(value: Any) -> int | None:
    """A token count from the source: a whole number within the spec's bounds, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 1 <= value <= 100_000_000 or value != int(value):  # (NaN and inf fail the first)
        return None
    return int(value)


# ---------------------------------------------------------------- LiteLLM


def litellm_id(key: str, provider: str) -> str:
    """The model id of a LiteLLM key: the key when it starts with `<provider>/`, else
    `<provider>/<key>` (not yet checked against the grammar)."""
    return key if key.startswith(f"{provider}/") else f"{provider}/{key}"


def _image_base(key: str) -> str | None:
    """The key less its size and quality segments, for a LiteLLM key naming a size."""
    options = price_maps.image_options(key)
    if not options:
        return None
    parts = key.split("/")
    size = options["size"].replace("x", "-x-")
    parts.remove(size)
    if "quality" in options:
        parts.remove(options["quality"])
    return "/".join(parts)


def _is_priced(entry: Mapping) -> bool:
    for key, value in entry.items():
        if key == "tiered_pricing" and value:
            return True
        if "cost" in key and (isinstance(value, Mapping) or (
                isinstance(value, int | float) and not isinstance(value, bool))):
            return True
    return False


def litellm_entries(data: Mapping) -> int:
    """How many entries of a LiteLLM map are models (its `sample_spec` is not)."""
    return sum(1 for key, entry in data.items()
               if key != "sample_spec" and isinstance(entry, Mapping))


def litellm(data: Mapping[str, Any], providers: Iterable[str] = (),
            progress: Progress | None = None) -> Conversion:
    """LiteLLM's `model_prices_and_context_window.json` (as loaded), for the given providers
    (`litellm_provider`, any case; all when empty)."""
    wanted = {p.lower() for p in providers}
    out = Conversion("litellm")
    groups: dict[str, list[tuple[str, Mapping]]] = {}  # model id -> its keys (image sizes)
    order: list[str] = []
    for key, entry in data.items():
        if key == "sample_spec" or not isinstance(entry, Mapping):
            continue
        if progress:  # one model entry read (of litellm_entries: the bar's total)
            progress(1)
        provider = entry.get("litellm_provider")
        if wanted and (not isinstance(provider, str) or provider.lower() not in wanted):
            continue
        out.entries += 1
        priced = _is_priced(entry)
        if priced:
            out.priced += 1
        problem = _litellm_problem(entry, provider)
        if problem:
            out.refuse([key], [problem], priced)
            continue
        base = _image_base(key) if entry.get("mode") in ("image_generation", "image_edit") else None
        raw = litellm_id(base or key, provider)
        model_id = _canonical_id(raw)
        if model_id is None:
            out.refuse([key], [_bad_id(raw)], priced)
            continue
        if model_id not in groups:
            order.append(model_id)
        groups.setdefault(model_id, []).append((key, entry))
    for model_id in order:
        _litellm_model(out, model_id, groups[model_id])
    return out


def _litellm_problem(entry: Mapping, provider: Any) -> str | None:
    """Why an entry cannot be a model at all, before its prices are read."""
    if "alias_of" in entry and not _is_priced(entry):
        return f"an alias of {entry['alias_of']} (no price of its own)"
    if not isinstance(provider, str) or not provider:
        return "no litellm_provider: the entry names no provider (a fallback or a size class)"
    mode = entry.get("mode")
    if mode is None:
        return "no mode: the entry does not say what kind of model it is"
    if not isinstance(mode, str) or mode not in LITELLM_MODES:
        return f"mode {mode!r}: the catalog has no content type for it"
    if not _is_priced(entry):
        return "no price"
    return None


def _litellm_model(out: Conversion, model_id: str, members: list[tuple[str, Mapping]]) -> None:
    """One model from its keys: one key, or an image model's keys by size and quality (with at
    most one key naming no size, its default price). Other keys that name the same model are
    reported: the key that already starts with its provider is the one taken."""
    sized = [(k, e) for k, e in members if price_maps.image_options(k)
             and e.get("mode") in ("image_generation", "image_edit")]
    plain = [(k, e) for k, e in members if (k, e) not in sized]
    same: list[str] = []  # keys naming the same model with the same price
    if len(plain) > 1:
        provider = plain[0][1]["litellm_provider"]
        plain.sort(key=lambda item: not item[0].startswith(f"{provider}/"))
        first = price_maps.from_litellm(*plain[0])
        for key, entry in plain[1:]:
            if price_maps.from_litellm(key, entry) == first and entry.get(
                    "mode") == plain[0][1].get("mode"):
                same.append(key)
                continue
            out.refuse([key], [f"the same model id as the key {plain[0][0]}, which is "
                               "imported, with another price or mode"], True, model_id)
        plain = plain[:1]
    schedules, keys, notes, entries = [], [], [], []
    for key, entry in plain + sized:
        schedule, reasons = price_maps.from_litellm(key, entry)
        blocking = _blocking(reasons)
        if schedule is None or blocking:
            out.refuse([key], blocking or ["the converter gave no price"], True, model_id)
            continue
        schedules.append(schedule)
        keys.append(key)
        entries.append(entry)
        notes += [f"{key}: {r}" if len(members) > 1 else r for r in _ignored(reasons)]
    if not keys:
        return
    if len(schedules) > 1:
        try:
            prices = price_maps.combine(schedules, entries[0].get("litellm_provider"))
        except Exception as error:  # noqa: BLE001 - a PricingError, reported by key
            out.refuse(keys, [f"its sizes do not combine into one price: {error}"], True,
                       model_id)
            return
    else:
        prices = schedules[0]
    if len(prices) == 1 and not prices[0]["components"]:
        # every cost key it has is one the converter classes as not a price of a request
        out.refuse(keys, ["no price of a request (its cost keys are not prices of a request)"],
                   False, model_id)
        out.priced -= len(keys)
        return
    if same and plain and keys[0] == plain[0][0]:
        keys[1:1] = same
        notes.append(f"the same model and price as {', '.join(same)}")
    fields, field_notes = _litellm_fields(model_id, entries[0])
    fields["prices"] = prices
    _accept(out, keys, model_id, fields, notes + field_notes, True)


def _litellm_fields(model_id: str, entry: Mapping) -> tuple[dict, list[str]]:
    mode = entry["mode"]
    kind = LITELLM_MODES[mode]
    provider = entry["litellm_provider"]
    notes: list[str] = []
    name = model_id.split("/", 1)[1] if model_id.startswith(f"{provider.lower()}/") else model_id
    fields: dict[str, Any] = {"name": _text(name, 200) or model_id[:200],
                              "provider": provider[:100], "contentType": kind}
    capabilities = list(MODE_CAPABILITIES.get(mode, ()))
    for flag, capability in LITELLM_CAPABILITIES.items():
        if entry.get(flag) is True and capability not in capabilities:
            capabilities.append(capability)
    fields["capabilities"] = capabilities
    for source_key, name_ in (("supported_modalities", "inputModalities"),
                              ("supported_output_modalities", "outputModalities")):
        values = entry.get(source_key)
        if isinstance(values, list):
            kept = [m for m in dict.fromkeys(m for m in values if isinstance(m, str))
                    if m in spec.MODALITIES]
            left = [str(m) for m in values if not isinstance(m, str) or m not in spec.MODALITIES]
            if left:
                notes.append(f"{source_key} {', '.join(left)} left out (not a modality of the "
                             "spec)")
            fields[name_] = kept
    if spec.BY_NAME["contextWindow"].fits(kind):
        raw = entry.get("max_input_tokens", entry.get("max_tokens"))
        window = _count(raw)
        if window is not None:
            fields["contextWindow"] = window
        elif raw is not None:
            notes.append(f"max_input_tokens {raw!r} left out (not a token count)")
    if spec.BY_NAME["maxOutputTokens"].fits(kind):
        raw = entry.get("max_output_tokens")
        most = _count(raw)
        if most is not None:
            fields["maxOutputTokens"] = most
        elif raw is not None:
            notes.append(f"max_output_tokens {raw!r} left out (not a token count)")
    date = entry.get("deprecation_date")
    if date is not None:
        try:
            fields["deprecationDate"] = spec.DATE.check(date, "deprecationDate")
        except FunctionError:
            notes.append(f"deprecation_date {date!r} left out (not a date, YYYY-MM-DD)")
    successor = entry.get("successor_model")
    if isinstance(successor, str) and successor:
        raw = litellm_id(successor, provider)
        successor_id = _canonical_id(raw)
        if successor_id is not None:
            fields["successorModelId"] = successor_id
        else:
            notes.append(f"successor_model {successor!r} left out: {_bad_id(raw)}")
    return fields, notes


# ---------------------------------------------------------------- genai-prices


# genai-prices names no task, and prices a moderation model or a reranker as it would a chat
# or an embedding model: their ids say what they are (LiteLLM's modes say so, reported too).
NAMED_TASKS = ("moderation", "rerank")


def named_task(model_id: str) -> str | None:
    """The task a genai-prices model's id names that the catalog has no content type for."""
    lowered = model_id.lower()
    return next((task for task in NAMED_TASKS if task in lowered), None)


def genai_kind(schedule: list[dict]) -> str | None:
    """The content type of a genai-prices model, from what it is priced by (genai-prices has no
    mode): output tokens -> chat; input tokens only -> embedding; characters -> speech; audio
    time -> transcription; pages only (OCR) -> None."""
    units = {c["unit"] for e in schedule for c in e["components"]}
    tokens = {u for u in units if u.endswith("_tokens")}
    if any(u.startswith("output_") for u in tokens):
        return "chat"
    if tokens:
        return "embedding"
    if "characters" in units:
        return "speech"
    if units & {"audio_hour", "input_audio_hour"}:
        return "transcription"
    return None


def genai_prices(providers: Iterable[str] = (), progress: Progress | None = None,
                 data: Iterable | None = None) -> Conversion:
    """genai-prices' bundled data (the installed version) for the given provider ids (any
    case; all when empty)."""
    if data is None:
        from genai_prices.data import providers as data
    wanted = {p.lower() for p in providers}
    out = Conversion("genai-prices")
    seen: Counter = Counter()
    for provider in data:
        if wanted and provider.id.lower() not in wanted:
            if progress:
                progress(len(provider.models))
            continue
        for model in provider.models:
            if progress:
                progress(1)
            out.entries += 1
            out.priced += 1
            key = f"{provider.id}/{model.id}"
            model_id = _canonical_id(key)
            if model_id is None:
                out.refuse([key], [_bad_id(key)], True)
                continue
            seen[model_id] += 1
            if seen[model_id] > 1:
                out.refuse([key], [f"a second entry for {model_id}"], True, model_id)
                continue
            task = named_task(model.id)
            if task is not None:
                out.refuse([key], [f"a {task} model, as its id says (genai-prices names no "
                                   "task): the catalog has no content type for it"], True,
                           model_id)
                continue
            schedule, reasons = price_maps.from_genai_prices(model, provider.id)
            if schedule is None:
                out.refuse([key], reasons, True, model_id)
                continue
            kind = genai_kind(schedule)
            if kind is None:
                out.refuse([key], ["priced only per document page (OCR): the catalog has no "
                                   "content type for it"], True, model_id)
                continue
            fields: dict[str, Any] = {
                "name": _text(model.name, 200) or model.id[:200],
                "description": _text(model.description, 5000) or "",
                "provider": provider.name[:100], "contentType": kind, "prices": schedule,
                "tags": ["deprecated"] if model.deprecated else [],
            }
            notes = []
            if spec.BY_NAME["contextWindow"].fits(kind) and model.context_window:
                window = _count(model.context_window)
                if window is not None:
                    fields["contextWindow"] = window
                else:
                    notes.append(f"context_window {model.context_window!r} left out")
            _accept(out, [key], model_id, fields, notes, True)
    return out


def convert(source: str, data: Any = None, providers: Iterable[str] = (),
            progress: Progress | None = None) -> Conversion:
    """A source's entries: `litellm` needs `data` (the map, loaded); `genai-prices` reads the
    installed package."""
    if source == "litellm":
        if not isinstance(data, Mapping):
            raise FunctionError("INVALID_ARGUMENT", "a LiteLLM price map is a JSON object of "
                                "entries by key", field="file")
        converted = litellm(data, providers, progress)
    elif source == "genai-prices":
        converted = genai_prices(providers, progress)
    else:
        raise FunctionError("INVALID_ARGUMENT", f"unknown source {source!r}; known: "
                            f"{', '.join(SOURCES)}", field="source")
    if converted.entries == 0:  # a wrong file or a misspelt provider, not an empty plan
        raise _nothing_found(source, data, list(providers))
    return converted


def _nothing_found(source: str, data: Any, providers: list[str]) -> FunctionError:
    if source == "litellm":
        known = sorted({e["litellm_provider"].lower() for e in data.values()
                        if isinstance(e, Mapping) and isinstance(e.get("litellm_provider"), str)})
    else:
        from genai_prices.data import providers as genai

        known = sorted(provider.id for provider in genai)
    if providers and known:
        listed = ", ".join(known[:40]) + (f" and {len(known) - 40} more" if len(known) > 40
                                          else "")
        return FunctionError("INVALID_ARGUMENT", f"no {source} entry is of provider "
                             f"{', '.join(providers)}; its providers: {listed}", field="provider")
    if source == "litellm":
        return FunctionError("INVALID_ARGUMENT", "the file holds no LiteLLM price entry (a "
                             "model_prices_and_context_window.json: an object of model keys, each "
                             "with litellm_provider and its prices)", field="file")
    return FunctionError("INVALID_ARGUMENT", f"the installed {source} holds no model",
                         field="source")
