"""back office: audit log, invites, notes, hand-overs

New NOT NULL columns carry server defaults, so the migration runs on a database with rows while the
previous release is still serving.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 05:56:15.154073
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditentry",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("desk_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_auditentry")),
        sa.UniqueConstraint("hash", name=op.f("uq_auditentry_hash")),
    )
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auditentry_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_auditentry_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "audithead",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audithead")),
    )
    # The chain head exists from the start: concurrent first appends lock it instead of racing to create it.
    op.execute(
        sa.text("INSERT INTO audithead (id, seq, hash) VALUES (1, 0, :genesis)").bindparams(genesis=bytes(32))
    )
    op.create_table(
        "cannedreply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("desk_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(length=5000), nullable=False),
        sa.ForeignKeyConstraint(["desk_id"], ["desk.id"], name=op.f("fk_cannedreply_desk_id_desk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cannedreply")),
        sa.UniqueConstraint("desk_id", "key", "language", name=op.f("uq_cannedreply_desk_id_key_language")),
    )
    with op.batch_alter_table("cannedreply", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cannedreply_desk_id"), ["desk_id"], unique=False)

    op.create_table(
        "staffinvite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["staffaccount.id"], name=op.f("fk_staffinvite_created_by_staffaccount")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staffaccount.id"], name=op.f("fk_staffinvite_staff_id_staffaccount")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staffinvite")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staffinvite_token_hash")),
    )
    with op.batch_alter_table("staffinvite", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staffinvite_staff_id"), ["staff_id"], unique=False)

    op.create_table(
        "handover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("from_desk_id", sa.Integer(), nullable=False),
        sa.Column("to_desk_id", sa.Integer(), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["from_desk_id"], ["desk.id"], name=op.f("fk_handover_from_desk_id_desk")),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["staffaccount.id"], name=op.f("fk_handover_requested_by_staffaccount")
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_handover_tip_id_tip"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["to_desk_id"], ["desk.id"], name=op.f("fk_handover_to_desk_id_desk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover")),
    )
    with op.batch_alter_table("handover", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handover_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "tiplabel",
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_tiplabel_tip_id_tip"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tip_id", "label", name=op.f("pk_tiplabel")),
    )
    op.create_table(
        "tipnote",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staffaccount.id"], name=op.f("fk_tipnote_staff_id_staffaccount")
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_tipnote_tip_id_tip"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tipnote")),
    )
    with op.batch_alter_table("tipnote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tipnote_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "tipread",
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("read_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staffaccount.id"], name=op.f("fk_tipread_staff_id_staffaccount")
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_tipread_tip_id_tip"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tip_id", "staff_id", name=op.f("pk_tipread")),
    )
    with op.batch_alter_table("desk", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("auto_acknowledge", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("staffaccount", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default="sv"
            )
        )
        batch_op.add_column(sa.Column("enrolled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table("tip", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tip_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_tip_assignee_id_staffaccount"), "staffaccount", ["assignee_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tip", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tip_assignee_id_staffaccount"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tip_assignee_id"))
        batch_op.drop_column("closed_at")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("assignee_id")

    with op.batch_alter_table("staffaccount", schema=None) as batch_op:
        batch_op.drop_column("enrolled_at")
        batch_op.drop_column("language")
        batch_op.drop_column("totp_last_step")

    with op.batch_alter_table("desk", schema=None) as batch_op:
        batch_op.drop_column("auto_acknowledge")

    op.drop_table("tipread")
    with op.batch_alter_table("tipnote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tipnote_tip_id"))

    op.drop_table("tipnote")
    op.drop_table("tiplabel")
    with op.batch_alter_table("handover", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handover_tip_id"))

    op.drop_table("handover")
    with op.batch_alter_table("staffinvite", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staffinvite_staff_id"))

    op.drop_table("staffinvite")
    with op.batch_alter_table("cannedreply", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cannedreply_desk_id"))

    op.drop_table("cannedreply")
    op.drop_table("audithead")
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auditentry_tip_id"))
        batch_op.drop_index(batch_op.f("ix_auditentry_action"))

    op.drop_table("auditentry")
