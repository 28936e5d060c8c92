"""the review queue: leases of predictions to reviewers, and where a feedback row came from

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 02:00:00.000000

Feedback rows from before stay with a NULL source: every one of them came from a user.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_lease",
        sa.Column("prediction_id", sa.String(length=36), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=False),
        sa.Column("leased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("prediction_id"),
    )
    op.create_index(op.f("ix_review_lease_reviewer"), "review_lease", ["reviewer"], unique=False)
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("source")
    op.drop_index(op.f("ix_review_lease_reviewer"), table_name="review_lease")
    op.drop_table("review_lease")
