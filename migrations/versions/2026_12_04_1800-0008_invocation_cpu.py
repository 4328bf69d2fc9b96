"""invocation cpu_ms: the CPU time an invocation used (Lambda Insights' cpu_total_time, the
emulator's measurement); NULL when the platform did not report it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invocations") as batch:
        batch.add_column(sa.Column("cpu_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invocations") as batch:
        batch.drop_column("cpu_ms")
