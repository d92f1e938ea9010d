"""Maintenance: the task of a job, and each repository's schedule.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("task", sa.String(64), nullable=True))
    op.create_table(
        "maintenance_schedules",
        sa.Column("repo", sa.String(200), primary_key=True),
        sa.Column("config_sha", sa.String(64), nullable=True),
        sa.Column("tasks", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("maintenance_schedules")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("task")
