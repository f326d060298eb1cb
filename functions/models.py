"""models:* - the catalog of generation models: what exists, what is on, which is the default."""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import func, select

from db.schema import Model, ModelStats
from engine.cache import Entry, Snapshot, catalog_cache
from engine.errors import FunctionError
from engine.runtime import Context, Identity, mutation, query
from engine.values import Array, v
from functions import fields, ids, spec, states, usage  # usage: the statistics section below
from functions.capabilities import resolve_request
from functions.changes import assign, record
from functions.documents import config_of, to_document

PAGINATION = v.object({
    "numItems": v.int(1, 1000),
    "cursor": v.nullable(v.string(0, 200)),
})


# -- reading ---------------------------------------------------------------------------------


def find(ctx: Context, model_id: str) -> Model | None:
    return ctx.db.scalar(select(Model).where(Model.model_id == ids.canonical(model_id)))


def not_found(model_id: str, field: str = "modelId") -> FunctionError:
    return FunctionError("NOT_FOUND", f"No model with modelId '{model_id}'", field=field)


def get(ctx: Context, model_id: str) -> Model:
    model = find(ctx, model_id)
    if model is None:
        raise not_found(ids.canonical(model_id))
    return model


def document(ctx: Context, model: Model) -> dict:
    return to_document(model, ctx.db.get(ModelStats, model.id))


def catalog(ctx: Context) -> Snapshot:
    """The configuration, from memory while unchanged."""
    return catalog_cache().snapshot(lambda: ctx.db)


def cached(ctx: Context, model_id: str) -> Entry:
    """A model from the read cache; NOT_FOUND when there is none."""
    entry = catalog(ctx).find(model_id)
    if entry is None:
        raise not_found(ids.canonical(model_id))
    return entry


def documents(ctx: Context, entries: list[Entry]) -> list[dict]:
    return catalog_cache().documents(lambda: ctx.db, entries)


@query()
def getActiveModels(ctx: Context) -> list[dict]:
    """Active models, in the order they were created."""
    return documents(ctx, catalog(ctx).active)


@query({"modelId": ids.MODEL_REF})
def getModelById(ctx: Context, modelId: str) -> dict | None:
    """One model by its modelId, or null."""
    entry = catalog(ctx).find(modelId)
    return None if entry is None else documents(ctx, [entry])[0]


@query()
def getDefaultModel(ctx: Context) -> dict | None:
    """The default model, or null when no model is active."""
    entry = catalog(ctx).default
    return None if entry is None else documents(ctx, [entry])[0]


@query()
def getPremiumModels(ctx: Context) -> list[dict]:
    """Active premium models."""
    return documents(ctx, [e for e in catalog(ctx).active if e.model.is_premium])


@query({"provider": v.string(1, 100)})
def getModelsByProvider(ctx: Context, provider: str) -> list[dict]:
    """Active models of one provider."""
    wanted = _key("provider", provider)  # "OpenAI" and "openai" are one provider
    return documents(ctx, [e for e in catalog(ctx).active
                           if _key("provider", e.model.provider) == wanted])


@query()
def getModelStats(ctx: Context) -> list[dict]:
    """Usage statistics of every model."""
    return [
        {"modelId": doc["modelId"], "name": doc["name"], "totalGenerations":
         doc["totalGenerations"], "averageGenerationTime": doc["averageGenerationTime"],
         "successRate": doc["successRate"]}
        for doc in documents(ctx, catalog(ctx).entries)
    ]


@query({"modelId": ids.MODEL_REF, "duration": v.optional(fields.DURATION),
        "quality": v.string(1, 100)})
def validateModelCapabilities(ctx: Context, modelId: str, quality: str,
                              duration: int | None = None) -> dict:
    """Whether a generation request fits the model: {valid} or {valid: false, reason, code}."""
    entry = catalog(ctx).find(modelId)
    if entry is None:
        return {"valid": False, "code": "NOT_FOUND", "reason": f"No model with modelId '{modelId}'"}
    try:
        resolve_request(entry.model, duration, quality)
    except FunctionError as error:
        answer = {"valid": False, "code": error.code, "reason": error.message}
        if "supported" in error.data:  # what it does take, as the error data lists it
            answer["supported"] = error.data["supported"]
        return answer
    return {"valid": True}


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        position = int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = -1
    if not 0 <= position < 2**31:
        raise FunctionError(
            "INVALID_ARGUMENT", "paginationOpts.cursor is not a cursor this service issued",
            field="paginationOpts.cursor",
        )
    return position


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode()


# The model spec's filterable fields: equal to the value given, or (a list field such as
# `capabilities`) holding it, under the singular name (`capability`).
LIST_FILTERS = {
    (f.name[:-3] + "y" if f.name.endswith("ies") else f.name): f for f in spec.FIELDS
    if f.filterable
}


SEARCHED = ("modelId", "name", "provider", "description")


def _index(name: str) -> Callable[[Snapshot], dict]:
    """Value -> the entries (in creation order) whose filterable field `name` equals it, or,
    for a list field (capabilities), holds it."""
    field = LIST_FILTERS[name].name

    def build(snapshot: Snapshot) -> dict:
        index: dict = {}
        for entry in snapshot.entries:
            held = entry.config.get(field)
            for value in (held if isinstance(held, list) else [held]):
                index.setdefault(_key(name, value), []).append(entry)
        return {value: (entries, [e.pk for e in entries]) for value, entries in index.items()}

    return build


def _key(name: str, value):
    """A filter value as the index holds it (case-folded for a caseless field of the spec)."""
    if LIST_FILTERS[name].caseless and isinstance(value, str):
        return value.casefold()
    return json.dumps(value) if isinstance(value, dict | list) else value


def _haystacks(snapshot: Snapshot) -> list[str]:
    """Per entry, in creation order: its searched fields, case-folded, in one string."""
    return ["\x00".join((e.config.get(name) or "").casefold() for name in SEARCHED)
            for e in snapshot.entries]


@query({
    "paginationOpts": PAGINATION,
    **{name: v.optional(f.validator.item if isinstance(f.validator, Array) else f.validator)
       for name, f in LIST_FILTERS.items()},
    "search": v.optional(v.string(1, 100)),
})
def listModels(ctx: Context, paginationOpts: dict, search: str | None = None,
               **filters) -> dict:
    """All models, a page at a time, in creation order: stable under inserts. Filters by any
    filterable field of the spec; `search` matches id, name, provider or description, ignoring
    case. Filters are indexes of the in-memory catalog (value -> models, built once per catalog
    version); a search is a scan of one prepared string per model (no database work while the
    catalog is unchanged)."""
    after = decode_cursor(paginationOpts.get("cursor"))
    limit = paginationOpts["numItems"]
    snapshot = catalog(ctx)
    candidates, pks = snapshot.entries, snapshot.pks
    for name, value in filters.items():  # the smallest matching set, checked against the rest
        found = snapshot.derived(("index", name), _index(name)).get(_key(name, value), ([], []))
        if len(found[0]) < len(candidates):
            candidates, pks = found
    needle = None if search is None else search.casefold()
    texts = None if needle is None else snapshot.derived("search", _haystacks)
    positions = None if texts is None else snapshot.derived(
        "positions", lambda s: {e.pk: i for i, e in enumerate(s.entries)})
    page: list[Entry] = []
    is_done = True
    for entry in candidates[bisect_right(pks, after):]:
        if not matches(entry, filters):
            continue
        if needle is not None and needle not in texts[positions[entry.pk]]:
            continue
        if len(page) == limit:
            is_done = False
            break
        page.append(entry)
    last = page[-1].pk if page else after
    return {"page": documents(ctx, page), "isDone": is_done,
            "continueCursor": encode_cursor(last)}


def matches(entry: Entry, filters: dict) -> bool:
    """Whether a model passes listModels' filters (LIST_FILTERS names and values)."""
    for name, value in filters.items():
        held = entry.config.get(LIST_FILTERS[name].name)
        if isinstance(held, list):
            if value not in held:
                return False
        elif held != value and _key(name, held) != _key(name, value):
            return False
    return True


# -- invariants ------------------------------------------------------------------------------

ACTIVE = (Model.is_active.is_(True), Model.is_deprecated.is_(False))


def is_on(model: Model) -> bool:
    return states.state_of(model) == states.ACTIVE


def give_up_default(old: Model) -> None:
    """Refused (LOCKED) when taking the flag from `old` would change a locked model: taking
    the default from a live model changes it; a stale flag (on a model that is off) is cleared."""
    if is_on(old):
        states.writable(old)


def check_default_switch(identity: Identity, target: Model, old: Model | None) -> None:
    """setDefaultModel's refusals, before anything moves (the console's confirmation asks the
    same): the states table's for `target`, and the lock of the default that gives it up."""
    states.check(identity, target, states.SET_DEFAULT)
    if old is not None and old is not target:
        give_up_default(old)


def current_default(ctx: Context) -> Model | None:
    return ctx.db.scalar(select(Model).where(Model.is_default.is_(True)))


def active_default(ctx: Context) -> Model | None:
    return ctx.db.scalar(select(Model).where(Model.is_default.is_(True), *ACTIVE))


def switch_default(ctx: Context, target: Model, reason: str | None = None) -> None:
    """Make `target` the default, atomically taking the flag from the old default."""
    old = current_default(ctx)
    if old is target:
        return
    if old is not None:
        give_up_default(old)
        before = config_of(old)
        old.is_default = False
        ctx.db.flush()  # the partial unique index allows one default at a time
        record(ctx, old, before, "unset-default", reason)
    before = config_of(target)
    target.is_default = True
    ctx.db.flush()
    record(ctx, target, before, "set-default", reason)


def settle(ctx: Context, began: Model | None) -> None:
    """The end of a change: whenever a model is active, exactly one active model is the default.

    `began` is the active default when the change began. A change may not leave active models
    without a default once it took it away (DEFAULT_REQUIRED); when nothing was active before,
    the first active model becomes the default.
    """
    default = current_default(ctx)
    if default is not None and is_on(default):
        return
    first = ctx.db.scalar(select(Model).where(*ACTIVE).order_by(Model.id).limit(1))
    if first is None:
        return
    if began is not None:
        doing = "deleted" if began.is_deprecated else "deactivated"
        raise FunctionError(
            "DEFAULT_REQUIRED",
            f"{began.model_id} is the default model and cannot be {doing} while other models "
            "are active; set another model as the default first (models:setDefaultModel)",
            field="modelId",
        )
    switch_default(ctx, first)


@contextmanager
def invariants(ctx: Context) -> Iterator[None]:
    """Make a change whose end, not each of its steps, must keep the catalog's invariants."""
    began = active_default(ctx)
    yield
    settle(ctx, began)


# -- changing the catalog --------------------------------------------------------------------


def new_model(ctx: Context, modelId: str, config: dict) -> Model:
    """A row for a new model (not yet added): its canonical id and its settled fields."""
    model = Model(
        model_id=ids.canonical(modelId), is_default=False, is_deprecated=False,
        is_locked=False, created_at=ctx.now, updated_at=ctx.now, revision=1,
    )
    assign(model, config)  # a new model starts active or inactive
    return model


def add_models(ctx: Context, rows: list[Model], action: str, reason: str | None) -> None:
    """Add new models, their statistics and their first history entries (in few statements)."""
    ctx.db.add_all(rows)
    ctx.db.flush()
    ctx.db.add_all(ModelStats(model_pk=model.id, total_generations=0, successful_generations=0,
                              total_time_micros=0) for model in rows)
    for model in rows:
        record(ctx, model, None, action, reason)


def insert_model(
    ctx: Context, modelId: str, given: dict, reason: str | None, isDefault: bool = False,
    action: str = "create", id_field: str = "modelId",
) -> Model:
    """Add a model through every rule; it becomes the default if asked (or, through
    `invariants`, if it is the first active one)."""
    states.permit(ctx.identity, states.CREATE, modelId)
    if find(ctx, modelId) is not None:
        raise FunctionError(
            "DUPLICATE", f"A model with modelId '{ids.canonical(modelId)}' already exists",
            field=id_field,
        )
    fields.check_kind_given(given)
    config = fields.settle({**fields.DEFAULTS, **given}, set(given))
    if isDefault and not config["isActive"]:
        raise FunctionError(
            "INVALID_ARGUMENT", "isDefault: the default model must be active", field="isDefault"
        )
    model = new_model(ctx, modelId, config)
    add_models(ctx, [model], action, reason)
    if isDefault:
        make_default(ctx, model, reason)
    return model


@mutation(fields.CREATE_ARGS, scope=states.CREATE.scope)
def createModel(ctx: Context, modelId: str, reason: str | None = None, isDefault=False,
                isDeprecated=False, **given):
    """Add a model; it becomes the default if asked, or if it is the first active one.
    `isDeprecated: true` adds it deleted (inactive, restorable), as a catalog file can."""
    contradiction = states.contradiction({**given, "isDeprecated": isDeprecated})
    if contradiction is not None:
        field, why = contradiction
        raise FunctionError("INVALID_ARGUMENT", f"{field}: {why}", field=field)
    if isDeprecated and isDefault:  # (a file's entry may: the default then moves off it)
        raise FunctionError("INVALID_ARGUMENT", "isDefault: a deleted model cannot be the "
                            "default", field="isDefault")
    with invariants(ctx):
        if isDeprecated:
            model = insert_model(ctx, modelId, {**given, "isActive": False}, reason)
            transition(ctx, model, states.DELETE, reason)
        else:
            model = insert_model(ctx, modelId, given, reason, isDefault)
    return document(ctx, model)


def apply_patch(
    ctx: Context, model: Model, patch: dict, action: str, reason: str | None,
    expectedRevision: int | None = None,
) -> bool:
    """Change a model's fields through every rule (a change of `isActive` is the enable or
    disable transition); False when nothing changed."""
    states.check(ctx.identity, model, states.EDIT)
    if expectedRevision is not None and expectedRevision != model.revision:
        raise FunctionError(
            "STALE_REVISION",
            f"{model.model_id} is at revision {model.revision}, not {expectedRevision}: "
            "someone changed it since you read it; reload and try again",
            field="expectedRevision", currentRevision=model.revision,
        )
    before = config_of(model)
    editable = {k: before[k] for k in fields.EDITABLE}
    config = fields.settle({**editable, **patch}, set(patch))
    state = states.state_of(model)
    if config.pop("isActive") != model.is_active:
        turn = states.ENABLE if not model.is_active else states.DISABLE
        state = states.check(ctx.identity, model, turn)
    assign(model, config)
    states.move(model, state, ctx.now)
    return record(ctx, model, before, action, reason)


@mutation(
    {
        "modelId": ids.MODEL_REF,
        "patch": fields.PATCH,
        "expectedRevision": v.optional(fields.REVISION),
        "reason": v.optional(v.string(0, 500)),
    },
    scope=states.EDIT.scope,
)
def updateModel(ctx: Context, modelId: str, patch: dict, expectedRevision=None, reason=None):
    """Change fields of an unlocked model; refused if `expectedRevision` is stale."""
    model = get(ctx, modelId)
    with invariants(ctx):
        apply_patch(ctx, model, patch, "update", reason, expectedRevision)
    return document(ctx, model)


def transition(ctx: Context, model: Model, turn: states.Transition, reason: str | None,
               action: str | None = None) -> bool:
    """Move a model to the state `turn` leads to; False when it is already there."""
    state = states.check(ctx.identity, model, turn)
    if state == states.state_of(model):
        return False
    before = config_of(model)
    states.move(model, state, ctx.now)
    return record(ctx, model, before, action or turn.name, reason)


def make_default(ctx: Context, model: Model, reason: str | None) -> None:
    states.check(ctx.identity, model, states.SET_DEFAULT)
    switch_default(ctx, model, reason)


def set_lock(ctx: Context, model: Model, locked: bool, reason: str | None,
             action: str | None = None) -> None:
    turn = states.LOCK if locked else states.UNLOCK
    states.check(ctx.identity, model, turn)
    before = config_of(model)
    model.is_locked = locked
    record(ctx, model, before, action or turn.name, reason)


MODEL_REF = {"modelId": ids.MODEL_REF, "reason": v.optional(v.string(0, 500))}


@mutation(MODEL_REF, scope=states.DELETE.scope)
def deleteModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Soft delete: inactive and deprecated, kept with its history; restore brings it back."""
    model = get(ctx, modelId)
    with invariants(ctx):
        transition(ctx, model, states.DELETE, reason)
    return document(ctx, model)


@mutation(MODEL_REF, scope=states.RESTORE.scope)
def restoreModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Undo a soft delete: the model is active again."""
    model = get(ctx, modelId)
    with invariants(ctx):
        transition(ctx, model, states.RESTORE, reason)
    return document(ctx, model)


@mutation(MODEL_REF, scope=states.SET_DEFAULT.scope)
def setDefaultModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Make a model the default, taking the flag from the old default in the same transaction."""
    model = get(ctx, modelId)
    with invariants(ctx):
        make_default(ctx, model, reason)
    return document(ctx, model)


@mutation(MODEL_REF, scope=states.LOCK.scope, admin_only=states.LOCK.admin_only)
def lockModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Freeze a model: no edit, toggle or delete until it is unlocked."""
    model = get(ctx, modelId)
    set_lock(ctx, model, True, reason)
    return document(ctx, model)


@mutation(MODEL_REF, scope=states.UNLOCK.scope, admin_only=states.UNLOCK.admin_only)
def unlockModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Allow changes to a locked model again."""
    model = get(ctx, modelId)
    set_lock(ctx, model, False, reason)
    return document(ctx, model)


@mutation(
    {"modelId": ids.MODEL_REF, "newModelId": ids.MODEL_ID,
     "name": v.optional(v.string(1, 200)), "reason": v.optional(v.string(0, 500))},
    scope=states.CREATE.scope,
)
def duplicateModel(ctx: Context, modelId: str, newModelId: str, name=None, reason=None) -> dict:
    """Copy a model's configuration under a new modelId; the copy starts inactive."""
    source = config_of(get(ctx, modelId))
    config = {k: source[k] for k in fields.EDITABLE}
    config.update(isActive=False, name=name or f"{source['name']} (copy)")
    with invariants(ctx):
        model = insert_model(ctx, newModelId, config, reason or f"duplicate of {source['modelId']}",
                             id_field="newModelId")
    return document(ctx, model)


@mutation(
    {"isActive": v.boolean(), "modelIds": v.optional(v.array(ids.MODEL_REF, 1, 1000)),
     "reason": v.optional(v.string(0, 500))},
    scope=states.ENABLE.scope,
)
def setModelsActive(ctx: Context, isActive: bool, modelIds=None, reason=None) -> dict:
    """Enable or disable many models at once; locked and deleted ones are skipped, and so is
    the default when disabling it would leave other models on without one."""
    if modelIds is None:
        targets = ctx.db.scalars(select(Model).order_by(Model.id)).all()
    else:
        found = {}  # the same model named twice is one
        for index, model_id in enumerate(modelIds):
            model = find(ctx, model_id)
            if model is None:  # named by its place in the list, as recordGenerations' events
                raise not_found(ids.canonical(model_id), f"modelIds[{index}]")
            found.setdefault(model.id, model)
        targets = list(found.values())
    if not isActive:  # the default last: it may go off only if every other model does
        targets = sorted(targets, key=lambda model: model.is_default)
    turn = states.ENABLE if isActive else states.DISABLE
    changed, unchanged, skipped = [], [], []
    with invariants(ctx):
        for model in targets:
            try:
                state = states.check(ctx.identity, model, turn)
            except FunctionError as refusal:
                skipped.append({"modelId": model.model_id, "code": refusal.code,
                                "reason": SKIPPED.get(refusal.code, refusal.message)})
                continue
            if state == states.state_of(model):
                unchanged.append(model.model_id)
            elif model.is_default and _others_active(ctx, model):
                skipped.append({"modelId": model.model_id, "code": "DEFAULT_REQUIRED",
                                "reason": "the default model; set another default first"})
            else:
                transition(ctx, model, turn, reason)
                changed.append(model.model_id)
    return {"changed": changed, "unchanged": unchanged, "skipped": skipped}


SKIPPED = {"LOCKED": "locked", "INACTIVE": "deleted; restore it first"}  # reasons, short


def _others_active(ctx: Context, model: Model) -> bool:
    return bool(ctx.db.scalar(select(func.count()).where(*ACTIVE, Model.id != model.id)))


# -- statistics ------------------------------------------------------------------------------


@mutation(
    {"modelId": ids.MODEL_REF, "generationTime": v.number(minimum=0, maximum=86400),
     "success": v.boolean(), "errorCode": v.optional(usage.ERROR_CODE),
     "credits": v.optional(usage.CREDITS), "eventId": v.optional(usage.EVENT_ID)},
    scope="stats:write", atomic=True, changes=("stats",),
)
def updateModelStats(ctx: Context, modelId: str, generationTime: float, success: bool,
                     errorCode: str | None = None, credits: int | None = None,
                     eventId: str | None = None) -> dict:
    """Record one finished generation (time in seconds; `errorCode` for a failure, `credits`
    charged): its model's totals and usage over time (functions/usage.py), atomic, never lost,
    and written with the process's concurrent recordings (engine/tally.py); with an
    `eventId`, once per caller (`duplicate` says whether it was recorded already)."""
    return usage.record_one(ctx, modelId, generationTime, success, errorCode, credits, eventId)

