"""statistics: tipfact, one coarse row per tip and receiving desk, which outlives the tip

Backfilled from the tips and their desks as they stand. The previous release does not write facts, so a
tip it stored after the backfill would have none: run this migration with the release that writes them
(stop, migrate, start), as for 0003.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 08:40:00.000000
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 1000


def _day(value: datetime.datetime | None) -> datetime.date | None:
    """The UTC day of a stored time (portal.stats.facts.day, frozen here)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC)
    return value.date()


def upgrade() -> None:
    op.create_table(
        "tipfact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("desk_id", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("counts_tip", sa.Boolean(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("taken_by_phone", sa.Boolean(), nullable=False),
        sa.Column("acknowledged_on", sa.Date(), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(["desk_id"], ["desk.id"], name=op.f("fk_tipfact_desk_id_desk")),
        sa.ForeignKeyConstraint(
            ["municipality_id"], ["municipality.id"], name=op.f("fk_tipfact_municipality_id_municipality")
        ),
        # Retention deletes the tip; its facts stay, pointing at nothing (issue 5).
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_tipfact_tip_id_tip"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tipfact")),
        sa.UniqueConstraint("tip_id", "desk_id", name=op.f("uq_tipfact_tip_id_desk_id")),
    )
    with op.batch_alter_table("tipfact", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tipfact_closed_on"), ["closed_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_tipfact_received_on"), ["received_on"], unique=False)
    _backfill()


def _backfill() -> None:
    """One fact per tip and desk, the lowest desk id counting the tip (as portal.stats.facts does)."""
    tip = sa.table(
        "tip",
        sa.column("id", sa.String()),
        sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
        sa.column("category", sa.String()),
        sa.column("municipality_id", sa.Integer()),
        sa.column("taken_by_phone", sa.Boolean()),
        sa.column("acknowledged_at", sqlmodel.sql.sqltypes.UTCDateTime()),
        sa.column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime()),
        sa.column("outcome", sa.String()),
    )
    recipient = sa.table(
        "tiprecipient",
        sa.column("tip_id", sa.String()),
        sa.column("desk_id", sa.Integer()),
        sa.column("reason"),
    )
    fact = sa.table(
        "tipfact",
        sa.column("tip_id", sa.String()),
        sa.column("desk_id", sa.Integer()),
        sa.column("reason", sa.String()),
        sa.column("counts_tip", sa.Boolean()),
        sa.column("received_on", sa.Date()),
        sa.column("category", sa.String()),
        sa.column("municipality_id", sa.Integer()),
        sa.column("taken_by_phone", sa.Boolean()),
        sa.column("acknowledged_on", sa.Date()),
        sa.column("closed_on", sa.Date()),
        sa.column("outcome", sa.String()),
    )
    conn = op.get_bind()
    # Small columns only (no envelopes), read at once: the inserts below share the connection.
    rows = conn.execute(
        sa.select(tip, recipient.c.desk_id, recipient.c.reason)
        .join(recipient, recipient.c.tip_id == tip.c.id)
        .order_by(tip.c.id, recipient.c.desk_id)
    ).all()
    batch: list[dict[str, object]] = []
    previous_tip = None
    for row in rows:
        batch.append(
            {
                "tip_id": row.id,
                "desk_id": row.desk_id,
                "reason": row.reason,
                "counts_tip": row.id != previous_tip,
                "received_on": _day(row.created_at),
                "category": row.category,
                "municipality_id": row.municipality_id,
                "taken_by_phone": bool(row.taken_by_phone),
                "acknowledged_on": _day(row.acknowledged_at),
                "closed_on": _day(row.closed_at),
                "outcome": row.outcome,
            }
        )
        previous_tip = row.id
        if len(batch) == BATCH:
            op.bulk_insert(fact, batch)
            batch = []
    if batch:
        op.bulk_insert(fact, batch)


def downgrade() -> None:
    with op.batch_alter_table("tipfact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tipfact_received_on"))
        batch_op.drop_index(batch_op.f("ix_tipfact_closed_on"))

    op.drop_table("tipfact")
