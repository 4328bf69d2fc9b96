"""dashboards: indexes for the dashboard queries (a job's invocations in order, usage over
time, jobs ended per tenant) and saved dashboards

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invocations_job_created", ["job_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_invocations_job_finished",
            ["job_id", "finished_at"],
            unique=False,
            postgresql_include=["memory_mb", "billed_ms", "compute_cost_usd", "request_cost_usd"],
        )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_tenant_finished", ["tenant_id", "finished_at"], unique=False)
    op.create_table(
        "dashboards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("document", JSON_DOC, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dashboards_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboards")),
    )
    with op.batch_alter_table("dashboards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dashboards_tenant_created", ["tenant_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("dashboards")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_tenant_finished")
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.drop_index("ix_invocations_job_finished")
        batch_op.drop_index("ix_invocations_job_created")
