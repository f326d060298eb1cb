"""The catalog's tables. Only `functions` writes to them.

Each table names the change mark (engine/marks.py) that a committed write to it bumps, in
`info["mark"]` (None: no cache reads it): the runtime derives what a mutation changed from the
statements it ran (db/engine.py, `noting_writes`), so no handler has to remember it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Model(Base):
    """One generation model: its identity, capabilities, price and flags."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(50), default="1.0")
    # Exact money: micro-USD per pricing unit (a second for video); none for other kinds.
    cost_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pricing_unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The price schedule (functions/prices.py): exact decimal strings, stored as given.
    prices: Mapped[list | None] = mapped_column(JSON, nullable=True)
    supported_durations: Mapped[list] = mapped_column(JSON, default=list)
    supported_qualities: Mapped[list] = mapped_column(JSON, default=list)
    max_duration: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fixed_duration: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quality_multipliers: Mapped[dict] = mapped_column(JSON, default=dict)
    is_premium: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_deprecated: Mapped[bool] = mapped_column(Boolean, default=False)
    is_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    provider: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    content_type: Mapped[str] = mapped_column(String(64), default="video")
    task: Mapped[str | None] = mapped_column(String(64), nullable=True)
    logo_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    input_modalities: Mapped[list] = mapped_column(JSON, default=list)
    output_modalities: Mapped[list] = mapped_column(JSON, default=list)
    capabilities: Mapped[list] = mapped_column(JSON, default=list)
    context_window: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_output_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    estimated_time_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deprecation_date: Mapped[str | None] = mapped_column(String(10), nullable=True)
    successor_model_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    input_schema: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    replicate_model_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_parameters: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    requirements: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    health_policy: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    pause_when_failing: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deprecated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        # modelIds are stored in lower case (functions/ids.py); the database also refuses two
        # that differ only by case.
        Index("uq_models_model_id_lower", func.lower(model_id), unique=True),
        Index("ix_models_is_active", "is_active"),
        Index("ix_models_is_default", "is_default"),
        Index("ix_models_active_premium", "is_active", "is_premium"),
        Index("ix_models_provider", "provider"),
        Index("ix_models_content_type", "content_type"),
        # At most one default, enforced by the database itself.
        Index(
            "uq_models_one_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        {"info": {"mark": "catalog"}},
    )


class ModelStats(Base):
    """Usage statistics, apart from the model so that recording them never bumps its revision."""

    __tablename__ = "model_stats"
    __table_args__ = {"info": {"mark": "stats"}}

    model_pk: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    total_generations: Mapped[int] = mapped_column(BigInteger, default=0)
    successful_generations: Mapped[int] = mapped_column(BigInteger, default=0)
    # Sum of generation times in microseconds: the average is exact.
    total_time_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CatalogState(Base):
    """A single row whose version every catalog change bumps in its own transaction."""

    __tablename__ = "catalog_state"
    __table_args__ = {"info": {"mark": "catalog"}}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class ModelHistory(Base):
    """One entry per change to a model: who, when, why, field by field, and the result."""

    __tablename__ = "model_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(32))
    at: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    changes: Mapped[list] = mapped_column(JSON, default=list)
    snapshot: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (
        Index("uq_model_history_model_revision", "model_pk", "revision", unique=True),
        {"info": {"mark": "catalog"}},
    )


# -- usage over time, health and alerts (functions/usage.py, health.py, webhooks.py) ----------

# The latency histogram's buckets: columns h00..h23 (their bounds: functions/usage.py).
HISTOGRAM_BUCKETS = 24
HISTOGRAM = tuple(f"h{i:02d}" for i in range(HISTOGRAM_BUCKETS))

# One row per model per time bucket: a minute (size 60), an hour (3600) or a day (86400), by
# its start (ms, UTC, a multiple of the size). Recordings add to minute rows; the roll-up
# (functions/usage.py) turns each hour of old minutes into one hour row, and each day of old
# hours into one day row, so every row counts generations no other row counts.
usage_buckets = Table(
    "usage_buckets",
    Base.metadata,
    Column("model_pk", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("size", Integer, primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("generations", BigInteger, nullable=False),
    Column("successes", BigInteger, nullable=False),
    Column("time_micros", BigInteger, nullable=False),  # the sum of generation times
    Column("credits", BigInteger, nullable=False),
    # Failures by error code, {code: count}; at most USAGE_MAX_ERROR_CODES codes per row.
    Column("errors", JSON(none_as_null=True), nullable=True),
    *(Column(name, BigInteger, nullable=False) for name in HISTOGRAM),
    Index("ix_usage_buckets_size_start", "size", "start"),
    info={"mark": "stats"},
)


class ModelHealth(Base):
    """A model's health as the monitor last evaluated it: its state since when, and figures."""

    __tablename__ = "model_health"
    __table_args__ = {"info": {"mark": "stats"}}

    model_pk: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[int] = mapped_column(BigInteger)
    evaluated_at: Mapped[int] = mapped_column(BigInteger)
    window_seconds: Mapped[int] = mapped_column(Integer)
    generations: Mapped[int] = mapped_column(BigInteger)
    successes: Mapped[int] = mapped_column(BigInteger)
    p50_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    p95_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class HealthAlert(Base):
    """A change of a model's health state, with the figures that caused it."""

    __tablename__ = "health_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[int] = mapped_column(BigInteger)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    figures: Mapped[dict] = mapped_column(JSON)
    action: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acknowledged_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(320), nullable=True)

    __table_args__ = (
        Index("ix_health_alerts_model_pk_at", "model_pk", "at"),
        Index("ix_health_alerts_acknowledged_at", "acknowledged_at"),
        {"info": {"mark": "stats"}},
    )


class Webhook(Base):
    """Where alerts are sent: a Slack-compatible URL, or a generic one signed with HMAC."""

    __tablename__ = "webhooks"
    __table_args__ = {"info": {"mark": "stats"}}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "slack" | "signed"
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str | None] = mapped_column(String(100), nullable=True)  # HMAC key
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One alert to one webhook: pending until delivered, retried with backoff, or failed."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("health_alerts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))  # "pending" | "delivered" | "failed"
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    claimed_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        {"info": {"mark": "stats"}},
    )


class MonitorLease(Base):
    """When a background job may next run, fleet-wide (engine/background.py)."""

    __tablename__ = "monitor_leases"
    __table_args__ = {"info": {"mark": "stats"}}

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    next_run: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)


class FleetClock(Base):
    """One row: the last commit timestamp (`ts`) handed out (engine/fleet.py). Each tick is
    one UPDATE of this row, so ticks commit in the order of their values, with no gaps."""

    __tablename__ = "fleet_clock"
    __table_args__ = {"info": {"mark": None}}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, default=0)


class RateHits(Base):
    """The API's rate-limit counts per key and fixed window, shared by every host on
    PostgreSQL (engine/ratelimit.py); a host-local file holds them on SQLite."""

    __tablename__ = "rate_hits"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)

    # Counted outside the catalog's functions: no cache depends on it.
    __table_args__ = (Index("ix_rate_hits_window_start", "window_start"), {"info": {"mark": None}})


class RecordedEvent(Base):
    """The `eventId`s of generations recorded by `models:recordGenerations`, per caller: a
    call sent again (a retry after a timeout) records each generation once. The roll-up
    forgets them after USAGE_MINUTE_RETENTION_HOURS (functions/usage.py)."""

    __tablename__ = "recorded_events"

    caller: Mapped[str] = mapped_column(String(400), primary_key=True)  # user:<email>
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    recorded_at: Mapped[int] = mapped_column(BigInteger)
    # What the generation was (functions/usage.py, event_digest): an id sent again for another
    # generation is refused, not taken for a retry.
    digest: Mapped[str] = mapped_column(String(64))

    # Read only by the recording that adds to it: no cache depends on it.
    __table_args__ = (Index("ix_recorded_events_recorded_at", "recorded_at"),
                      {"info": {"mark": None}})


def marks_of(tables: set[str]) -> set[str]:
    """The change marks that committed writes to these tables bump."""
    known = Base.metadata.tables
    return {known[name].info["mark"] for name in tables
            if name in known and known[name].info["mark"] is not None}


class User(Base):
    """A console account."""

    __tablename__ = "users"
    __table_args__ = {"info": {"mark": "access"}}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_sign_in_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Every console session carries the version it was signed in under; bumping it (sign-out,
    # a new password, an admin's "sign out", disabling the account) ends them all at once.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    """A service token; only its hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = {"info": {"mark": "access"}}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SignInThrottle(Base):
    """Failed sign-ins per key (a hash of account, address or both) since `started` (ms): a
    window opens at a key's first failure and lasts the throttle's period."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    started: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)

    # Counted outside the catalog's functions (engine/throttle.py): no cache depends on it.
    __table_args__ = (Index("ix_sign_in_throttle_started", "started"), {"info": {"mark": None}})
