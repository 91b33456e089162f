"""inbox keys: copies of the tip's filter and sort values on tiprecipient, and indexes per desk

The inbox of a desk with 100 000 tips filtered and sorted a join of tip and tiprecipient (issue 4). The
values it filters and sorts by are copied onto tiprecipient, backfilled here from tip, and indexed with the
desk first, so that a page, its total and the counts per desk are read from tiprecipient's indexes alone.

The new columns are NOT NULL without a server default: no default would be a right value, and a row
written by the previous release without them would be missing from the inbox. So this migration is run
with the release that writes them (stop, migrate, start), not under the previous one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 08:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# tiprecipient column -> the tip column it copies (portal.submission.models.INBOX_COPIES, frozen here:
# a migration must not change when the model does).
_COPIES = {
    "tip_created_at": "created_at",
    "tip_status": "status",
    "category": "category",
    "municipality_id": "municipality_id",
    "assignee_id": "assignee_id",
    "acknowledge_by": "acknowledge_by",
    "feedback_by": "feedback_by",
}
_NOT_NULL = ("tip_created_at", "tip_status", "category", "municipality_id", "acknowledge_by", "feedback_by")
_INDEXES = {
    "ix_tiprecipient_inbox_created": [
        "desk_id",
        "tip_created_at",
        "tip_id",
        "tip_status",
        "acknowledge_by",
        "feedback_by",
    ],
    "ix_tiprecipient_inbox_status": [
        "desk_id",
        "tip_status",
        "tip_created_at",
        "tip_id",
        "acknowledge_by",
        "feedback_by",
    ],
    "ix_tiprecipient_inbox_category": ["desk_id", "category", "tip_created_at", "tip_id"],
    "ix_tiprecipient_inbox_municipality": ["desk_id", "municipality_id", "tip_created_at", "tip_id"],
    "ix_tiprecipient_inbox_assignee": ["desk_id", "assignee_id", "tip_created_at", "tip_id"],
}


def upgrade() -> None:
    # Nullable first, so that existing rows can be added to; NOT NULL once they are backfilled.
    with op.batch_alter_table("tiprecipient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tip_created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("tip_status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("municipality_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("acknowledge_by", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("feedback_by", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    # One correlated UPDATE, the same on SQLite and PostgreSQL; the values are copied as stored.
    tip = sa.table("tip", sa.column("id"), *(sa.column(source) for source in _COPIES.values()))
    recipient = sa.table("tiprecipient", sa.column("tip_id"), *(sa.column(column) for column in _COPIES))
    op.execute(
        sa.update(recipient).values(
            {
                column: sa.select(tip.c[source]).where(tip.c.id == recipient.c.tip_id).scalar_subquery()
                for column, source in _COPIES.items()
            }
        )
    )

    with op.batch_alter_table("tiprecipient", schema=None) as batch_op:
        for column in _NOT_NULL:
            batch_op.alter_column(column, existing_nullable=True, nullable=False)
        # Every inbox index starts with desk_id, so the index on desk_id alone has nothing left to do.
        batch_op.drop_index(batch_op.f("ix_tiprecipient_desk_id"))
        for name, columns in _INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tiprecipient", schema=None) as batch_op:
        for name in reversed(_INDEXES):
            batch_op.drop_index(name)
        batch_op.create_index(batch_op.f("ix_tiprecipient_desk_id"), ["desk_id"], unique=False)
        for column in reversed(_COPIES):
            batch_op.drop_column(column)
