"""the audit trail: model events, and the monitor check that started a run

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 10:00:00.000000

A store from before keeps its history as far as it can be told: each version's registration,
and a promotion of each version that was ever champion in the order of its last promotion (so a
rollback right after the upgrade returns to the champion before, as it did before the upgrade).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILLED = "recorded by migration 0004: the change predates the audit trail"


def upgrade() -> None:
    op.create_table(
        "model_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("previous", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("check_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_model_event_version"), "model_event", ["version"], unique=False)
    with op.batch_alter_table("retrain_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_id", sa.String(length=36), nullable=True))
    _backfill()


def _backfill() -> None:
    """Events for the versions that exist: registered, then promoted as far as is known (ids
    follow the rows' order, so the history reads oldest first)."""
    columns = "created_at, kind, version, previous, actor, reason"
    values = "NULL, 'migration', :reason FROM model_version"
    for select in (
        f"SELECT created_at, 'registered', version, {values} ORDER BY number",
        f"SELECT promoted_at, 'promoted', version, {values} "
        "WHERE promoted_at IS NOT NULL ORDER BY promoted_at",
    ):
        op.execute(
            sa.text(f"INSERT INTO model_event ({columns}) {select}").bindparams(reason=BACKFILLED)
        )


def downgrade() -> None:
    with op.batch_alter_table("retrain_run", schema=None) as batch_op:
        batch_op.drop_column("check_id")
    op.drop_index(op.f("ix_model_event_version"), table_name="model_event")
    op.drop_table("model_event")
