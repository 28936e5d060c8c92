"""embeddings in a table of their own, keyed by prediction id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00.000000

An embedding is most of a prediction row's bytes and the first thing gc deletes; in its own table
that is a delete of narrow rows instead of an UPDATE rewriting wide prediction rows. Existing
embeddings move over with their prediction's time; the downgrade moves them back. On a large
SQLite store the move takes minutes and, until gc's incremental vacuum, the old column's pages
stay in the file as free pages.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_embedding",
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prediction_id", sa.String(length=36), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("created_at", "prediction_id"),
    )
    op.execute(
        "INSERT INTO prediction_embedding (created_at, prediction_id, embedding) "
        "SELECT created_at, id, embedding FROM prediction WHERE embedding IS NOT NULL "
        "ORDER BY created_at, id"
    )
    # Not a batch operation: SQLite (3.35+) drops the column in place instead of copying the
    # whole table.
    op.drop_column("prediction", "embedding")


def downgrade() -> None:
    op.add_column("prediction", sa.Column("embedding", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE prediction SET embedding = (SELECT e.embedding FROM prediction_embedding e "
        "WHERE e.created_at = prediction.created_at AND e.prediction_id = prediction.id) "
        "WHERE id IN (SELECT prediction_id FROM prediction_embedding)"
    )
    op.drop_table("prediction_embedding")
