"""retention: each tip's deletion date, rules per desk and outcome, legal holds

`tip.delete_after` is added empty. Closed tips that already exist get their date from the first
`lykta purge` (portal.retention.purge dates undated closed tips before deleting anything), by the rules
as they are then; open tips have none by rule. So nothing is deleted by the migration itself, and the
previous release keeps running against it (it neither reads nor writes the new column and tables).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 08:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retentionrule",
        sa.Column("desk_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["desk_id"], ["desk.id"], name=op.f("fk_retentionrule_desk_id_desk"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("desk_id", "outcome", name=op.f("pk_retentionrule")),
    )
    op.create_table(
        "legalhold",
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("set_by", sa.Integer(), nullable=False),
        sa.Column("set_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_by"], ["staffaccount.id"], name=op.f("fk_legalhold_set_by_staffaccount")
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_legalhold_tip_id_tip"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tip_id", name=op.f("pk_legalhold")),
    )
    with op.batch_alter_table("tip", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delete_after", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tip_delete_after"), ["delete_after"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tip", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_delete_after"))
        batch_op.drop_column("delete_after")
    op.drop_table("legalhold")
    op.drop_table("retentionrule")
