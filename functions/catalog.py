"""catalog:* - the whole catalog as one reviewable file: export, plan, apply (all or nothing)."""

from __future__ import annotations

from sqlalchemy import select

from db.schema import Model
from engine.errors import FunctionError
from engine.runtime import SIGNED_IN, Context, mutation, query
from engine.values import v
from functions import fields, models, spec
from functions.changes import diff
from functions.documents import config_of

FORMAT_VERSION = 1
STATE = spec.STATE_FLAGS
ENTRY = v.object({
    "modelId": fields.MODEL_ID,
    **{f.name: (f.validator if f.required else v.optional(f.validator))
       for f in spec.EDITABLE_FIELDS if f.exported},
    **{k: v.optional(v.boolean()) for k in STATE},
})
# The file is checked entry by entry (to report every error), so its outer shape is loose here.
FILE = v.object({
    "formatVersion": v.int(FORMAT_VERSION, FORMAT_VERSION),
    "models": v.array(v.json(max_bytes=1 << 20), max_items=10_000),
    "$schema": v.optional(v.string(0, 500)),
})


def file_schema() -> dict:
    """The published JSON Schema of a catalog file (kept in seeds/catalog.schema.json)."""
    entry = ENTRY.schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "catalog.schema.json",
        "title": "Model Catalog file",
        "description": "The whole catalog configuration, as written by `flask catalog export`.",
        "type": "object",
        "properties": {
            "$schema": {"type": "string"},
            "formatVersion": {"const": FORMAT_VERSION},
            "models": {"type": "array", "items": entry, "maxItems": 10_000},
        },
        "required": ["formatVersion", "models"],
        "additionalProperties": False,
    }


def entry_of(model: Model) -> dict:
    """A model as the file holds it: configuration and state, no statistics or timestamps."""
    config = config_of(model)
    keep = ("modelId", *fields.EDITABLE, *STATE)
    return {k: config[k] for k in sorted(keep) if config[k] is not None}


def export(ctx: Context) -> dict:
    rows = ctx.db.scalars(select(Model).order_by(Model.model_id))
    return {"formatVersion": FORMAT_VERSION, "models": [entry_of(m) for m in rows]}


@query(scope=SIGNED_IN)
def exportCatalog(ctx: Context) -> dict:
    """The whole catalog configuration, sorted, for a file in git."""
    return export(ctx)


def _check_entries(entries: list[dict]) -> tuple[list[dict], list[dict]]:
    checked, errors, seen = [], [], set()
    for index, raw in enumerate(entries):
        model_id = raw.get("modelId") if isinstance(raw, dict) else None
        where = f"models[{index}]"
        try:
            entry = ENTRY.check(raw, where)
            config = {k: entry[k] for k in fields.EDITABLE if k in entry}
            fields.settle({**fields.DEFAULTS, **config}, set(config))
        except FunctionError as error:
            field = error.data.get("field")
            if field and not field.startswith(where):  # a rule across fields: name the entry
                field = f"{where}.{field}"
            errors.append({"entry": index, "modelId": model_id, "field": field,
                           "message": error.message})
            continue
        if entry["modelId"] in seen:
            errors.append({"entry": index, "modelId": model_id, "field": "modelId",
                           "message": f"{model_id} appears more than once"})
        seen.add(entry["modelId"])
        checked.append(entry)
    defaults = [e["modelId"] for e in checked if e.get("isDefault")]
    if len(defaults) > 1:
        errors.append({"entry": None, "modelId": None, "field": "isDefault",
                       "message": f"only one model can be the default; the file marks "
                                  f"{', '.join(defaults)}"})
    return checked, errors


class _Collector:
    """Runs each step, noting a refusal against its entry instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[dict] = []

    def run(self, model_id: str, step, *args) -> None:
        try:
            step(*args)
        except FunctionError as error:
            self.errors.append({"entry": None, "modelId": model_id,
                                "field": error.data.get("field"), "message": error.message})


def _reconcile(ctx: Context, entries: list[dict], reason: str | None) -> None:
    """Bring the catalog to the file's state through the mutations' own steps."""
    wanted = {e["modelId"]: e for e in entries}
    existing = {m.model_id: m for m in ctx.db.scalars(select(Model).order_by(Model.id))}
    steps = _Collector()

    def unlock(model: Model) -> None:
        models.set_lock(ctx, model, False, reason, "import")

    def lock(model: Model) -> None:
        models.set_lock(ctx, model, True, reason, "import")

    def create(model_id: str, config: dict) -> None:
        existing[model_id] = models.insert_model(ctx, model_id, config, reason, action="import")

    def configure(model: Model, entry: dict) -> None:
        current = config_of(model)
        wanted_config = {k: entry.get(k, fields.DEFAULTS.get(k)) for k in fields.EDITABLE
                         if k in entry or k in fields.DEFAULTS}
        patch = {k: val for k, val in wanted_config.items() if current[k] != val}
        if patch.get("isActive") is False:
            patch.pop("isActive")  # switched off in step 4, once the default has moved
        if patch:
            models.apply_patch(ctx, model, patch, "import", reason)

    # 1. unlock what the file unlocks; 2. create and configure; 3. the default;
    # 4. switch off and delete; 5. lock what the file locks.
    for model_id, model in existing.items():
        if model.is_locked and not wanted.get(model_id, {}).get("isLocked", False):
            steps.run(model_id, unlock, model)
    for model_id, entry in wanted.items():
        model = existing.get(model_id)
        if model is None:
            config = {k: entry[k] for k in fields.EDITABLE if k in entry}
            if entry.get("isDeprecated"):
                config["isActive"] = False
            steps.run(model_id, create, model_id, config)
            continue
        if model.is_deprecated and not entry.get("isDeprecated"):
            steps.run(model_id, models.restore, ctx, model, reason, "import")
        steps.run(model_id, configure, model, entry)
    for model_id, entry in wanted.items():
        if entry.get("isDefault") and model_id in existing:
            steps.run(model_id, models.make_default, ctx, existing[model_id], reason)
    for model_id, model in existing.items():
        entry = wanted.get(model_id)
        if entry is None or entry.get("isActive") is False:
            if model.is_active:
                steps.run(model_id, models.apply_patch, ctx, model, {"isActive": False},
                          "import", reason)
        if entry is not None and entry.get("isDeprecated") and not model.is_deprecated:
            steps.run(model_id, models.soft_delete, ctx, model, reason, "import")
    for model_id, entry in wanted.items():
        if entry.get("isLocked") and model_id in existing and not existing[model_id].is_locked:
            steps.run(model_id, lock, existing[model_id])
    if steps.errors:
        raise FunctionError("INVALID_ARGUMENT", _summary(steps.errors), errors=steps.errors)


def _summary(errors: list[dict]) -> str:
    return f"The catalog file has {len(errors)} error(s); nothing was applied: " + "; ".join(
        f"{e['modelId'] or 'file'}: {e['message']}" for e in errors[:5])


def _plan(ctx: Context, catalog: dict, reason: str | None) -> dict:
    """Apply the file inside the caller's transaction and describe what changed."""
    checked, errors = _check_entries(catalog["models"])
    if errors:
        raise FunctionError("INVALID_ARGUMENT", _summary(errors), errors=errors)
    before = {e["modelId"]: e for e in export(ctx)["models"]}
    _reconcile(ctx, checked, reason)
    after = {e["modelId"]: e for e in export(ctx)["models"]}
    created = sorted(set(after) - set(before))
    changed = [{"modelId": mid, "changes": diff(before[mid], after[mid])}
               for mid in sorted(before) if before[mid] != after[mid]]
    deactivated = sorted(mid for mid in before
                         if before[mid].get("isActive") and not after[mid].get("isActive"))
    return {"created": created, "changed": changed, "deactivated": deactivated,
            "unchanged": len(before) - len(changed)}


CATALOG_ARGS = {"catalog": FILE, "reason": v.optional(v.string(0, 500))}


@mutation(CATALOG_ARGS, scope="catalog:write")
def planCatalog(ctx: Context, catalog: dict, reason: str | None = None) -> dict:
    """What applying the file would do (created, changed field by field, deactivated); no change."""
    plan = _plan(ctx, catalog, reason)
    ctx.discard = True
    return plan


@mutation(CATALOG_ARGS, scope="catalog:write")
def applyCatalog(ctx: Context, catalog: dict, reason: str | None = None) -> dict:
    """Make the catalog match the file, all or nothing; the same file twice changes nothing."""
    return _plan(ctx, catalog, reason)
