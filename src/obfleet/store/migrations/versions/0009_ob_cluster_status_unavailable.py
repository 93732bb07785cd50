"""an OceanBase cluster record reads UNAVAILABLE, not RUNNING

Revision ID: 0009
Revises: 0008

obfleet records existing OceanBase clusters and never connects to them, so it cannot say one is
RUNNING. Records written with the old default are moved to UNAVAILABLE, the value of OCP's cluster
status enum for a cluster whose state the platform cannot get.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OB_CLUSTER = sa.table("ob_cluster", sa.column("status", sa.String(16)))


def upgrade() -> None:
    op.execute(
        OB_CLUSTER.update().where(OB_CLUSTER.c.status == "RUNNING").values(status="UNAVAILABLE")
    )


def downgrade() -> None:
    op.execute(
        OB_CLUSTER.update().where(OB_CLUSTER.c.status == "UNAVAILABLE").values(status="RUNNING")
    )
