"""model id rule: ids canonical (lower case), unique case-insensitively; legal model states

Revision ID: 0003
Revises: 0002

Upgrade:
- checks every stored modelId against the id rule (functions/ids.py, copied below as it stands
  today): one that breaks the grammar, or that collides with another once both are in lower
  case (`Luma/Ray-2-720p` beside `luma/ray-2-720p`), stops the upgrade with a message listing
  them; nothing is changed. Rename or remove them first, e.g.
  `UPDATE models SET model_id = 'luma/ray-2-720p-old' WHERE id = 7` (or delete the row);
- stores every modelId in lower case (models, and the model_history rows that name them);
- adds a unique index on lower(model_id), so the database itself refuses two ids that differ
  only by case;
- repairs model states the old code could leave behind: a model both active and deleted
  becomes deleted and inactive (clients already saw it as not active); a default flag on a
  model that is not active is cleared; and if models are active without a default, the first
  active one (oldest) becomes the default.

Downgrade drops the index; ids stay in lower case and states stay repaired (both are valid
under the old rules; the case ids were first written in is not kept).
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEGMENT = r"[A-Za-z0-9](?:[A-Za-z0-9_:@-]|\.[A-Za-z0-9_:@-])*"
ID = re.compile(rf"{SEGMENT}(?:/{SEGMENT})*")
INDEX = "uq_models_model_id_lower"


def _problems(rows) -> list[str]:
    problems, seen = [], {}
    for pk, model_id in rows:
        if not ID.fullmatch(model_id) or len(model_id) > 200:
            problems.append(f"row {pk}: '{model_id}' breaks the id rule")
        lowered = model_id.lower()
        if lowered in seen:
            problems.append(f"row {pk}: '{model_id}' is the same id as '{seen[lowered][1]}' "
                            f"(row {seen[lowered][0]}) once ids are case-insensitive")
        seen.setdefault(lowered, (pk, model_id))
    return problems


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, model_id FROM models ORDER BY id")).all()
    problems = _problems(rows)
    if problems:
        raise RuntimeError(
            "Cannot apply the model id rule (0003): these modelIds must be renamed or removed "
            "first (ids are now case-insensitive, stored in lower case, and no segment may be "
            "empty, start or end with '.', or hold '..'):\n  " + "\n  ".join(problems))
    op.execute("UPDATE models SET model_id = lower(model_id) WHERE model_id <> lower(model_id)")
    op.execute("UPDATE model_history SET model_id = lower(model_id) "
               "WHERE model_id <> lower(model_id)")
    op.create_index(INDEX, "models", [sa.text("lower(model_id)")], unique=True)

    op.execute("UPDATE models SET is_active = false WHERE is_active AND is_deprecated")
    op.execute("UPDATE models SET is_default = false "
               "WHERE is_default AND NOT (is_active AND NOT is_deprecated)")
    op.execute(
        "UPDATE models SET is_default = true WHERE id = "
        "(SELECT min(id) FROM models WHERE is_active AND NOT is_deprecated) "
        "AND NOT EXISTS (SELECT 1 FROM models WHERE is_default)"
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="models")
