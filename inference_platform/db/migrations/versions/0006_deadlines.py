"""what batches and files ask of the engine, for admission and ETAs

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What an upload asks for (lines, prompt and output tokens per model), counted while it
    # is uploaded; null for files uploaded before this revision (admitted unchecked).
    op.add_column("files", sa.Column("stats", JSONB(), nullable=True))
    # The work a batch was admitted with, and when the capacity model expects it to finish.
    op.add_column("batches", sa.Column("demand", JSONB(), nullable=True))
    op.add_column(
        "batches", sa.Column("estimated_completion_at", sa.DateTime(timezone=True), nullable=True)
    )
    # Flex jobs that ended, by when: the SLA figures read the recent ones.
    op.create_index(
        "ix_requests_flex_finished",
        "requests",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("tier = 'flex' AND batch_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_requests_flex_finished", table_name="requests")
    op.drop_column("batches", "estimated_completion_at")
    op.drop_column("batches", "demand")
    op.drop_column("files", "stats")
