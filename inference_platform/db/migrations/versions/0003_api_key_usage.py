"""the API key that made each request, batch and usage row

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = ("requests", "batches", "usage_records")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("api_key_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        op.drop_column(table, "api_key_id")
