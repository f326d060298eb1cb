"""usage over time, health, alerts and webhooks; a model's health policy

Revision ID: 0005
Revises: 0004

New tables: `usage_buckets` (per model per minute, hour or day: generations, successes,
failures by error code, the sum of generation times, a latency histogram, credits),
`model_health` (each model's state and figures), `health_alerts`, `webhooks`,
`webhook_deliveries` and `monitor_leases` (when a background job may next run). Two model
fields: `healthPolicy` and `pauseWhenFailing`. Downgrade drops them all, and takes the two
fields out of history snapshots and changes, so that the revision before reads its history.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HISTOGRAM = tuple(f"h{i:02d}" for i in range(24))
NEW_FIELDS = ("healthPolicy", "pauseWhenFailing")


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: SQLite's batch copy would lose the index on
    # lower(model_id), which reflection cannot read.
    op.add_column("models", sa.Column("health_policy", sa.JSON(), nullable=True))
    op.add_column("models", sa.Column("pause_when_failing", sa.Boolean(), nullable=True))
    op.create_table(
        "usage_buckets",
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("generations", sa.BigInteger(), nullable=False),
        sa.Column("successes", sa.BigInteger(), nullable=False),
        sa.Column("time_micros", sa.BigInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=True),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in HISTOGRAM),
        sa.ForeignKeyConstraint(["model_pk"], ["models.id"], ondelete="CASCADE",
                                name="fk_usage_buckets_model_pk_models"),
        sa.PrimaryKeyConstraint("model_pk", "size", "start", name="pk_usage_buckets"),
    )
    op.create_index("ix_usage_buckets_size_start", "usage_buckets", ["size", "start"])
    op.create_table(
        "model_health",
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", sa.BigInteger(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("generations", sa.BigInteger(), nullable=False),
        sa.Column("successes", sa.BigInteger(), nullable=False),
        sa.Column("p50_micros", sa.BigInteger(), nullable=True),
        sa.Column("p95_micros", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["model_pk"], ["models.id"], ondelete="CASCADE",
                                name="fk_model_health_model_pk_models"),
        sa.PrimaryKeyConstraint("model_pk", name="pk_model_health"),
    )
    op.create_table(
        "health_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=True),
        sa.Column("acknowledged_at", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(["model_pk"], ["models.id"], ondelete="CASCADE",
                                name="fk_health_alerts_model_pk_models"),
        sa.PrimaryKeyConstraint("id", name="pk_health_alerts"),
    )
    op.create_index("ix_health_alerts_model_pk_at", "health_alerts", ["model_pk", "at"])
    op.create_index("ix_health_alerts_acknowledged_at", "health_alerts", ["acknowledged_at"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        sa.UniqueConstraint("name", name="uq_webhooks_name"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("claimed_until", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"], ondelete="CASCADE",
                                name="fk_webhook_deliveries_webhook_id_webhooks"),
        sa.ForeignKeyConstraint(["alert_id"], ["health_alerts.id"], ondelete="CASCADE",
                                name="fk_webhook_deliveries_alert_id_health_alerts"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_state_next_attempt_at", "webhook_deliveries",
                    ["state", "next_attempt_at"])
    op.create_table(
        "monitor_leases",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("next_run", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_monitor_leases"),
    )


def _strip_history() -> None:
    """History written by this revision may name the new fields: the one before cannot."""
    conn = op.get_bind()
    history = sa.table("model_history", sa.column("id", sa.Integer),
                       sa.column("snapshot", sa.JSON), sa.column("changes", sa.JSON))
    for row in conn.execute(sa.select(history.c.id, history.c.snapshot, history.c.changes)):
        snapshot = row.snapshot if isinstance(row.snapshot, dict) else json.loads(row.snapshot)
        changes = row.changes if isinstance(row.changes, list) else json.loads(row.changes)
        kept = [c for c in changes if c.get("field") not in NEW_FIELDS]
        if any(name in snapshot for name in NEW_FIELDS) or len(kept) != len(changes):
            conn.execute(history.update().where(history.c.id == row.id).values(
                snapshot={k: val for k, val in snapshot.items() if k not in NEW_FIELDS},
                changes=kept))


def downgrade() -> None:
    op.drop_table("monitor_leases")
    op.drop_index("ix_webhook_deliveries_state_next_attempt_at", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_index("ix_health_alerts_acknowledged_at", "health_alerts")
    op.drop_index("ix_health_alerts_model_pk_at", "health_alerts")
    op.drop_table("health_alerts")
    op.drop_table("model_health")
    op.drop_index("ix_usage_buckets_size_start", "usage_buckets")
    op.drop_table("usage_buckets")
    _strip_history()
    # SQLite's batch copy cannot carry the expression index (nor is it trusted with the partial
    # one): they are dropped first and made again after, exactly as 0003 and 0001 made them.
    op.drop_index("uq_models_model_id_lower", table_name="models")
    op.drop_index("uq_models_one_default", table_name="models")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("pause_when_failing")
        batch.drop_column("health_policy")
    op.create_index("uq_models_model_id_lower", "models", [sa.text("lower(model_id)")],
                    unique=True)
    op.create_index("uq_models_one_default", "models", ["is_default"], unique=True,
                    sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default"))
