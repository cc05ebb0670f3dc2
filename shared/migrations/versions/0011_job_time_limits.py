"""job time limits: a job's max_runtime and where it came from, a user's default; reruns that resume

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLEs, also on SQLite: a batch copy of `jobs` there would drop its dispatch trigger (0008)
    op.add_column('jobs', sa.Column('max_runtime', sa.Integer(), nullable=True))
    op.add_column('jobs', sa.Column('max_runtime_from', sa.String(length=8), nullable=True))
    op.add_column('jobs', sa.Column('resume_from', sa.Integer(), nullable=True))
    op.add_column('users', sa.Column('max_runtime', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('users', 'max_runtime')
    op.drop_column('jobs', 'resume_from')
    op.drop_column('jobs', 'max_runtime_from')
    op.drop_column('jobs', 'max_runtime')
