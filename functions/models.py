"""models:* - the catalog of generation models: what exists, what is on, which is the default."""

from __future__ import annotations

import base64
import binascii

from sqlalchemy import func, select

from db.schema import Model, ModelStats
from engine.cache import Entry, Snapshot, catalog_cache
from engine.errors import FunctionError
from engine.runtime import Context, mutation, query
from engine.values import Array, v
from functions import fields, spec, usage  # usage: the statistics section below
from functions.capabilities import resolve_request
from functions.changes import assign, record
from functions.documents import config_of, to_document

PAGINATION = v.object({
    "numItems": v.int(1, 1000),
    "cursor": v.nullable(v.string(0, 200)),
})


# -- reading ---------------------------------------------------------------------------------


def find(ctx: Context, model_id: str) -> Model | None:
    return ctx.db.scalar(select(Model).where(Model.model_id == model_id))


def not_found(model_id: str) -> FunctionError:
    return FunctionError("NOT_FOUND", f"No model with modelId '{model_id}'", field="modelId")


def get(ctx: Context, model_id: str) -> Model:
    model = find(ctx, model_id)
    if model is None:
        raise not_found(model_id)
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
        raise not_found(model_id)
    return entry


def documents(ctx: Context, entries: list[Entry]) -> list[dict]:
    return catalog_cache().documents(lambda: ctx.db, entries)


@query()
def getActiveModels(ctx: Context) -> list[dict]:
    """Active models, in the order they were created."""
    return documents(ctx, catalog(ctx).active)


@query({"modelId": v.string(1, 200)})
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
    return documents(ctx, [e for e in catalog(ctx).active if e.model.provider == provider])


@query()
def getModelStats(ctx: Context) -> list[dict]:
    """Usage statistics of every model."""
    return [
        {"modelId": doc["modelId"], "name": doc["name"], "totalGenerations":
         doc["totalGenerations"], "averageGenerationTime": doc["averageGenerationTime"],
         "successRate": doc["successRate"]}
        for doc in documents(ctx, catalog(ctx).entries)
    ]


@query({"modelId": v.string(1, 200), "duration": fields.DURATION, "quality": v.string(1, 100)})
def validateModelCapabilities(ctx: Context, modelId: str, duration: int, quality: str) -> dict:
    """Whether a generation request fits the model: {valid} or {valid: false, reason, code}."""
    entry = catalog(ctx).find(modelId)
    if entry is None:
        return {"valid": False, "code": "NOT_FOUND", "reason": f"No model with modelId '{modelId}'"}
    try:
        resolve_request(entry.model, duration, quality)
    except FunctionError as error:
        return {"valid": False, "code": error.code, "reason": error.message}
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


def _matches(entry: Entry, filters: dict, search: str | None) -> bool:
    for name, value in filters.items():
        held = entry.config.get(LIST_FILTERS[name].name)
        if not (value in held if isinstance(held, list) else held == value):
            return False
    if search is None:
        return True
    config = entry.config
    return any(search in (config.get(name) or "").casefold()
               for name in ("modelId", "name", "provider", "description"))


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
    case. Both are a scan of the in-memory catalog (no database work while it is unchanged)."""
    after = decode_cursor(paginationOpts.get("cursor"))
    limit = paginationOpts["numItems"]
    needle = None if search is None else search.casefold()
    page: list[Entry] = []
    is_done = True
    for entry in catalog(ctx).after(after):
        if _matches(entry, filters, needle):
            if len(page) == limit:
                is_done = False
                break
            page.append(entry)
    last = page[-1].pk if page else after
    return {"page": documents(ctx, page), "isDone": is_done,
            "continueCursor": encode_cursor(last)}


# -- invariants ------------------------------------------------------------------------------

ACTIVE = (Model.is_active.is_(True), Model.is_deprecated.is_(False))


def writable(model: Model) -> Model:
    if model.is_locked:
        raise FunctionError(
            "LOCKED", f"{model.model_id} is locked; unlock it before changing it",
            field="modelId",
        )
    return model


def current_default(ctx: Context) -> Model | None:
    return ctx.db.scalar(select(Model).where(Model.is_default.is_(True)))


def _others_active(ctx: Context, model: Model) -> bool:
    return bool(ctx.db.scalar(select(func.count()).where(*ACTIVE, Model.id != model.id)))


def refuse_losing_default(ctx: Context, model: Model, doing: str) -> None:
    """The default may only go off when no other model is on (then nothing needs a default)."""
    if model.is_default and _others_active(ctx, model):
        raise FunctionError(
            "DEFAULT_REQUIRED",
            f"{model.model_id} is the default model and cannot be {doing}; "
            "set another model as the default first (models:setDefaultModel)",
            field="modelId",
        )


def switch_default(ctx: Context, target: Model, reason: str | None = None) -> None:
    """Make `target` the default, atomically taking it from the old default."""
    old = current_default(ctx)
    if old is target:
        return
    if old is not None:
        writable(old)
        before = config_of(old)
        old.is_default = False
        ctx.db.flush()  # the partial unique index allows one default at a time
        record(ctx, old, before, "unset-default", reason)
    before = config_of(target)
    target.is_default = True
    ctx.db.flush()
    record(ctx, target, before, "set-default", reason)


def settle_default(ctx: Context, candidate: Model | None = None) -> None:
    """Whenever a model is active, exactly one active model is the default."""
    default = current_default(ctx)
    if default is not None and default.is_active and not default.is_deprecated:
        return
    active = ctx.db.scalars(select(Model).where(*ACTIVE).order_by(Model.id)).all()
    if not active:
        return
    chosen = candidate if candidate in active else active[0]
    switch_default(ctx, chosen)


# -- changing the catalog --------------------------------------------------------------------


def insert_model(
    ctx: Context, modelId: str, given: dict, reason: str | None, isDefault: bool = False,
    action: str = "create", id_field: str = "modelId",
) -> Model:
    """Add a model through every rule; it becomes the default if asked or if it is the first."""
    if find(ctx, modelId) is not None:
        raise FunctionError(
            "DUPLICATE", f"A model with modelId '{modelId}' already exists", field=id_field
        )
    config = fields.settle({**fields.DEFAULTS, **given}, set(given))
    if isDefault and not config["isActive"]:
        raise FunctionError(
            "INVALID_ARGUMENT", "isDefault: the default model must be active", field="isDefault"
        )
    model = Model(
        model_id=modelId, is_default=False, is_deprecated=False, is_locked=False,
        created_at=ctx.now, updated_at=ctx.now, revision=1,
    )
    assign(model, config)
    ctx.db.add(model)
    ctx.db.flush()
    ctx.db.add(ModelStats(model_pk=model.id, total_generations=0, successful_generations=0,
                          total_time_micros=0))
    record(ctx, model, None, action, reason)
    if isDefault:
        switch_default(ctx, model, reason)
    settle_default(ctx, model)
    return model


@mutation(fields.CREATE_ARGS, scope="catalog:write")
def createModel(ctx: Context, modelId: str, reason: str | None = None, isDefault=False,
                isDeprecated=False, **given):
    """Add a model; it becomes the default if asked, or if it is the first active one.
    `isDeprecated: true` adds it deleted (inactive, restorable), as a catalog file can."""
    if isDeprecated:
        if isDefault:
            raise FunctionError("INVALID_ARGUMENT", "isDefault: a deleted model cannot be the "
                                "default", field="isDefault")
        model = insert_model(ctx, modelId, {**given, "isActive": False}, reason)
        soft_delete(ctx, model, reason)
        return document(ctx, model)
    return document(ctx, insert_model(ctx, modelId, given, reason, isDefault))


def apply_patch(
    ctx: Context, model: Model, patch: dict, action: str, reason: str | None,
    expectedRevision: int | None = None,
) -> bool:
    """Change a model's configuration through every rule; False when nothing changed."""
    writable(model)
    if expectedRevision is not None and expectedRevision != model.revision:
        raise FunctionError(
            "STALE_REVISION",
            f"{model.model_id} is at revision {model.revision}, not {expectedRevision}: "
            "someone changed it since you read it; reload and try again",
            field="expectedRevision", currentRevision=model.revision,
        )
    if patch.get("isActive") is False:
        refuse_losing_default(ctx, model, "deactivated")
    before = config_of(model)
    editable = {k: before[k] for k in fields.EDITABLE}
    config = fields.settle({**editable, **patch}, set(patch))
    assign(model, config)
    changed = record(ctx, model, before, action, reason)
    settle_default(ctx, model)
    return changed


@mutation(
    {
        "modelId": v.string(1, 200),
        "patch": fields.PATCH,
        "expectedRevision": v.optional(fields.REVISION),
        "reason": v.optional(v.string(0, 500)),
    },
    scope="catalog:write",
)
def updateModel(ctx: Context, modelId: str, patch: dict, expectedRevision=None, reason=None):
    """Change fields of an unlocked model; refused if `expectedRevision` is stale."""
    model = get(ctx, modelId)
    apply_patch(ctx, model, patch, "update", reason, expectedRevision)
    return document(ctx, model)


def soft_delete(ctx: Context, model: Model, reason: str | None, action: str = "delete") -> None:
    writable(model)
    if model.is_deprecated:
        return
    refuse_losing_default(ctx, model, "deleted")
    before = config_of(model)
    model.is_active = False
    model.is_deprecated = True
    model.deprecated_at = ctx.now
    record(ctx, model, before, action, reason)


def restore(ctx: Context, model: Model, reason: str | None, action: str = "restore") -> None:
    writable(model)
    before = config_of(model)
    model.is_deprecated = False
    model.deprecated_at = None
    model.is_active = True
    record(ctx, model, before, action, reason)
    settle_default(ctx, model)


def make_default(ctx: Context, model: Model, reason: str | None) -> None:
    writable(model)
    if not model.is_active or model.is_deprecated:
        raise FunctionError(
            "INACTIVE", f"{model.model_id} is not active; activate or restore it first",
            field="modelId",
        )
    switch_default(ctx, model, reason)


def set_lock(ctx: Context, model: Model, locked: bool, reason: str | None, action: str) -> None:
    before = config_of(model)
    model.is_locked = locked
    record(ctx, model, before, action, reason)


MODEL_REF = {"modelId": v.string(1, 200), "reason": v.optional(v.string(0, 500))}


@mutation(MODEL_REF, scope="catalog:write")
def deleteModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Soft delete: inactive and deprecated, kept with its history; restore brings it back."""
    model = get(ctx, modelId)
    soft_delete(ctx, model, reason)
    return document(ctx, model)


@mutation(MODEL_REF, scope="catalog:write")
def restoreModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Undo a soft delete: the model is active again."""
    model = get(ctx, modelId)
    restore(ctx, model, reason)
    return document(ctx, model)


@mutation(MODEL_REF, scope="catalog:write")
def setDefaultModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Make a model the default, taking the flag from the old default in the same transaction."""
    model = get(ctx, modelId)
    make_default(ctx, model, reason)
    return document(ctx, model)


@mutation(MODEL_REF, scope="catalog:write", admin_only=True)
def lockModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Freeze a model: no edit, toggle or delete until it is unlocked."""
    model = get(ctx, modelId)
    set_lock(ctx, model, True, reason, "lock")
    return document(ctx, model)


@mutation(MODEL_REF, scope="catalog:write", admin_only=True)
def unlockModel(ctx: Context, modelId: str, reason: str | None = None) -> dict:
    """Allow changes to a locked model again."""
    model = get(ctx, modelId)
    set_lock(ctx, model, False, reason, "unlock")
    return document(ctx, model)


@mutation(
    {"modelId": v.string(1, 200), "newModelId": fields.MODEL_ID,
     "name": v.optional(v.string(1, 200)), "reason": v.optional(v.string(0, 500))},
    scope="catalog:write",
)
def duplicateModel(ctx: Context, modelId: str, newModelId: str, name=None, reason=None) -> dict:
    """Copy a model's configuration under a new modelId; the copy starts inactive."""
    source = config_of(get(ctx, modelId))
    config = {k: source[k] for k in fields.EDITABLE}
    config.update(isActive=False, name=name or f"{source['name']} (copy)")
    model = insert_model(ctx, newModelId, config, reason or f"duplicate of {modelId}",
                         id_field="newModelId")
    return document(ctx, model)


@mutation(
    {"isActive": v.boolean(), "modelIds": v.optional(v.array(v.string(1, 200), 1, 1000)),
     "reason": v.optional(v.string(0, 500))},
    scope="catalog:write",
)
def setModelsActive(ctx: Context, isActive: bool, modelIds=None, reason=None) -> dict:
    """Enable or disable many models at once; locked, deleted or default ones are skipped."""
    if modelIds is None:
        targets = ctx.db.scalars(select(Model).order_by(Model.id)).all()
    else:
        targets = [get(ctx, model_id) for model_id in dict.fromkeys(modelIds)]
    changed, unchanged, skipped = [], [], []
    for model in targets:
        if model.is_locked:
            skipped.append({"modelId": model.model_id, "code": "LOCKED", "reason": "locked"})
        elif model.is_deprecated:
            skipped.append({"modelId": model.model_id, "code": "INACTIVE",
                            "reason": "deleted; restore it first"})
        elif model.is_active == isActive:
            unchanged.append(model.model_id)
        elif not isActive and model.is_default:
            skipped.append({"modelId": model.model_id, "code": "DEFAULT_REQUIRED",
                            "reason": "the default model; set another default first"})
        else:
            before = config_of(model)
            model.is_active = isActive
            record(ctx, model, before, "enable" if isActive else "disable", reason)
            changed.append(model.model_id)
    settle_default(ctx)
    return {"changed": changed, "unchanged": unchanged, "skipped": skipped}


# -- statistics ------------------------------------------------------------------------------


@mutation(
    {"modelId": v.string(1, 200), "generationTime": v.number(minimum=0, maximum=86400),
     "success": v.boolean(), "errorCode": v.optional(usage.ERROR_CODE),
     "credits": v.optional(usage.CREDITS)},
    scope="stats:write", atomic=True, changes=("stats",),
)
def updateModelStats(ctx: Context, modelId: str, generationTime: float, success: bool,
                     errorCode: str | None = None, credits: int | None = None) -> dict:
    """Record one finished generation (time in seconds; `errorCode` for a failure, `credits`
    charged): its model's totals and usage over time (functions/usage.py), atomic, never lost,
    and written with the process's concurrent recordings (engine/tally.py)."""
    return usage.record_one(ctx, modelId, generationTime, success, errorCode, credits)

