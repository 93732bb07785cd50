"""console session epoch per user, and a label per parallel branch of a task

Every user starts at epoch 0: a console cookie made before this revision carries no epoch and
is refused, so its user logs in again once. Subtasks made before it have no branch label.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "iam_user",
        sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "subtask_instance",
        sa.Column("branch_label", sa.String(length=255), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("subtask_instance") as batch:
        batch.drop_column("branch_label")
    with op.batch_alter_table("iam_user") as batch:
        batch.drop_column("session_epoch")
