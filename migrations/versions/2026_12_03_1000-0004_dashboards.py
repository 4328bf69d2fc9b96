"""dashboards: indexes for the dashboard queries (a job's invocations in order, usage over
time, jobs ended per tenant), hourly usage rollups kept by triggers, saved dashboards, and
webhooks with their deliveries

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# The hour an invocation's bill counts in, and its contribution to the rollup.
_PG_HOUR = "CAST(FLOOR(date_part('epoch', {row}.finished_at) / 3600) AS BIGINT)"
_SQLITE_HOUR = "(CAST(strftime('%s', {row}.finished_at) AS INTEGER) / 3600)"
_BILLED = "{row}.compute_cost_usd IS NOT NULL AND {row}.finished_at IS NOT NULL"
_WATCHED = "compute_cost_usd, request_cost_usd, billed_ms, memory_mb, finished_at, job_id"


def _values(row: str, hour: str) -> str:
    return (
        f"{row}.job_id, {hour.format(row=row)}, {row}.memory_mb, {row}.compute_cost_usd, "
        f"COALESCE({row}.request_cost_usd, 0), "
        f"CAST({row}.memory_mb AS BIGINT) * COALESCE({row}.billed_ms, 0), 1"
    )


_UPSERT = (
    "ON CONFLICT (job_id, hour, memory_mb) DO UPDATE SET "
    "compute_usd = usage_hours.compute_usd + excluded.compute_usd, "
    "request_usd = usage_hours.request_usd + excluded.request_usd, "
    "mb_ms = usage_hours.mb_ms + excluded.mb_ms, "
    "invocations = usage_hours.invocations + excluded.invocations"
)
_COLUMNS = "usage_hours (job_id, hour, memory_mb, compute_usd, request_usd, mb_ms, invocations)"


def _subtract_old(hour: str) -> str:
    return (
        "UPDATE usage_hours SET compute_usd = compute_usd - OLD.compute_cost_usd, "
        "request_usd = request_usd - COALESCE(OLD.request_cost_usd, 0), "
        "mb_ms = mb_ms - CAST(OLD.memory_mb AS BIGINT) * COALESCE(OLD.billed_ms, 0), "
        "invocations = invocations - 1 "
        f"WHERE job_id = OLD.job_id AND hour = {hour.format(row='OLD')} "
        "AND memory_mb = OLD.memory_mb"
    )


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION usage_hours_apply() RETURNS trigger AS $$
            BEGIN
              IF TG_OP = 'UPDATE' AND {_BILLED.format(row="OLD")} THEN
                {_subtract_old(_PG_HOUR)};
              END IF;
              IF {_BILLED.format(row="NEW")} THEN
                INSERT INTO {_COLUMNS} VALUES ({_values("NEW", _PG_HOUR)}) {_UPSERT};
              END IF;
              RETURN NULL;
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER invocations_usage_hours AFTER INSERT OR UPDATE OF {_WATCHED} "
            "ON invocations FOR EACH ROW EXECUTE FUNCTION usage_hours_apply()"
        )
        hour = _PG_HOUR
    else:
        op.execute(
            "CREATE TRIGGER invocations_usage_hours_insert AFTER INSERT ON invocations "
            f"WHEN {_BILLED.format(row='NEW')} BEGIN "
            f"INSERT INTO {_COLUMNS} VALUES ({_values('NEW', _SQLITE_HOUR)}) {_UPSERT}; END"
        )
        op.execute(
            f"CREATE TRIGGER invocations_usage_hours_update AFTER UPDATE OF {_WATCHED} "
            "ON invocations BEGIN "
            f"{_subtract_old(_SQLITE_HOUR)} AND {_BILLED.format(row='OLD')}; "
            f"INSERT INTO {_COLUMNS} SELECT {_values('NEW', _SQLITE_HOUR)} "
            f"WHERE {_BILLED.format(row='NEW')} {_UPSERT}; END"
        )
        hour = _SQLITE_HOUR
    # what was billed before this migration
    op.execute(
        f"INSERT INTO {_COLUMNS} "
        f"SELECT job_id, {hour.format(row='invocations')}, memory_mb, SUM(compute_cost_usd), "
        "SUM(COALESCE(request_cost_usd, 0)), "
        "SUM(CAST(memory_mb AS BIGINT) * COALESCE(billed_ms, 0)), COUNT(*) FROM invocations "
        f"WHERE {_BILLED.format(row='invocations')} "
        f"GROUP BY job_id, {hour.format(row='invocations')}, memory_mb"
    )


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS invocations_usage_hours ON invocations")
        op.execute("DROP FUNCTION IF EXISTS usage_hours_apply()")
    else:
        op.execute("DROP TRIGGER IF EXISTS invocations_usage_hours_insert")
        op.execute("DROP TRIGGER IF EXISTS invocations_usage_hours_update")


def upgrade() -> None:
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invocations_job_created", ["job_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_invocations_finished", ["finished_at"], unique=False)
        batch_op.create_index(
            "ix_invocations_job_finished",
            ["job_id", "finished_at"],
            unique=False,
            postgresql_include=["memory_mb", "billed_ms", "compute_cost_usd", "request_cost_usd"],
        )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_tenant_finished", ["tenant_id", "finished_at"], unique=False)
    op.create_table(
        "usage_hours",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("compute_usd", sa.BigInteger(), nullable=False),
        sa.Column("request_usd", sa.BigInteger(), nullable=False),
        sa.Column("mb_ms", sa.BigInteger(), nullable=False),
        sa.Column("invocations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_usage_hours_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "hour", "memory_mb", name=op.f("pk_usage_hours")),
    )
    _create_triggers()
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


    op.create_table(
        "webhooks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhooks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_webhooks_tenant_id")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", JSON_DOC, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name=op.f("ck_webhook_deliveries_state")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_webhook_deliveries_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhook_deliveries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.id"], name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "webhook_id", "job_id", name=op.f("uq_webhook_deliveries_webhook_id_job_id")
        ),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(
            "ix_webhook_deliveries_tenant_created", ["tenant_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("dashboards")
    _drop_triggers()
    op.drop_table("usage_hours")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_tenant_finished")
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.drop_index("ix_invocations_job_finished")
        batch_op.drop_index("ix_invocations_finished")
        batch_op.drop_index("ix_invocations_job_created")
