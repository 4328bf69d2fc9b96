"""task architecture: the architecture a policy decided a task runs on (``auto`` jobs); NULL
runs it on the architecture the job spec names

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("architecture", sa.String(length=8), nullable=True))
        batch.create_check_constraint(
            op.f("ck_tasks_architecture"), "architecture IN ('x86_64', 'arm64')"
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint(op.f("ck_tasks_architecture"), type_="check")
        batch.drop_column("architecture")
