"""worker plugins: the plugin names per group each worker's environment has (shared.plugins)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 01:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('workers', sa.Column('plugins', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    op.drop_column('workers', 'plugins')
