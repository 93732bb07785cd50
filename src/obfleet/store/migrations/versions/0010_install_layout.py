"""install layout per OBProxy cluster (install path, run-as user) and revealable credentials

Existing clusters keep the layout they were installed with: /home/admin, run as root.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "obproxy_cluster",
        sa.Column(
            "install_path", sa.String(length=255), nullable=False, server_default="/home/admin"
        ),
    )
    op.add_column(
        "obproxy_cluster",
        sa.Column("run_user", sa.String(length=32), nullable=False, server_default="root"),
    )
    op.add_column(
        "credential",
        sa.Column("revealable", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("credential") as batch:
        batch.drop_column("revealable")
    with op.batch_alter_table("obproxy_cluster") as batch:
        batch.drop_column("run_user")
        batch.drop_column("install_path")
