"""Jobs, installations and installed repositories.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(200), nullable=False),
        sa.Column("number", sa.Integer, nullable=True),
        sa.Column("sender", sa.String(100), nullable=False),
        sa.Column("installation_id", sa.BigInteger, nullable=True),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("comment_id", sa.BigInteger, nullable=True),
        sa.Column("comment_kind", sa.String(32), nullable=True),
        sa.Column("head_branch", sa.String(255), nullable=True),
        sa.Column("head_sha", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_jobs_delivery_id", "jobs", ["delivery_id"], unique=True)
    op.create_index("ix_jobs_kind", "jobs", ["kind"])
    op.create_index("ix_jobs_repo", "jobs", ["repo"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "installations",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "installed_repositories",
        sa.Column("full_name", sa.String(200), primary_key=True),
        sa.Column("installation_id", sa.BigInteger, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_installed_repositories_installation_id", "installed_repositories", ["installation_id"]
    )


def downgrade() -> None:
    op.drop_table("installed_repositories")
    op.drop_table("installations")
    op.drop_table("jobs")
