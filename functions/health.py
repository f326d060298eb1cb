"""Health: each model's state, from its success rate and p95 over a sliding window; alerts.

States: `healthy`, `degraded`, `failing`, and `unknown` (too few generations in the window).
The monitor (functions/monitor.py) evaluates every model outside any request
(`evaluateHealth`, a mutation run as "health monitor"); queries read what it wrote.

- A worse state applies as soon as the figures cross its threshold; a better state only once
  the failure rate and p95 beat that state's thresholds by HEALTH_RECOVERY_MARGIN_PERCENT
  (hysteresis: a model near a threshold does not flap). A model leaves `unknown` with
  `minGenerations` in the window, and returns to it below half of that.
- Every change of state records an alert with the figures that caused it, and queues it for
  every active webhook (functions/webhooks.py).
- A model with `pauseWhenFailing` that turns `failing` is deactivated through the usual
  mutation path (apply_patch, actor "health monitor", the figures as the reason), unless it is
  locked or the default: those only alert. An admin re-enables it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update

from db.schema import HealthAlert, Model, ModelHealth, ModelStats, Webhook, WebhookDelivery
from engine.errors import FunctionError
from engine.runtime import SIGNED_IN, Context, mutation, query
from engine.values import v
from functions import models, usage
from functions.health_policy import Policy, effective

STATES = ("healthy", "degraded", "failing", "unknown")
RANK = {"healthy": 0, "degraded": 1, "failing": 2}


@dataclass(frozen=True)
class Figures:
    """A model's generations over its window."""

    generations: int
    successes: int
    p50: float | None  # s
    p95: float | None  # s
    window_seconds: int

    @property
    def success_rate(self) -> float | None:
        return None if not self.generations else self.successes * 100 / self.generations

    def as_dict(self) -> dict:
        return {"generations": self.generations,
                "failures": self.generations - self.successes,
                "successRate": _round(self.success_rate),
                "p50GenerationTime": self.p50, "p95GenerationTime": self.p95,
                "windowSeconds": self.window_seconds}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def figures_of(row, window_seconds: int) -> Figures:
    if row is None:
        return Figures(0, 0, None, None, window_seconds)
    histogram = [int(getattr(row, name)) for name in usage.HISTOGRAM]
    return Figures(int(row.generations), int(row.successes), usage.percentile(histogram, 0.5),
                   usage.percentile(histogram, 0.95), window_seconds)


def level(figures: Figures, policy: Policy, margin: float) -> str:
    """healthy, degraded or failing by the thresholds, each made stricter by `margin` (0..1)."""
    failure = 100 - figures.success_rate

    def beyond(success_rate: float, p95_seconds: float | None) -> bool:
        if failure > (100 - success_rate) * (1 - margin):
            return True
        return (p95_seconds is not None and figures.p95 is not None
                and figures.p95 > p95_seconds * (1 - margin))

    if beyond(policy.failing_success_rate, policy.failing_p95_seconds):
        return "failing"
    if beyond(policy.degraded_success_rate, policy.degraded_p95_seconds):
        return "degraded"
    return "healthy"


def classify(figures: Figures, policy: Policy, previous: str | None, margin: float) -> str:
    """The state these figures give a model that was `previous` (None: never evaluated)."""
    known = previous in RANK
    enough = policy.min_generations if not known else math.ceil(policy.min_generations / 2)
    if figures.generations == 0 or figures.generations < enough:
        return "unknown"
    plain = level(figures, policy, 0)
    if not known:
        return plain
    strict = level(figures, policy, margin)  # what it must beat to get better
    better = strict if RANK[strict] < RANK[previous] else previous
    return max(plain, better, key=RANK.__getitem__)


def describe(model_id: str, before: str, after: str, figures: Figures) -> str:
    rate = figures.success_rate
    parts = [f"{model_id}: {before} -> {after}"]
    if figures.generations:
        parts.append(f"success rate {rate:.1f}% of {figures.generations} generations over "
                     f"{figures.window_seconds // 60} min")
        if figures.p95 is not None:
            parts.append(f"p95 {figures.p95:g} s")
    else:
        parts.append(f"no generations over {figures.window_seconds // 60} min")
    return ", ".join(parts)


# -- evaluating (the monitor) ----------------------------------------------------------------


HEALTH = ModelHealth.__table__
FIGURES = ("window_seconds", "generations", "successes", "p50_micros", "p95_micros")


@mutation({}, scope="admin", internal=True)
def evaluateHealth(ctx: Context) -> dict:
    """Judge every model that is not deleted on its window; record changes of state as alerts
    (and queue them for the webhooks), pause failing models that asked for it. Reads and
    writes in bulk (only rows that changed): the writers' lock is held briefly."""
    rows = ctx.db.execute(
        select(Model.id, Model.model_id, Model.health_policy, Model.pause_when_failing,
               Model.is_active).where(Model.is_deprecated.is_(False)).order_by(Model.id)).all()
    policies = {m.id: effective(ctx.config, m.health_policy) for m in rows}
    windows = {w: usage.recent(ctx.db, ctx.now, w)
               for w in {p.window_seconds for p in policies.values()}}
    held = {h.model_pk: h for h in ctx.db.execute(select(HEALTH))}
    margin = ctx.config["HEALTH_RECOVERY_MARGIN_PERCENT"] / 100
    alerts: list[HealthAlert] = []
    inserts, updates = [], []
    for model in rows:
        policy = policies[model.id]
        sums, window = windows[policy.window_seconds]
        figures = figures_of(sums.get(model.id), window)
        row = held.get(model.id)
        previous = None if row is None else row.state
        state = classify(figures, policy, previous, margin)
        noted = _noted(figures)
        if row is None:
            inserts.append({"model_pk": model.id, "state": state, "since": ctx.now,
                            "evaluated_at": ctx.now, **noted})
        elif state != row.state or any(getattr(row, k) != val for k, val in noted.items()):
            since = ctx.now if state != row.state else row.since
            updates.append({"pk": model.id, "state": state, "since": since,
                            "evaluated_at": ctx.now, **noted})
        if state != (previous or "unknown"):
            alerts.append(_alert(ctx, model, previous or "unknown", state, figures, policy))
    if inserts:
        ctx.db.execute(HEALTH.insert(), inserts)
    if updates:
        ctx.db.execute(HEALTH.update().where(HEALTH.c.model_pk == bindparam("pk"))
                       .values({k: bindparam(k) for k in updates[0] if k != "pk"}), updates)
    if alerts:
        ctx.db.flush()
        _queue(ctx, alerts)
        _announce(ctx, {a.model_pk for a in alerts})
    return {"evaluated": len(rows), "alerts": [alert_document(a) for a in alerts]}


def _noted(figures: Figures) -> dict:
    return {"window_seconds": figures.window_seconds, "generations": figures.generations,
            "successes": figures.successes,
            "p50_micros": None if figures.p50 is None else round(figures.p50 * 1e6),
            "p95_micros": None if figures.p95 is None else round(figures.p95 * 1e6)}


def _alert(ctx: Context, model, before: str, after: str, figures: Figures,
           policy: Policy) -> HealthAlert:
    """`model`: the model's row as evaluateHealth reads it (id, model_id, flags)."""
    action = None
    if after == "failing" and model.pause_when_failing and model.is_active:
        action = _pause(ctx, ctx.db.get(Model, model.id),
                        describe(model.model_id, before, after, figures))
    alert = HealthAlert(model_pk=model.id, model_id=model.model_id, at=ctx.now,
                        from_state=before, to_state=after, action=action,
                        figures={**figures.as_dict(), "policy": policy.as_dict()})
    ctx.db.add(alert)
    return alert


def _pause(ctx: Context, model: Model, why: str) -> str:
    """Deactivate a failing model through the usual rules; a locked one or the default is
    left on (the alert says so)."""
    if model.is_locked:
        return "not paused: the model is locked"
    if model.is_default:
        return "not paused: the model is the default"
    models.apply_patch(ctx, model, {"isActive": False}, "disable",
                       f"paused by the health monitor: {why}")
    return "paused"


def _queue(ctx: Context, alerts: list[HealthAlert]) -> None:
    hooks = ctx.db.scalars(select(Webhook.id).where(Webhook.is_active.is_(True))).all()
    ctx.db.add_all(WebhookDelivery(webhook_id=hook, alert_id=alert.id, state="pending",
                                   attempts=0, next_attempt_at=ctx.now, created_at=ctx.now)
                   for alert in alerts for hook in hooks)


def _announce(ctx: Context, model_pks: set[int]) -> None:
    """Move the statistics' fingerprint that every host's live-query watcher polls (the sum
    of generations and the latest model_stats.updated_at), so that subscribers of health and
    alerts get the change even where the change marks are not shared."""
    latest = ctx.db.scalar(select(func.max(ModelStats.updated_at))) or 0
    ctx.db.execute(update(ModelStats).where(ModelStats.model_pk.in_(model_pks))
                   .values(updated_at=max(ctx.now, latest + 1)))


# -- reading ---------------------------------------------------------------------------------


def health_document(model_id: str, row: ModelHealth | None, policy: Policy) -> dict:
    if row is None:
        return {"modelId": model_id, "state": "unknown", "since": None, "successRate": None,
                "p50GenerationTime": None, "p95GenerationTime": None, "generations": 0,
                "windowSeconds": usage.minutes_of(policy.window_seconds) * 60,
                "evaluatedAt": None}
    return {
        "modelId": model_id,
        "state": row.state,
        "since": row.since,
        "successRate": _round(row.successes * 100 / row.generations) if row.generations
        else None,
        "p50GenerationTime": None if row.p50_micros is None else row.p50_micros / 1e6,
        "p95GenerationTime": None if row.p95_micros is None else row.p95_micros / 1e6,
        "generations": row.generations,
        "windowSeconds": row.window_seconds,
        "evaluatedAt": row.evaluated_at,
    }


def health_by_pk(ctx: Context, pks: list[int] | None = None) -> dict[int, ModelHealth]:
    query_ = select(ModelHealth)
    if pks is not None:
        query_ = query_.where(ModelHealth.model_pk.in_(pks))
    return {row.model_pk: row for row in ctx.db.scalars(query_)}


@query({"modelId": v.optional(v.string(1, 200))}, name="models:getModelHealth")
def getModelHealth(ctx: Context, modelId: str | None = None) -> dict | list[dict]:
    """A model's health (or every model's that is not deleted): state, since when, and the
    figures over its window, as the monitor last evaluated them."""
    if modelId is not None:
        entry = models.cached(ctx, modelId)
        row = health_by_pk(ctx, [entry.pk]).get(entry.pk)
        return health_document(entry.model.model_id, row,
                               effective(ctx.config, entry.model.health_policy))
    entries = [e for e in models.catalog(ctx).entries if not e.model.is_deprecated]
    rows = health_by_pk(ctx)
    return [health_document(e.model.model_id, rows.get(e.pk),
                            effective(ctx.config, e.model.health_policy)) for e in entries]


def alert_document(alert: HealthAlert) -> dict:
    return {
        "_id": str(alert.id),
        "_creationTime": float(alert.at),
        "modelId": alert.model_id,
        "at": alert.at,
        "from": alert.from_state,
        "to": alert.to_state,
        "figures": alert.figures,
        "action": alert.action,
        "acknowledgedAt": alert.acknowledged_at,
        "acknowledgedBy": alert.acknowledged_by,
    }


@query({"paginationOpts": models.PAGINATION, "modelId": v.optional(v.string(1, 200)),
        "open": v.optional(v.boolean())}, scope=SIGNED_IN, name="models:listAlerts")
def listAlerts(ctx: Context, paginationOpts: dict, modelId: str | None = None,
               open: bool | None = None) -> dict:  # noqa: A002 - the argument's public name
    """Changes of health state, newest first, a page at a time; `open`: only those not (or,
    false, only those) acknowledged."""
    query_ = select(HealthAlert)
    if modelId is not None:
        query_ = query_.where(HealthAlert.model_pk == models.cached(ctx, modelId).pk)
    if open is not None:
        query_ = query_.where(HealthAlert.acknowledged_at.is_(None) if open
                              else HealthAlert.acknowledged_at.is_not(None))
    cursor = paginationOpts.get("cursor")
    if cursor:
        query_ = query_.where(HealthAlert.id < models.decode_cursor(cursor))
    limit = paginationOpts["numItems"]
    rows = ctx.db.scalars(query_.order_by(HealthAlert.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    return {"page": [alert_document(a) for a in page], "isDone": len(rows) <= limit,
            "continueCursor": models.encode_cursor(page[-1].id if page else 0)}


ALERT_ID = v.string(1, 20, pattern=r"[0-9]+", hint="an alert's _id")


@mutation({"alertId": ALERT_ID}, scope="catalog:write", name="models:acknowledgeAlert")
def acknowledgeAlert(ctx: Context, alertId: str) -> dict:
    """Mark an alert as seen (by whom, when); acknowledging it again changes nothing."""
    alert = ctx.db.get(HealthAlert, int(alertId)) if int(alertId) < 2**31 else None
    if alert is None:
        raise FunctionError("NOT_FOUND", f"No alert with _id '{alertId}'", field="alertId")
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = ctx.now, ctx.identity.name
    return alert_document(alert)
