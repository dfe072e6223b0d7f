"""batch lines keep their output token limit; a batch's lines are claimed longest first

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_QUEUED_BATCH_LINES = sa.text("status = 'queued' AND tier = 'batch'")


def upgrade() -> None:
    # Lines queued before this revision keep a null limit: they are claimed first, in file
    # order, as they were.
    op.add_column("requests", sa.Column("output_limit", sa.Integer(), nullable=True))
    op.drop_index("ix_requests_batch_queue", table_name="requests")
    op.create_index(
        "ix_requests_batch_queue",
        "requests",
        ["model", "deadline", "batch_id", sa.text("output_limit DESC NULLS FIRST"), "line_no"],
        unique=False,
        postgresql_where=_QUEUED_BATCH_LINES,
    )


def downgrade() -> None:
    op.drop_index("ix_requests_batch_queue", table_name="requests")
    op.create_index(
        "ix_requests_batch_queue",
        "requests",
        ["model", "deadline", "batch_id", "line_no"],
        unique=False,
        postgresql_where=_QUEUED_BATCH_LINES,
    )
    op.drop_column("requests", "output_limit")
