"""every kind of model: content types, modalities, capabilities, limits, lifecycle

Revision ID: 0004
Revises: 0003

`contentType` was free text (the seeds' `prompt_to_video`); it is now one of the documented
kinds (chat, embedding, image, video, speech, transcription). The old value is kept, unchanged,
in the new `task` field, so downgrade restores it exactly; history snapshots are carried over
the same way, so a revert to an old revision still reads. A model that was priced by the
second keeps its price; other kinds have none in `cost_micros`.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIST_COLUMNS = ("input_modalities", "output_modalities", "capabilities")
# The kind a free-text content type names, by the first keyword it contains.
KEYWORDS = (
    ("video", "video"), ("image", "image"), ("speech", "speech"), ("tts", "speech"),
    ("transcri", "transcription"), ("embed", "embedding"), ("chat", "chat"),
    ("completion", "chat"), ("text", "chat"),
)
OUTPUT = {"video": "video", "image": "image", "speech": "audio", "transcription": "text",
          "chat": "text", "embedding": "embedding"}


def kind_of(legacy: str) -> str:
    return next((kind for word, kind in KEYWORDS if word in legacy), "video")


def inputs_of(legacy: str) -> list[str]:
    if legacy.startswith(("image_to", "img2")):
        return ["image", "text"]
    if legacy.startswith(("prompt_to", "text_to", "txt2")):
        return ["text"]
    return []


def upgraded(snapshot: dict) -> dict:
    legacy = snapshot.get("contentType") or "prompt_to_video"
    kind = kind_of(legacy)
    return {**snapshot, "contentType": kind, "task": snapshot.get("task", legacy),
            "inputModalities": snapshot.get("inputModalities", inputs_of(legacy)),
            "outputModalities": snapshot.get("outputModalities", [OUTPUT[kind]]),
            "capabilities": snapshot.get("capabilities", [])}


NEW_FIELDS = ("prices", "task", "logoUrl", "inputModalities", "outputModalities", "capabilities",
              "contextWindow", "maxOutputTokens", "estimatedTimeSeconds", "deprecationDate",
              "successorModelId")


def downgraded(snapshot: dict) -> dict:
    out = {k: val for k, val in snapshot.items() if k not in NEW_FIELDS}
    out["contentType"] = snapshot.get("task") or f"prompt_to_{snapshot.get('contentType')}"
    return out


def _rewrite_history(change) -> None:
    conn = op.get_bind()
    history = sa.table("model_history", sa.column("id", sa.Integer),
                       sa.column("snapshot", sa.JSON))
    for row in conn.execute(sa.select(history.c.id, history.c.snapshot)).all():
        snapshot = row.snapshot if isinstance(row.snapshot, dict) else json.loads(row.snapshot)
        conn.execute(history.update().where(history.c.id == row.id)
                     .values(snapshot=change(snapshot)))


def _drop_special_indexes() -> None:
    """SQLite's batch mode copies the table from its reflection, which cannot carry an index on
    an expression (or is not trusted to keep a partial one): they are dropped first and made
    again after, exactly as declared."""
    op.drop_index("uq_models_model_id_lower", table_name="models")
    op.drop_index("uq_models_one_default", table_name="models")


def _create_special_indexes() -> None:
    op.create_index("uq_models_model_id_lower", "models", [sa.text("lower(model_id)")],
                    unique=True)
    op.create_index("uq_models_one_default", "models", ["is_default"], unique=True,
                    sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default"))


def upgrade() -> None:
    _drop_special_indexes()
    with op.batch_alter_table("models") as batch:
        batch.alter_column("cost_micros", existing_type=sa.BigInteger(), nullable=True)
        batch.alter_column("pricing_unit", existing_type=sa.String(length=32), nullable=True)
        batch.add_column(sa.Column("prices", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("task", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("logo_url", sa.String(length=2000), nullable=True))
        for name in LIST_COLUMNS:
            batch.add_column(sa.Column(name, sa.JSON(), nullable=False,
                                       server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("context_window", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("max_output_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("estimated_time_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("deprecation_date", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("successor_model_id", sa.String(length=200), nullable=True))
        batch.create_index("ix_models_content_type", ["content_type"])
    _create_special_indexes()
    conn = op.get_bind()
    models = sa.table("models", sa.column("id", sa.Integer), sa.column("content_type", sa.String),
                      sa.column("task", sa.String), sa.column("input_modalities", sa.JSON),
                      sa.column("output_modalities", sa.JSON))
    for row in conn.execute(sa.select(models.c.id, models.c.content_type)).all():
        kind = kind_of(row.content_type)
        conn.execute(models.update().where(models.c.id == row.id).values(
            content_type=kind, task=row.content_type, input_modalities=inputs_of(
                row.content_type), output_modalities=[OUTPUT[kind]]))
    _rewrite_history(upgraded)


def downgrade() -> None:
    conn = op.get_bind()
    models = sa.table("models", sa.column("model_id", sa.String),
                      sa.column("content_type", sa.String),
                      sa.column("task", sa.String), sa.column("cost_micros", sa.BigInteger))
    unpriced = conn.execute(sa.select(models.c.model_id).where(
        models.c.cost_micros.is_(None))).scalars().all()
    if unpriced:
        raise RuntimeError("revision 0001 can only hold models priced by costPerSecond; these "
                           f"are priced by a schedule: {', '.join(unpriced[:20])}. Remove them "
                           "(or give them a costPerSecond) before downgrading")
    conn.execute(sa.text("UPDATE models SET pricing_unit = 'second' WHERE pricing_unit IS NULL"))
    conn.execute(models.update().where(models.c.task.is_not(None))
                 .values(content_type=models.c.task))
    conn.execute(models.update().where(models.c.task.is_(None))
                 .values(content_type="prompt_to_" + models.c.content_type))
    _rewrite_history(downgraded)
    _drop_special_indexes()
    with op.batch_alter_table("models") as batch:
        batch.drop_index("ix_models_content_type")
        for name in ("successor_model_id", "deprecation_date", "estimated_time_seconds",
                     "max_output_tokens", "context_window", *reversed(LIST_COLUMNS), "logo_url",
                     "task", "prices"):
            batch.drop_column(name)
        batch.alter_column("pricing_unit", existing_type=sa.String(length=32), nullable=False)
        batch.alter_column("cost_micros", existing_type=sa.BigInteger(), nullable=False)
    _create_special_indexes()
