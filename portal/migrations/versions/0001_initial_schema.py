"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 05:35:31.898827
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "municipality",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("finnish_admin_area", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_municipality")),
    )
    with op.batch_alter_table("municipality", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_municipality_code"), ["code"], unique=True)

    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("recovery_public_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation")),
    )
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organisation_code"), ["code"], unique=True)

    op.create_table(
        "ratecounter",
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window", name=op.f("pk_ratecounter")),
    )
    op.create_table(
        "session",
        sa.Column("id_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_session")),
    )
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_last_seen_at"), ["last_seen_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_subject"), ["subject"], unique=False)

    op.create_table(
        "desk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("public_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_desk_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk")),
    )
    with op.batch_alter_table("desk", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_desk_code"), ["code"], unique=True)
        batch_op.create_index(batch_op.f("ix_desk_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "staffaccount",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("public_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("wrapped_private_key", sa.LargeBinary(), nullable=True),
        sa.Column("totp_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_staffaccount_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staffaccount")),
    )
    with op.batch_alter_table("staffaccount", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staffaccount_username"), ["username"], unique=True)

    op.create_table(
        "tip",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("case_number", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("mailbox_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("reply_code_kdf", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tipster_public_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("answers", sa.LargeBinary(), nullable=False),
        sa.Column("contact", sa.LargeBinary(), nullable=True),
        sa.Column("taken_by_phone", sa.Boolean(), nullable=False),
        sa.Column("last_tipster_activity_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("acknowledge_by", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("feedback_by", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_id"], ["municipality.id"], name=op.f("fk_tip_municipality_id_municipality")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tip")),
        sa.UniqueConstraint("mailbox_id", name=op.f("uq_tip_mailbox_id")),
    )
    with op.batch_alter_table("tip", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tip_case_number"), ["case_number"], unique=True)
        batch_op.create_index(batch_op.f("ix_tip_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_tip_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tip_municipality_id"), ["municipality_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tip_status"), ["status"], unique=False)

    op.create_table(
        "deskkeygrant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("desk_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("recovery_organisation_id", sa.Integer(), nullable=True),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["desk_id"], ["desk.id"], name=op.f("fk_deskkeygrant_desk_id_desk")),
        sa.ForeignKeyConstraint(
            ["recovery_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_deskkeygrant_recovery_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staffaccount.id"], name=op.f("fk_deskkeygrant_staff_id_staffaccount")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deskkeygrant")),
    )
    with op.batch_alter_table("deskkeygrant", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deskkeygrant_desk_id"), ["desk_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deskkeygrant_staff_id"), ["staff_id"], unique=False)

    op.create_table(
        "deskmembership",
        sa.Column("desk_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["desk_id"], ["desk.id"], name=op.f("fk_deskmembership_desk_id_desk")),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staffaccount.id"], name=op.f("fk_deskmembership_staff_id_staffaccount")
        ),
        sa.PrimaryKeyConstraint("desk_id", "staff_id", name=op.f("pk_deskmembership")),
    )
    op.create_table(
        "message",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("desk_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["desk_id"], ["desk.id"], name=op.f("fk_message_desk_id_desk")),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_message_tip_id_tip"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "route",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("desk_id", sa.Integer(), nullable=False),
        sa.Column("primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["desk_id"], ["desk.id"], name=op.f("fk_route_desk_id_desk")),
        sa.ForeignKeyConstraint(
            ["municipality_id"], ["municipality.id"], name=op.f("fk_route_municipality_id_municipality")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route")),
        sa.UniqueConstraint(
            "municipality_id", "category", "desk_id", name=op.f("uq_route_municipality_id_category_desk_id")
        ),
    )
    with op.batch_alter_table("route", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_route_desk_id"), ["desk_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_route_municipality_id"), ["municipality_id"], unique=False)

    op.create_table(
        "tiprecipient",
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("desk_id", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("added_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["desk_id"], ["desk.id"], name=op.f("fk_tiprecipient_desk_id_desk")),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_tiprecipient_tip_id_tip"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tip_id", "desk_id", name=op.f("pk_tiprecipient")),
    )
    with op.batch_alter_table("tiprecipient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tiprecipient_desk_id"), ["desk_id"], unique=False)

    op.create_table(
        "storedfile",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tip_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("header", sa.LargeBinary(), nullable=False),
        sa.Column("meta", sa.LargeBinary(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_storedfile_message_id_message"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tip.id"], name=op.f("fk_storedfile_tip_id_tip"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storedfile")),
    )
    with op.batch_alter_table("storedfile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_storedfile_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "filechunk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["storedfile.id"], name=op.f("fk_filechunk_file_id_storedfile"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filechunk")),
        sa.UniqueConstraint("file_id", "seq", name=op.f("uq_filechunk_file_id_seq")),
    )
    with op.batch_alter_table("filechunk", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_filechunk_file_id"), ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("filechunk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_filechunk_file_id"))

    op.drop_table("filechunk")
    with op.batch_alter_table("storedfile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_storedfile_tip_id"))

    op.drop_table("storedfile")
    with op.batch_alter_table("tiprecipient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tiprecipient_desk_id"))

    op.drop_table("tiprecipient")
    with op.batch_alter_table("route", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_route_municipality_id"))
        batch_op.drop_index(batch_op.f("ix_route_desk_id"))

    op.drop_table("route")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_tip_id"))

    op.drop_table("message")
    op.drop_table("deskmembership")
    with op.batch_alter_table("deskkeygrant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deskkeygrant_staff_id"))
        batch_op.drop_index(batch_op.f("ix_deskkeygrant_desk_id"))

    op.drop_table("deskkeygrant")
    with op.batch_alter_table("tip", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_status"))
        batch_op.drop_index(batch_op.f("ix_tip_municipality_id"))
        batch_op.drop_index(batch_op.f("ix_tip_created_at"))
        batch_op.drop_index(batch_op.f("ix_tip_category"))
        batch_op.drop_index(batch_op.f("ix_tip_case_number"))

    op.drop_table("tip")
    with op.batch_alter_table("staffaccount", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staffaccount_username"))

    op.drop_table("staffaccount")
    with op.batch_alter_table("desk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desk_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_desk_code"))

    op.drop_table("desk")
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_subject"))
        batch_op.drop_index(batch_op.f("ix_session_last_seen_at"))

    op.drop_table("session")
    op.drop_table("ratecounter")
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisation_code"))

    op.drop_table("organisation")
    with op.batch_alter_table("municipality", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_municipality_code"))

    op.drop_table("municipality")
