"""event ids: a generation recorded with an `eventId` is recorded once per caller

Revision ID: 0007
Revises: 0006

`recorded_events` holds the `eventId`s `models:recordGenerations` has recorded, per caller, so
that a call sent again (a retry after a timeout) adds nothing twice. The roll-up forgets them
after USAGE_MINUTE_RETENTION_HOURS (functions/usage.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recorded_events",
        sa.Column("caller", sa.String(length=400), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("caller", "event_id", name=op.f("pk_recorded_events")),
    )
    op.create_index("ix_recorded_events_recorded_at", "recorded_events", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_recorded_events_recorded_at", table_name="recorded_events")
    op.drop_table("recorded_events")
