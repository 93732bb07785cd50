"""what replicas share: the secret key's verifier and package bytes in the metadb

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metadb_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_metadb_setting")),
    )
    op.create_table(
        "software_package_chunk",
        sa.Column(
            "package_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "data", sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["software_package.id"],
            name=op.f("fk_software_package_chunk_package_id_software_package"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("package_id", "seq", name=op.f("pk_software_package_chunk")),
    )


def downgrade() -> None:
    op.drop_table("software_package_chunk")
    op.drop_table("metadb_setting")
