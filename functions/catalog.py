"""catalog:* - the whole catalog as one reviewable file: export, plan, apply (all or nothing)."""

from __future__ import annotations

from sqlalchemy import select

from db.schema import CatalogState, Model
from engine.errors import FunctionError
from engine.runtime import SIGNED_IN, Context, mutation, query
from engine.values import Validator, v
from functions import fields, ids, imports, models, spec, states
from functions.changes import assign, record
from functions.documents import config_of
from functions.plan import STATE, Plan, file_entry, refusal

FORMAT_VERSION = 1
ENTRY = v.object({
    "modelId": fields.MODEL_ID,
    **{f.name: (f.validator if f.required else v.optional(f.validator))
       for f in spec.EDITABLE_FIELDS if f.exported},
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


def _check_entries(entries: list) -> tuple[list[dict], list[dict]]:
    checked, errors, seen = [], [], set()

    def refuse(index, model_id, field, message, code="INVALID_ARGUMENT"):
        errors.append({"entry": index, "modelId": model_id, "code": code, "field": field,
                       "message": message})

    for index, raw in enumerate(entries):
        model_id = raw.get("modelId") if isinstance(raw, dict) else None
        where = f"models[{index}]"
        if isinstance(model_id, str):  # canonical: ids that differ only by case are one id
            model_id = ids.canonical(model_id)
            if model_id in seen:  # said even when the entry has other errors
                refuse(index, model_id, f"{where}.modelId", f"{model_id} appears more than once")
            seen.add(model_id)
        try:
            entry = ENTRY.check(raw, where)
            config = {k: entry[k] for k in fields.EDITABLE if k in entry}
            fields.check_kind_given(config)
            fields.settle({**fields.DEFAULTS, **config}, set(config))
        except FunctionError as error:
            field = error.data.get("field")
            if field and not field.startswith(where):  # a rule across fields: name the entry
                field = f"{where}.{field}"
            refuse(index, model_id, field, error.message, error.code)
            continue
        contradiction = states.contradiction(entry)
        if contradiction is not None:
            refuse(index, entry["modelId"], f"{where}.{contradiction[0]}", contradiction[1])
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
# The `catalogVersion` of the plan the caller reviewed: an apply refuses STALE_PLAN when the
# catalog changed since, instead of writing changes the caller never saw.
LARGEST_VERSION = 2**53 - 1  # a catalog version, as JSON carries a number exactly
PLAN_VERSION = {"planVersion": v.optional(v.int(0, LARGEST_VERSION))}


def _models(ctx: Context) -> list:
    """Every model as plain rows (the plan only reads them), in creation order."""
    return ctx.db.execute(select(Model.__table__).order_by(Model.id)).all()


def _version(ctx: Context) -> int:
    return ctx.db.execute(select(CatalogState.version).where(CatalogState.id == 1)).scalar_one()


def _still(ctx: Context, plan_version: int | None) -> int:
    """The catalog's version, under the writers' lock; STALE_PLAN when the caller applies a
    plan made at another one."""
    version = _version(ctx)
    if plan_version is not None and plan_version != version:
        raise FunctionError("STALE_PLAN", "The catalog changed since this plan was made (by "
                            "another edit or import): make the plan again and review it",
                            field="planVersion", catalogVersion=version)
    return version


def _plan(ctx: Context, catalog: dict) -> Plan:
    return Plan(_models(ctx), catalog["models"], ctx.identity, ctx.now)


@mutation(CATALOG_ARGS, scope="catalog:write", reads_only=True)
def planCatalog(ctx: Context, catalog: dict, reason: str | None = None) -> dict:
    """What applying the file would do (created, changed field by field, deactivated); no change.
    `catalogVersion`: the catalog it was made at (applyCatalog's `planVersion`)."""
    version = _version(ctx)  # read first: models read after it are at least as new
    return {**_plan(ctx, catalog).summary(), "catalogVersion": version}


def _prepare_apply(ctx: Context, catalog: dict, reason: str | None = None,
                   planVersion: int | None = None) -> tuple:
    """The plan, made before the writers' lock is taken, with the catalog version it was made
    at (read first: models read after it are at least as new)."""
    version = _version(ctx)
    plan = _plan(ctx, catalog)
    return version, plan, plan.summary()


@mutation({**CATALOG_ARGS, **PLAN_VERSION}, scope="catalog:write", prepare=_prepare_apply)
def applyCatalog(ctx: Context, catalog: dict, reason: str | None = None,
                 planVersion: int | None = None) -> dict:
    """Make the catalog match the file, all or nothing; the same file twice changes nothing.
    With `planVersion`, only if the catalog is still as it was when that plan was made."""
    version, plan, summary = ctx.prepared
    if _still(ctx, planVersion) != version:  # it changed meanwhile: plan again, under the lock
        plan = _plan(ctx, catalog)
        summary = plan.summary()
    with models.invariants(ctx):
        _write(ctx, plan, reason)
    return summary


def _write(ctx: Context, plan: Plan, reason: str | None) -> None:
    """Write what the plan says: one history entry per model it changes, in few statements."""
    changed = plan.changed()
    pks = [draft.pk for draft in changed if draft.pk is not None]
    rows = {row.model_id: row for start in range(0, len(pks), 500)
            for row in ctx.db.scalars(select(Model).where(Model.id.in_(pks[start:start + 500])))}
    # The model that loses the default goes first: the database holds one default at a time.
    loser = next((d for d in changed if d.pk is not None and rows[d.model_id].is_default
                  and not d.is_default), None)
    if loser is not None:
        _write_one(ctx, loser, rows[loser.model_id], reason)
        ctx.db.flush()
    for draft in changed:
        if draft.pk is not None and draft is not loser:
            _write_one(ctx, draft, rows[draft.model_id], reason)
    added = [_write_one(ctx, draft, None, reason) for draft in changed if draft.pk is None]
    if added:
        models.add_models(ctx, added, "import", reason)


def _write_one(ctx: Context, draft, model: Model | None, reason: str | None) -> Model:
    """Bring a row (or a new one) to the draft's fields and state; record a change to a row."""
    config = {k: val for k, val in draft.editable.items() if k != "isActive"}
    before = None if model is None else config_of(model)
    if model is None:
        model = models.new_model(ctx, draft.model_id, {**config, "isActive": False})
    else:
        assign(model, config)
    states.move(model, states.state_of(draft), ctx.now)
    model.is_default, model.is_locked = draft.is_default, draft.is_locked
    if before is not None:
        record(ctx, model, before, "import", reason)
    return model


# -- importing public price maps (functions/imports.py, functions/sources.py) ------------------


def _import_plan(ctx: Context, source: str, models_: list[dict], not_representable: list[dict],
                 options: dict) -> imports.Plan:
    rows = _models(ctx)
    wanted = {entry["modelId"] for entry in models_}
    pks = [row.id for row in rows if row.model_id in wanted]
    return imports.Plan(rows, imports.local_edits(ctx, source, pks), models_, not_representable,
                        source, options, ctx.identity, ctx.now)


@mutation(imports.import_args(v.optional(v.string(0, 500))), scope="catalog:write",
          reads_only=True)
def planImport(ctx: Context, source: str, models: list[dict], notRepresentable=None,
               options=None, reason: str | None = None) -> dict:
    """What importing converted price-map entries would do, grouped (created, price changes,
    field changes, not representable, local edits kept, locked); changes nothing, no lock.
    `catalogVersion`: the catalog it was made at (importPrices' `planVersion`)."""
    version = _version(ctx)
    plan = _import_plan(ctx, source, models, notRepresentable or [], options or {})
    return {**plan.summary(), "catalogVersion": version}


def _prepare_import(ctx: Context, source: str, models: list[dict], reason: str,
                    notRepresentable=None, options=None, planVersion=None) -> tuple:
    """The import's plan, made before the writers' lock, with the catalog version it saw."""
    version = _version(ctx)
    return version, _import_plan(ctx, source, models, notRepresentable or [], options or {})


@mutation({**imports.import_args(v.string(1, 500)), **PLAN_VERSION}, scope="catalog:write",
          prepare=_prepare_import)
def importPrices(ctx: Context, source: str, models: list[dict], reason: str,
                 notRepresentable=None, options=None, planVersion: int | None = None) -> dict:
    """Import converted price-map entries, all or nothing, with history source
    `import:<source>`: never a locked model, the default, a deactivation or a local edit
    (unless options.overwriteLocalEdits); new models inactive unless options.activate.
    With `planVersion`, only if the catalog is still as it was when that plan was made."""
    version, plan = ctx.prepared
    if _still(ctx, planVersion) != version:  # it changed meanwhile: plan again, under the lock
        plan = _import_plan(ctx, source, models, notRepresentable or [], options or {})
    imports.write(ctx, plan, reason)
    return plan.summary()
