"""Importing a public price map: the plan, worked out in memory, and its write.

An import takes entries converted from a source (functions/sources.py: `{keys, modelId, fields,
notes?}`) and the entries the source had that the catalog cannot hold (`{keys, reasons,
priced}`), and plans, against the models as read:

- models to create (inactive unless `activate`), through the create transition and the field
  rules (functions/states.py, functions/fields.py);
- price changes and field changes to existing models, through the edit transition and the
  same rules; a price change is shown old -> new by component, and as the change in % of a
  typical request of the model's kind (`TYPICAL`, named in the answer);
- what it leaves alone, and says so: locked models; fields whose last change was not this
  source's import (an admin's edit since, or before, the model's import from this source, by
  history: `local_edits`), unless `overwriteLocalEdits`; entries that cannot be represented,
  with their reasons (and models the catalog cannot take the change on).

It never deactivates a model, touches the default, or unlocks anything. `at` schedules the
price changes: the entries of the imported price in force at `at` start then, and the model's
old price stays in force until then (functions/prices.py schedules); the change is recorded in
history now. A model created with `at` has no price before it.

`Plan` is pure; `catalog:planImport` runs it on a read, holding no lock, and
`catalog:importPrices` runs it before taking the writers' lock and writes it with `write`
(planning again under the lock only if the catalog moved), all or nothing, with history source
`import:<source>`. The answer (`Plan.summary`) is grouped as a console shows it: created, price
changes, field changes, not representable, local edits kept, locked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from db.schema import Model, ModelHistory
from engine.errors import FunctionError
from engine.runtime import Context, Identity
from engine.values import Validator, v
from functions import fields, ids, models, prices, spec, states
from functions.documents import config_of
from functions.plan import stored
from functions.pricing import TIMESTAMP

SOURCES = ("litellm", "genai-prices")
# The fields an import sets (those a source gives); every other field is the catalog's own.
IMPORTED = ("name", "description", "provider", "contentType", "tags", "inputModalities",
            "outputModalities", "capabilities", "contextWindow", "maxOutputTokens", "prices",
            "deprecationDate", "successorModelId")
REQUIRED = ("name", "provider", "contentType", "prices")
# A model's price, whichever way it is stored: a local edit of one keeps them all.
PRICE_FIELDS = ("prices", "costPerSecond", "qualityMultipliers", "pricingUnit")
MAX_ENTRIES = 20_000
KEYS = v.array(v.string(1, 500), 1, 500)

ENTRY = v.object({
    "keys": KEYS,
    "modelId": ids.MODEL_ID,
    "fields": v.object({name: v.optional(spec.BY_NAME[name].validator) for name in IMPORTED}),
    "notes": v.optional(v.array(v.string(1, 2000), 0, 1000)),
})
NOT_REPRESENTABLE = v.array(v.object({
    "keys": KEYS,
    "reasons": v.array(v.string(1, 2000), 1, 100),
    "priced": v.boolean(),
    "modelId": v.optional(v.string(1, 200)),
}), max_items=MAX_ENTRIES)
OPTIONS = v.object({
    "at": v.optional(TIMESTAMP),
    "activate": v.optional(v.boolean()),
    "overwriteLocalEdits": v.optional(v.boolean()),
})


def history_source(source: str) -> str:
    return f"import:{source}"


# -- progress (the CLI's bar) ------------------------------------------------------------------

_PROGRESS: ContextVar[Callable[[str, int, int], None] | None] = ContextVar(
    "import_progress", default=None)


@contextmanager
def progress(callback: Callable[[str, int, int], None]) -> Iterator[None]:
    """Report `callback(stage, done, total)` while checking, planning and writing an import in
    this thread (the CLI draws a progress bar with it)."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


class _Tracker:
    def __init__(self, stage: str, total: int) -> None:
        self.callback, self.stage, self.total, self.done = _PROGRESS.get(), stage, total, 0
        self.every = max(1, total // 100)
        if self.callback:
            self.callback(stage, 0, total)

    def advance(self) -> None:
        self.done += 1
        if self.callback and (self.done % self.every == 0 or self.done == self.total):
            self.callback(self.stage, self.done, self.total)


# -- the arguments -----------------------------------------------------------------------------


def check_entry(raw: Any, path: str) -> dict:
    """One import entry: its shape, the spec's validators, then the field rules of a new model
    (fields.settle). The converters run the same check, so a converted entry passes it."""
    entry = ENTRY.check(raw, path)
    given = entry["fields"]
    for name in REQUIRED:
        if name not in given:
            raise FunctionError("INVALID_ARGUMENT", f"{path}.fields.{name} is required",
                                field=f"{path}.fields.{name}")
    try:
        fields.settle({**fields.DEFAULTS, **given, "isActive": False}, set(given))
    except FunctionError as error:
        where = f"{path}.fields.{error.data.get('field') or 'prices'}"
        raise FunctionError(error.code, f"{where}: {error.message}", field=where) from None
    return entry


class Entries(Validator):
    """The `models` argument: every entry checked, every error reported at once (nothing is
    planned when one is wrong); two entries for one model id are an error."""

    def check(self, value, path):
        if not isinstance(value, list):
            raise FunctionError("INVALID_ARGUMENT", f"{path} must be an array", field=path)
        if len(value) > MAX_ENTRIES:
            raise FunctionError("INVALID_ARGUMENT", f"{path} must have at most {MAX_ENTRIES} "
                                f"entries, got {len(value)}", field=path)
        checked, errors, seen = [], [], {}
        tracker = _Tracker("checking", len(value))
        for index, raw in enumerate(value):
            where = f"{path}[{index}]"
            tracker.advance()
            try:
                entry = check_entry(raw, where)
            except FunctionError as error:
                model_id = raw.get("modelId") if isinstance(raw, dict) else None
                errors.append({"entry": index, "modelId": model_id if isinstance(model_id, str)
                               else None, "code": error.code,
                               "field": error.data.get("field"), "message": error.message})
                continue
            if entry["modelId"] in seen:
                errors.append({"entry": index, "modelId": entry["modelId"],
                               "code": "INVALID_ARGUMENT", "field": f"{where}.modelId",
                               "message": f"{entry['modelId']} is also entry "
                                          f"{seen[entry['modelId']]}"})
                continue
            seen[entry["modelId"]] = index
            checked.append(entry)
        if errors:
            codes = {e["code"] for e in errors}
            summary = "; ".join(e["message"] for e in errors[:3])
            raise FunctionError(codes.pop() if len(codes) == 1 else "INVALID_ARGUMENT",
                                f"{len(errors)} import entr{'y' if len(errors) == 1 else 'ies'} "
                                f"cannot be imported; nothing was planned: {summary}",
                                field=path, errors=errors)
        return checked

    def schema(self):
        return {"type": "array", "maxItems": MAX_ENTRIES, "items": ENTRY.schema(),
                "description": "import entries {keys, modelId, fields, notes?} "
                               "(functions/imports.py)"}


def import_args(reason: Validator) -> dict:
    return {
        "source": v.literal(*SOURCES),
        "models": Entries(),
        "notRepresentable": v.optional(NOT_REPRESENTABLE),
        "options": v.optional(OPTIONS),
        "reason": reason,
    }


# -- prices: scheduling and the typical request ------------------------------------------------


def _start(entry: dict) -> int:
    return -1 if entry["effectiveFrom"] is None else entry["effectiveFrom"]


def from_moment(schedule: list[dict] | None, at: int) -> list[dict]:
    """What a schedule says from `at` on: its entries in force at `at`, starting at `at`, and
    its later entries."""
    starts = [_start(e) for e in schedule or () if _start(e) <= at]
    in_force = [{**e, "effectiveFrom": at} for e in schedule or ()
                if starts and _start(e) == max(starts)]
    return in_force + [e for e in schedule or () if _start(e) > at]


def scheduled(old: list[dict] | None, new: list[dict], at: int) -> list[dict] | None:
    """`new` taking effect at `at`: the old entries that start before `at` stay (in force until
    then), and what `new` says from `at` on follows. None when the old price already says the
    same from `at` on (nothing to schedule)."""
    after = prices.validate(from_moment(new, at))
    if old is not None and prices.validate(from_moment(old, at)) == after:
        return None
    return prices.validate([e for e in old or () if _start(e) < at] + after)


def schedule_of(config: dict) -> list[dict] | None:
    """A model's price schedule from its configuration (video: costPerSecond read as one)."""
    if config.get("prices") is not None:
        return config["prices"]
    if config.get("costPerSecond") is not None:
        return prices.video_schedule(Decimal(str(config["costPerSecond"])),
                                     config.get("qualityMultipliers") or {})
    return None


# unit priced -> (usage key, count, words): a typical request of a kind, for a change in %
TYPICAL = (
    ("input_tokens", "inputTokens", 1_000_000, "1M input"),
    ("output_tokens", "outputTokens", 1_000_000, "1M output"),
    ("image", "images", 1, "1 image"),
    ("second", "seconds", 1, "1 second"),
    ("characters", "characters", 1000, "1K characters"),
    ("audio_hour", "audioSeconds", 3600, "1 hour of audio"),
)


def typical_request(schedule: list[dict], at: int,
                    kind: str | None = None) -> tuple[dict, dict, str] | None:
    """(usage, options, words) of a typical request on this price at `at`: 1M input + 1M
    output tokens for a token price (1M input for an embedding, whose maps may price output
    at 0), 1 image, 1 second of video, 1K characters, 1 hour of audio (whichever the price
    has); options of the first priced component when its unit is only priced under options.
    None when the price has none of these units."""
    try:
        entry = prices.entry_at(schedule, at)
    except prices.PricingError:
        return None
    components = entry["components"]
    chosen = prices.select_components(components, {})
    options: dict = {}
    if not any(unit in chosen for unit, *_ in TYPICAL):
        first = next((c for c in components if c["unit"] in {u for u, *_ in TYPICAL}), None)
        if first is None:
            return None
        options = dict(first.get("when", {}))
        chosen = prices.select_components(components, options)
    usage, words = {}, []
    for unit, key, count, said in TYPICAL:
        if unit in chosen and not (kind == "embedding" and unit == "output_tokens"):
            usage[key] = count
            words.append(said)
    text = " + ".join(words)
    if "1M input" in words or "1M output" in words:
        text += " tokens"
    if options:
        text += " (" + ", ".join(f"{k}={val}" for k, val in options.items()) + ")"
    return usage, options, text


def _usd(schedule: list[dict] | None, usage: dict, options: dict, at: int) -> Decimal | None:
    if schedule is None:
        return None
    try:
        return Decimal(prices.quote(schedule, usage, options, at, Decimal(1))["usdExact"])
    except prices.PricingError:
        return None


def _component_key(component: dict) -> tuple:
    return component["unit"], tuple(sorted(component.get("when", {}).items()))


def _entry_or_none(schedule: list[dict] | None, at: int) -> dict | None:
    if schedule is None:
        return None
    try:
        return prices.entry_at(schedule, at)
    except prices.PricingError:
        return None


def component_changes(old: list[dict] | None, new: list[dict], at: int) -> list[dict]:
    """The components of the price in force at `at` that differ, old -> new (a price string,
    and tiers when they have them; None: not priced)."""
    def by_key(entry: dict | None) -> dict:
        return {} if entry is None else {_component_key(c): c for c in entry["components"]}

    before, after = by_key(_entry_or_none(old, at)), by_key(_entry_or_none(new, at))
    out = []
    for key in list(before) + [k for k in after if k not in before]:
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        change: dict[str, Any] = {"unit": key[0], "old": a and a["price"],
                                  "new": b and b["price"]}
        if key[1]:
            change["when"] = dict(key[1])
        if (a and a.get("tiers")) or (b and b.get("tiers")):
            change["oldTiers"], change["newTiers"] = (a or {}).get("tiers"), (b or {}).get("tiers")
        out.append(change)
    return out


def price_change(old: list[dict] | None, new: list[dict], at: int,
                 kind: str | None = None) -> dict:
    """How a price changes at `at`: by component, the scheduled prices it cancels (their
    effectiveFrom), and for a typical request (exact USD, and the change in % of the old, to
    one decimal; null when either side cannot price it)."""
    out: dict[str, Any] = {"components": component_changes(old, new, at),
                           # prices the old schedule had coming after `at` that the new one
                           # drops: an import replaces the schedule from `at` on
                           "cancelled": [e["effectiveFrom"] for e in old or ()
                                         if _start(e) > at and e not in new]}
    typical = typical_request(new, at, kind)
    if typical is None:
        out.update(usage=None, oldUsd=None, newUsd=None, changePercent=None)
        return out
    usage, options, words = typical
    before, after = _usd(old, usage, options, at), _usd(new, usage, options, at)
    out["usage"] = words
    out["oldUsd"] = None if before is None else prices.decimal_string(before)
    out["newUsd"] = None if after is None else prices.decimal_string(after)
    percent = None
    if before and after is not None:
        # at the engine's precision: a change from 10^-20 to 10^5 is 10^27 % and more
        change = prices.EXACT.divide(prices.EXACT.multiply(
            prices.EXACT.subtract(after, before), 100), before)
        percent = prices.decimal_string(change.quantize(Decimal("0.1"), context=prices.EXACT))
    out["changePercent"] = percent
    return out


# -- the plan ----------------------------------------------------------------------------------


def local_edits(ctx: Context, source: str, pks: list[int]) -> dict[int, set[str]]:
    """Model pk -> its fields whose last change, by history, was not made by an import from
    `source` (an admin, the console, a catalog file, another source's import): those are the
    catalog's own, kept by the next import from `source`. A field an import left alone because
    it was edited stays the editor's until an import changes it (with overwriteLocalEdits)."""
    tag = history_source(source)
    last: dict[int, dict[str, str]] = defaultdict(dict)
    for start in range(0, len(pks), 500):
        query = (select(ModelHistory.model_pk, ModelHistory.source, ModelHistory.changes)
                 .where(ModelHistory.model_pk.in_(pks[start:start + 500]))
                 .order_by(ModelHistory.model_pk, ModelHistory.revision))
        for pk, by, changes in ctx.db.execute(query):
            for change in changes or ():
                if isinstance(change, dict) and "field" in change:
                    last[pk][change["field"]] = by
    return {pk: {name for name, by in fields_.items() if by != tag}
            for pk, fields_ in last.items()}


class Plan:
    """The plan for `entries` against `rows` (every model, plain rows) as `identity` would
    apply it at `now`. FORBIDDEN (and an `at` in the past) refuse the whole plan; anything a
    single model cannot take is reported against it and left out."""

    def __init__(self, rows, local: dict[int, set[str]], entries: list[dict],
                 not_representable: list[dict], source: str, options: dict,
                 identity: Identity, now: int) -> None:
        self.source, self.identity, self.now = source, identity, now
        self.at = options.get("at")
        self.activate = bool(options.get("activate"))
        self.overwrite = bool(options.get("overwriteLocalEdits"))
        if self.at is not None and self.at <= now:
            raise FunctionError(
                "INVALID_ARGUMENT", f"options.at ({prices.utc_text(self.at)}, {self.at}) must "
                f"be in the future (now: {prices.utc_text(now)}); past prices are history",
                field="options.at")
        self.moment = self.now if self.at is None else self.at
        self.local = local
        self.creates: list[tuple[str, dict]] = []
        self.updates: list[tuple[int, str, dict]] = []
        self.created: list[dict] = []
        self.price_changes: list[dict] = []
        self.field_changes: list[dict] = []
        self.not_representable: list[dict] = [dict(item) for item in not_representable]
        self.kept: list[dict] = []
        self.overwritten: list[dict] = []
        self.locked: list[dict] = []
        self.notes: list[dict] = []
        self.unchanged = 0
        current = {row.model_id: row for row in rows}
        self.any_active = any(states.state_of(row) == states.ACTIVE for row in rows)
        tracker = _Tracker("planning", len(entries))
        for entry in entries:
            tracker.advance()
            if entry.get("notes"):
                self.notes.append({"modelId": entry["modelId"], "notes": entry["notes"]})
            row = current.get(entry["modelId"])
            if row is None:
                self._create(entry)
            else:
                self._update(row, entry)

    # -- the steps -----------------------------------------------------------------------------

    def _refuse(self, entry: dict, reason: str) -> None:
        self.not_representable.append({"keys": entry["keys"], "modelId": entry["modelId"],
                                       "reasons": [reason], "priced": True})

    def _create(self, entry: dict) -> None:
        model_id = entry["modelId"]
        states.permit(self.identity, states.CREATE, model_id)
        given = dict(entry["fields"])
        given["isActive"] = self.activate
        try:
            if self.at is not None:
                given["prices"] = scheduled(None, given["prices"], self.at)
            config = stored(fields.settle({**fields.DEFAULTS, **given}, set(given)))
        except (FunctionError, prices.PricingError) as error:
            self._refuse(entry, f"cannot be created: {error.message}")
            return
        self.creates.append((model_id, config))
        self.created.append({"modelId": model_id, "keys": entry["keys"], "name": config["name"],
                             "provider": config["provider"],
                             "contentType": config["contentType"]})

    def _update(self, row, entry: dict) -> None:
        model_id = entry["modelId"]
        before = config_of(row)
        wanted = dict(entry["fields"])
        old_schedule = schedule_of(before)
        if self.at is not None:
            try:
                wanted["prices"] = scheduled(old_schedule, wanted["prices"], self.at)
            except prices.PricingError as error:  # e.g. more entries than a schedule holds
                self._refuse(entry, f"cannot be scheduled on {model_id}: {error.message}")
                return
            if wanted["prices"] is None:  # the price from `at` on is already the imported one
                wanted.pop("prices")
        if "prices" in wanted and before["costPerSecond"] is not None:
            wanted.update(costPerSecond=None, qualityMultipliers={})  # moves to its schedule
        differs = {k: val for k, val in wanted.items() if before.get(k) != val}
        if not differs:
            self.unchanged += 1
            return
        if self.at is not None and "contentType" in differs:
            # The kind would change at once and its price only at `at`: until then the model
            # could be priced neither as it was nor as it will be.
            self._refuse(entry, f"cannot be scheduled on {model_id}: it changes its "
                                f"contentType ({before['contentType']} to "
                                f"{differs['contentType']}), which cannot wait for `at`; "
                                "import it without `at`")
            return
        if row.is_locked:
            self.locked.append({"modelId": model_id, "keys": entry["keys"],
                                "fields": sorted(differs)})
            return
        local = self.local.get(row.id, set())
        if local & set(PRICE_FIELDS):
            local = local | set(PRICE_FIELDS)
        edited = sorted(k for k in differs if k in local)
        if edited and not self.overwrite:
            self.kept.append({"modelId": model_id, "keys": entry["keys"], "fields": edited})
            patch = {k: val for k, val in differs.items() if k not in local}
        else:
            if edited:
                self.overwritten.append({"modelId": model_id, "keys": entry["keys"],
                                         "fields": edited})
            patch = differs
        if not patch:
            return
        states.check(self.identity, row, states.EDIT)
        editable = {k: before[k] for k in fields.EDITABLE}
        try:
            after = stored(fields.settle({**editable, **patch}, set(patch)))
        except FunctionError as error:
            self._refuse(entry, f"cannot be applied to {model_id} as it is in the catalog: "
                                f"{error.message}")
            return
        self.updates.append((row.id, model_id, patch))
        changes = [{"field": k, "old": before[k], "new": after[k]} for k in fields.EDITABLE
                   if k != "isActive" and before[k] != after[k]]
        price = [c for c in changes if c["field"] in PRICE_FIELDS]
        other = [c for c in changes if c["field"] not in PRICE_FIELDS]
        if price:
            self.price_changes.append({
                "modelId": model_id, "keys": entry["keys"], "effectiveFrom": self.at,
                **price_change(old_schedule, schedule_of(after), self.moment,
                               after["contentType"]),
                "changes": price})
        if other:
            self.field_changes.append({"modelId": model_id, "keys": entry["keys"],
                                       "changes": other})

    # -- the answer ----------------------------------------------------------------------------

    def summary(self) -> dict:
        """The plan, grouped: created, price changes, field changes, not representable (and by
        reason), local edits kept (or overwritten), locked, notes; counts."""
        by_reason: Counter = Counter(r for item in self.not_representable
                                     for r in item["reasons"])
        by_note: Counter = Counter(n for item in self.notes for n in item["notes"])
        first_on = None
        if self.activate and not self.any_active and self.creates:
            first_on = self.creates[0][0]  # nothing was on: the invariants make it the default
        return {
            "source": self.source,
            "historySource": history_source(self.source),
            "at": self.at,
            "activate": self.activate,
            "created": self.created,
            "priceChanges": self.price_changes,
            "fieldChanges": self.field_changes,
            "notRepresentable": self.not_representable,
            "notRepresentableByReason": dict(by_reason.most_common()),
            "localEditsKept": self.kept,
            "localEditsOverwritten": self.overwritten,
            "locked": self.locked,
            "notes": self.notes,
            "notesByReason": dict(by_note.most_common()),
            "newDefault": first_on,
            "counts": {
                "created": len(self.created), "priceChanges": len(self.price_changes),
                "fieldChanges": len(self.field_changes),
                "changed": len(self.updates),
                "notRepresentable": len(self.not_representable),
                "notRepresentablePriced": sum(1 for i in self.not_representable
                                              if i["priced"]),
                "localEditsKept": len(self.kept), "locked": len(self.locked),
                "unchanged": self.unchanged,
            },
        }


# -- the write -----------------------------------------------------------------------------


def write(ctx: Context, plan: Plan, reason: str) -> None:
    """Write what the plan says through the one write path: each existing model through
    `models.apply_patch` (the edit transition, the field rules, history), new models through
    the create transition and `models.add_models` (in few statements); the invariants once,
    at the end. History names the source: `import:<source>`."""
    ctx.source = history_source(plan.source)
    tracker = _Tracker("writing", len(plan.updates) + len(plan.creates))
    with models.invariants(ctx):
        pks = [pk for pk, _, _ in plan.updates]
        rows = {row.id: row for start in range(0, len(pks), 500) for row in
                ctx.db.scalars(select(Model).where(Model.id.in_(pks[start:start + 500])))}
        for pk, _, patch in plan.updates:
            models.apply_patch(ctx, rows[pk], patch, "import", reason)
            tracker.advance()
        added = []
        for model_id, config in plan.creates:
            states.permit(ctx.identity, states.CREATE, model_id)
            added.append(models.new_model(ctx, model_id, config))
            tracker.advance()
        if added:
            models.add_models(ctx, added, "import", reason)
