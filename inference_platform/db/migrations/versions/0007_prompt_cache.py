"""cached prompt tokens in usage; a prefix hash on batch lines

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_QUEUED_BATCH_LINES = sa.text("status = 'queued' AND tier = 'batch'")


def _queue_index(*columns: object) -> None:
    op.drop_index("ix_requests_batch_queue", table_name="requests")
    op.create_index(
        "ix_requests_batch_queue",
        "requests",
        list(columns),  # type: ignore[arg-type]
        unique=False,
        postgresql_where=_QUEUED_BATCH_LINES,
    )


def upgrade() -> None:
    # Rows written before this revision served no cached tokens as far as anyone can tell.
    op.add_column(
        "usage_records",
        sa.Column("cached_tokens", sa.Integer(), nullable=False, server_default="0"),
    )
    # Lines queued before this revision keep a null hash: one group, claimed as before.
    op.add_column("requests", sa.Column("prefix_hash", sa.BigInteger(), nullable=True))
    _queue_index(
        "model",
        "deadline",
        "batch_id",
        "prefix_hash",
        sa.text("output_limit DESC NULLS FIRST"),
        "line_no",
    )


def downgrade() -> None:
    _queue_index(
        "model", "deadline", "batch_id", sa.text("output_limit DESC NULLS FIRST"), "line_no"
    )
    op.drop_column("requests", "prefix_hash")
    op.drop_column("usage_records", "cached_tokens")
