"""curve priors: each tenant's measured memory curves per function, dataset, architecture and
task shape, so that its next job on the same work starts from them instead of a pilot

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "curve_priors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("workload_key", sa.String(length=64), nullable=False),
        sa.Column("function", sa.String(length=200), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("code_version", sa.String(length=128), nullable=False),
        sa.Column("architecture", sa.String(length=8), nullable=False),
        sa.Column("shape", sa.String(length=200), nullable=False),
        sa.Column("state", JSON_DOC, nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("source_job_id", sa.Uuid(), nullable=True),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_curve_priors_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_job_id"],
            ["jobs.id"],
            name=op.f("fk_curve_priors_source_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_curve_priors")),
        sa.UniqueConstraint(
            "tenant_id",
            "workload_key",
            "architecture",
            "shape",
            name=op.f("uq_curve_priors_tenant_id_workload_key_architecture_shape"),
        ),
    )
    with op.batch_alter_table("curve_priors", schema=None) as batch_op:
        batch_op.create_index("ix_curve_priors_source_job", ["source_job_id"], unique=False)


def downgrade() -> None:
    op.drop_table("curve_priors")
