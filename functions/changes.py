"""Recording a change: revision and history entry, in the caller's transaction (the runtime
bumps the catalog version for any transaction that wrote a catalog table)."""

from __future__ import annotations

from db.schema import Model, ModelHistory
from engine.runtime import Context
from functions.documents import CONFIG_FIELDS, config_of, to_micros


def assign(model: Model, config: dict) -> None:
    """Write configuration values (document names) onto the row."""
    for name, value in config.items():
        attr = CONFIG_FIELDS[name]
        if name == "costPerSecond" and value is not None:
            value = to_micros(value, "costPerSecond")
        setattr(model, attr, value)


def diff(before: dict, after: dict) -> list[dict]:
    return [
        {"field": name, "old": before.get(name), "new": after[name]}
        for name in after
        if before.get(name) != after[name]
    ]


def record(
    ctx: Context, model: Model, before: dict | None, action: str, reason: str | None = None
) -> bool:
    """Bump the model's revision and write its history entry; False when nothing changed."""
    after = config_of(model)
    changes = diff(before or {}, after)
    if before is not None and not changes:
        return False
    model.revision = 1 if before is None else model.revision + 1
    model.updated_at = ctx.now
    if model.id is None:
        ctx.db.flush()  # a new model's entry needs its id; others are written in one flush
    ctx.db.add(
        ModelHistory(
            model_pk=model.id,
            model_id=model.model_id,
            revision=model.revision,
            action=action,
            actor=ctx.identity.name,
            source=ctx.source,
            at=ctx.now,
            reason=reason or None,
            changes=changes,
            snapshot=after,
        )
    )
    return True
