"""shadows: a challenger mirroring the champion's requests; the prediction a shadow one mirrors

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:00:00.000000

Canaries from before are canaries (`mode` defaults to it); predictions from before mirror none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("canary", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=16), nullable=False, server_default="canary")
        )
    with op.batch_alter_table("prediction", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shadow_of", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_prediction_shadow_of", ["shadow_of"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prediction", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_shadow_of")
        batch_op.drop_column("shadow_of")
    with op.batch_alter_table("canary", schema=None) as batch_op:
        batch_op.drop_column("mode")
