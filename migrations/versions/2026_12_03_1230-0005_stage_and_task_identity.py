"""stage and task identity as columns: stages.round (a training round's number, an HPO rung's
index in its bracket) and tasks.worker (a training worker's index), backfilled from the names
they were parsed out of before ("round-3", "b1-rung-2", "worker-007")

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:30:00+00:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRAILING_NUMBER = re.compile(r"-(\d+)$")


def upgrade() -> None:
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round", sa.Integer(), nullable=True))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.Integer(), nullable=True))
    # Backfill per distinct name (a handful), not per row: the workflows named every round
    # "round-<r>", every rung "[b<k>-]rung-<i>" and every worker "worker-<w>".
    bind = op.get_bind()
    names = bind.execute(
        sa.text("SELECT DISTINCT name FROM stages WHERE kind IN ('round', 'rung')")
    ).scalars()
    for name in list(names):
        match = _TRAILING_NUMBER.search(name)
        if match is not None:
            bind.execute(
                sa.text(
                    "UPDATE stages SET round = :number "
                    "WHERE kind IN ('round', 'rung') AND name = :name"
                ),
                {"number": int(match.group(1)), "name": name},
            )
    keys = bind.execute(
        sa.text(
            "SELECT DISTINCT key FROM tasks WHERE key LIKE 'worker-%' "
            "AND stage_id IN (SELECT id FROM stages WHERE kind = 'round')"
        )
    ).scalars()
    for key in list(keys):
        match = _TRAILING_NUMBER.search(key)
        if match is not None:
            bind.execute(
                sa.text(
                    "UPDATE tasks SET worker = :number WHERE key = :key "
                    "AND stage_id IN (SELECT id FROM stages WHERE kind = 'round')"
                ),
                {"number": int(match.group(1)), "key": key},
            )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("worker")
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.drop_column("round")
