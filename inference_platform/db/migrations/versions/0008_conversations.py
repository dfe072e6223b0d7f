"""conversations and their items; Message Batches' link to the batches they run as

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    now = sa.text("now()")
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("metadata", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_conversations_owner", "conversations", ["owner"])
    op.execute("CREATE SEQUENCE conversation_item_seq")
    op.create_table(
        "conversation_items",
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column(
            "seq",
            sa.BigInteger(),
            server_default=sa.text("nextval('conversation_item_seq')"),
            nullable=False,
        ),
        sa.Column("sub", sa.Integer(), server_default="0", nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=True),
        sa.Column("response_id", sa.String(length=64), nullable=True),
        sa.Column("item", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "seq", "sub"),
    )
    op.create_index(
        "ux_conversation_items_item",
        "conversation_items",
        ["conversation_id", "item_id"],
        unique=True,
        postgresql_where=sa.text("item_id IS NOT NULL"),
    )
    op.create_table(
        "message_batches",
        sa.Column("input_file_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("input_file_id"),
    )
    op.create_index("ix_message_batches_owner", "message_batches", ["owner", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_message_batches_owner", table_name="message_batches")
    op.drop_table("message_batches")
    op.drop_index("ux_conversation_items_item", table_name="conversation_items")
    op.drop_table("conversation_items")
    op.execute("DROP SEQUENCE conversation_item_seq")
    op.drop_index("ix_conversations_owner", table_name="conversations")
    op.drop_table("conversations")
