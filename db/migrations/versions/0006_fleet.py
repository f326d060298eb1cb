"""a fleet of hosts: the commit clock and shared rate-limit counters

Revision ID: 0006
Revises: 0005

`fleet_clock` holds one row, the last commit timestamp handed out to a mutation answer
(`ts`, engine/fleet.py). `rate_hits` holds the API's rate-limit counts per key and window, so
that on PostgreSQL every host counts against one limit (engine/ratelimit.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    clock = op.create_table(
        "fleet_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_clock")),
    )
    op.bulk_insert(clock, [{"id": 1, "ts": 0}])
    op.create_table(
        "rate_hits",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_hits")),
    )
    op.create_index("ix_rate_hits_window_start", "rate_hits", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_rate_hits_window_start", table_name="rate_hits")
    op.drop_table("rate_hits")
    op.drop_table("fleet_clock")
