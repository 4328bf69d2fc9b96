"""invocation bill state: an invocation without a REPORT line is billed its request at once and
reconciled from CloudWatch Logs later

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REQUEST_PICODOLLARS = 200_000  # $0.20 per million requests, in the ledger's picodollars


def upgrade() -> None:
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bill_state", sa.String(length=8), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_invocations_bill_state"),
            "bill_state IS NULL OR bill_state IN ('final', 'pending', 'missing')",
        )
        batch_op.create_index("ix_invocations_bill_state", ["bill_state"], unique=False)
    # What was recorded before: done rows have their final bill; ambiguous ones were left out
    # of the ledger, so they are billed their request now and wait for the reconcile step.
    op.execute("UPDATE invocations SET bill_state = 'final' WHERE state = 'done'")
    op.execute(
        "UPDATE invocations SET bill_state = 'pending', compute_cost_usd = 0, "
        f"request_cost_usd = {REQUEST_PICODOLLARS} WHERE state = 'ambiguous'"
    )


def downgrade() -> None:
    # Back to leaving unreconciled ambiguous invocations out of the ledger.
    op.execute(
        "UPDATE invocations SET compute_cost_usd = NULL, request_cost_usd = NULL "
        "WHERE state = 'ambiguous' AND bill_state <> 'final'"
    )
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.drop_index("ix_invocations_bill_state")
        batch_op.drop_constraint(op.f("ck_invocations_bill_state"), type_="check")
        batch_op.drop_column("bill_state")
