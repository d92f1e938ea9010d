"""Stopping a job: who asked, and why, on the job's row.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch: SQLite cannot drop columns in place (downgrade), and it is harmless elsewhere.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("stopped_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("stop_reason", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stop_reason")
        batch.drop_column("stopped_by")
