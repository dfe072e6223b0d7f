"""api keys have a role: admin or member

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keys made before roles existed could do everything: they become admin keys, so nothing
    # that worked breaks. New keys are members unless made as admins.
    op.add_column(
        "api_keys",
        sa.Column("role", sa.String(16), nullable=False, server_default="admin"),
    )
    op.alter_column("api_keys", "role", server_default="member")
    op.create_check_constraint("ck_api_keys_role", "api_keys", "role IN ('admin', 'member')")


def downgrade() -> None:
    op.drop_constraint("ck_api_keys_role", "api_keys", type_="check")
    op.drop_column("api_keys", "role")
