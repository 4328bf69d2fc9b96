"""dashboard indexes: a job's invocations in order, usage over time, jobs ended per tenant

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_tenant_finished")
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.drop_index("ix_invocations_job_finished")
        batch_op.drop_index("ix_invocations_job_created")
