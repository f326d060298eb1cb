"""Rows as Convex documents (camelCase, `_id`, `_creationTime`), and exact money."""

from __future__ import annotations

from decimal import Decimal

from db.schema import Model, ModelStats
from engine.errors import FunctionError
from functions import spec

MICROS = Decimal(1_000_000)

# Configuration fields: document name -> column attribute, from the model spec.
# `costPerSecond` is stored as integer micro-USD (`cost_micros`) and converted at the edge.
CONFIG_FIELDS: dict[str, str] = {f.name: f.attr for f in spec.FIELDS}


def to_micros(amount: float | int | Decimal, field: str) -> int:
    """USD as an exact count of micro-dollars; more than 6 decimal places is refused."""
    exact = Decimal(str(amount))
    micros = exact * MICROS
    if micros != micros.to_integral_value():
        raise FunctionError(
            "INVALID_ARGUMENT", f"{field} must have at most 6 decimal places, got {amount}",
            field=field,
        )
    return int(micros)


def from_micros(micros: int) -> float:
    return float(Decimal(micros) / MICROS)


def config_of(model: Model) -> dict:
    """The model's configuration as a plain dict (what history snapshots and exports hold)."""
    out = {}
    for name, attr in CONFIG_FIELDS.items():
        value = getattr(model, attr)
        if name == "costPerSecond" and value is not None:
            value = from_micros(value)
        out[name] = value
    return out


def stats_of(stats: ModelStats | None) -> dict:
    total = stats.total_generations if stats else 0
    if not total:
        return {"totalGenerations": 0, "averageGenerationTime": 0, "successRate": 0}
    return {
        "totalGenerations": total,
        "averageGenerationTime": float(Decimal(stats.total_time_micros) / total / MICROS),
        "successRate": float(Decimal(stats.successful_generations) * 100 / total),
    }


def config_document(model: Model) -> dict:
    """A model as its clients see it, less statistics; unset optional fields are left out."""
    doc = {"_id": str(model.id), "_creationTime": float(model.created_at)}
    doc.update((name, value) for name, value in config_of(model).items() if value is not None)
    doc["revision"] = model.revision
    doc["createdAt"] = model.created_at
    doc["updatedAt"] = model.updated_at
    return doc


def to_document(model: Model, stats: ModelStats | None) -> dict:
    return {**config_document(model), **stats_of(stats)}
