"""catalog:* - the whole catalog as one reviewable file: export, plan, apply (all or nothing)."""

from __future__ import annotations

from sqlalchemy import select

from db.schema import Model
from engine.errors import FunctionError
from engine.runtime import SIGNED_IN, Context, mutation, query
from engine.values import Validator, v
from functions import fields, models, states
from functions.changes import assign, record
from functions.documents import config_of
from functions.plan import STATE, Plan, file_entry, refusal

FORMAT_VERSION = 1
ENTRY = v.object({
    "modelId": fields.MODEL_ID,
    **{k: (val if k in fields.REQUIRED_ON_CREATE else v.optional(val))
       for k, val in fields.EDITABLE.items()},
    **{k: v.optional(v.boolean()) for k in STATE},
})
# The outer shape; the entries are checked one by one (to report every error) by CatalogFile.
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
    return file_entry(config_of(model))


def export(ctx: Context) -> dict:
    rows = ctx.db.scalars(select(Model).order_by(Model.model_id))
    return {"formatVersion": FORMAT_VERSION, "models": [entry_of(m) for m in rows]}


@query(scope=SIGNED_IN)
def exportCatalog(ctx: Context) -> dict:
    """The whole catalog configuration, sorted, for a file in git."""
    return export(ctx)


def _contradiction(entry: dict) -> tuple[str, str] | None:
    """A state the file asks for that no model can be in."""
    if entry.get("isDeprecated") and entry.get("isActive"):
        return "isActive", "a deleted model (isDeprecated) cannot be active"
    return None


def _check_entries(entries: list) -> tuple[list[dict], list[dict]]:
    checked, errors, seen = [], [], set()

    def refuse(index, model_id, field, message, code="INVALID_ARGUMENT"):
        errors.append({"entry": index, "modelId": model_id, "code": code, "field": field,
                       "message": message})

    for index, raw in enumerate(entries):
        model_id = raw.get("modelId") if isinstance(raw, dict) else None
        try:
            entry = ENTRY.check(raw, f"models[{index}]")
            config = {k: entry[k] for k in fields.EDITABLE if k in entry}
            fields.settle({**fields.DEFAULTS, **config}, set(config))
        except FunctionError as error:
            refuse(index, model_id, error.data.get("field"), error.message, error.code)
            continue
        model_id = entry["modelId"]  # canonical: ids that differ only by case are one id
        contradiction = _contradiction(entry)
        if contradiction is not None:
            refuse(index, model_id, f"models[{index}].{contradiction[0]}", contradiction[1])
        elif model_id in seen:
            refuse(index, model_id, "modelId", f"{model_id} appears more than once")
        seen.add(model_id)
        checked.append(entry)
    defaults = [e["modelId"] for e in checked if e.get("isDefault")]
    if len(defaults) > 1:
        refuse(None, None, "isDefault", "only one model can be the default; the file marks "
                                        f"{', '.join(defaults)}")
    return checked, errors


class CatalogFile(Validator):
    """The `catalog` argument: its shape, then every entry, each error reported. It is checked
    before the function runs, so no writer waits on the checking of a large file."""

    def check(self, value, path):
        outer = FILE.check(value, path)
        checked, errors = _check_entries(outer["models"])
        if errors:
            raise refusal(errors)
        return {**outer, "models": checked}

    def schema(self):
        return FILE.schema()


CATALOG_ARGS = {"catalog": CatalogFile(), "reason": v.optional(v.string(0, 500))}


def _models(ctx: Context) -> list[Model]:
    return ctx.db.scalars(select(Model).order_by(Model.id)).all()


@mutation(CATALOG_ARGS, scope="catalog:write", reads_only=True)
def planCatalog(ctx: Context, catalog: dict, reason: str | None = None) -> dict:
    """What applying the file would do (created, changed field by field, deactivated); no change."""
    return Plan(_models(ctx), catalog["models"], ctx.identity, ctx.now).summary()


@mutation(CATALOG_ARGS, scope="catalog:write")
def applyCatalog(ctx: Context, catalog: dict, reason: str | None = None) -> dict:
    """Make the catalog match the file, all or nothing; the same file twice changes nothing."""
    rows = _models(ctx)
    plan = Plan(rows, catalog["models"], ctx.identity, ctx.now)
    with models.invariants(ctx):
        _write(ctx, plan, {row.model_id: row for row in rows}, reason)
    return plan.summary()


def _write(ctx: Context, plan: Plan, rows: dict[str, Model], reason: str | None) -> None:
    """Write what the plan says, one history entry per model it changes."""
    changed = plan.changed()
    # The model that loses the default goes first: the database holds one default at a time.
    changed.sort(key=lambda d: not (d.pk is not None and rows[d.model_id].is_default
                                    and not d.is_default))
    for draft in changed:
        config = {k: val for k, val in draft.editable.items() if k != "isActive"}
        if draft.pk is None:
            model = models.new_model(ctx, draft.model_id, {**config, "isActive": False})
            before = None
        else:
            model = rows[draft.model_id]
            before = config_of(model)
            assign(model, config)
        states.move(model, states.state_of(draft), ctx.now)
        model.is_default, model.is_locked = draft.is_default, draft.is_locked
        if before is None:
            models.add_model(ctx, model, "import", reason)
        else:
            record(ctx, model, before, "import", reason)
