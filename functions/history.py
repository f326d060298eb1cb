"""history:* - who changed what, when and why; and going back to an earlier revision."""

from __future__ import annotations

from sqlalchemy import select

from db.schema import ModelHistory
from engine.errors import FunctionError
from engine.runtime import SIGNED_IN, Context, mutation, query
from engine.values import v
from functions import fields, ids, models, states
from functions.documents import config_of


def entry(row: ModelHistory) -> dict:
    return {
        "_id": str(row.id),
        "_creationTime": float(row.at),
        "modelId": row.model_id,
        "revision": row.revision,
        "action": row.action,
        "actor": row.actor,
        "source": row.source,
        "at": row.at,
        "reason": row.reason,
        "changes": row.changes,
        "snapshot": row.snapshot,
    }


@query({"modelId": ids.MODEL_REF, "paginationOpts": models.PAGINATION}, scope=SIGNED_IN)
def getModelHistory(ctx: Context, modelId: str, paginationOpts: dict) -> dict:
    """A model's changes, newest first, a page at a time."""
    model = models.get(ctx, modelId)
    cursor = paginationOpts.get("cursor")
    before = models.decode_cursor(cursor) if cursor else None
    query_ = select(ModelHistory).where(ModelHistory.model_pk == model.id)
    if before is not None:
        query_ = query_.where(ModelHistory.revision < before)
    limit = paginationOpts["numItems"]
    rows = ctx.db.scalars(query_.order_by(ModelHistory.revision.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    last = page[-1].revision if page else (before or 0)
    return {
        "page": [entry(row) for row in page],
        "isDone": len(rows) <= limit,
        "continueCursor": models.encode_cursor(last),
    }


@mutation(
    {"modelId": ids.MODEL_REF, "revision": fields.REVISION,
     "reason": v.optional(v.string(0, 500)), "dryRun": v.optional(v.boolean())},
    scope=states.EDIT.scope,
)
def revertModel(ctx: Context, modelId: str, revision: int, reason: str | None = None,
                dryRun: bool = False) -> dict:
    """Bring a model's fields back to an earlier revision, as a new change: an edit, and the
    enable or disable transition when `isActive` differs (so a deleted model is restored
    before it can go back to an active revision). `dryRun`: every check and the model as the
    revert would leave it, or the refusal it would meet; nothing is written."""
    model = models.get(ctx, modelId)
    states.writable(model)
    target = ctx.db.scalar(
        select(ModelHistory).where(
            ModelHistory.model_pk == model.id, ModelHistory.revision == revision
        )
    )
    if target is None:
        raise FunctionError(
            "NOT_FOUND",
            f"{modelId} has no revision {revision} (current revision: {model.revision})",
            field="revision",
        )
    patch = revert_patch(config_of(model), target.snapshot)
    with models.invariants(ctx):
        models.apply_patch(ctx, model, patch, "revert",
                           reason or f"revert to revision {revision}")
    document = models.document(ctx, model)
    if dryRun:
        ctx.discard = True  # rolled back: no row, history entry or mark moves
    return document


def revert_patch(current: dict, snapshot: dict) -> dict:
    """What a revert to a revision's snapshot sets: its editable fields (a field the snapshot
    lacks did not exist then: it takes its default). The values it changes are checked as an
    edit's are: one today's rules refuse (saved under older ones) is refused, not restored
    (`name must be at most 200 characters, got 300: the revision holds a value the rules no
    longer allow`); one it keeps is kept, as an edit keeps it."""
    patch = {k: snapshot.get(k, fields.DEFAULTS.get(k)) for k in fields.EDITABLE
             if k in snapshot or k in fields.DEFAULTS}
    changed = {k: value for k, value in patch.items() if current.get(k) != value}
    try:
        return {**patch, **fields.PATCH.check(changed, "")}
    except FunctionError as error:
        raise FunctionError(error.code, f"{error.message}: the revision holds a value the "
                            "rules no longer allow", **{
                                k: value for k, value in error.data.items() if k != "code"}
                            ) from None


def revert_changes(current: dict, snapshot: dict) -> list[dict]:
    """What reverting a model (its configuration `current`) to a revision's snapshot would
    change, [{field, old, new}], settled as the revert settles it (derived fields too)."""
    patch = revert_patch(current, snapshot)
    after = fields.settle({**{k: current[k] for k in fields.EDITABLE}, **patch}, set(patch))
    return [{"field": k, "old": current[k], "new": after[k]} for k in fields.EDITABLE
            if current[k] != after[k]]
