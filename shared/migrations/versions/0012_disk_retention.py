"""checkpoints: each job's checkpoint objects with their sizes (disk usage, retention)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-03 16:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'checkpoints',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('job_id', sa.Integer(), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=500), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('job_id', 'step', name='uq_checkpoint_step'),
    )
    op.create_index('ix_checkpoints_job_id', 'checkpoints', ['job_id'])


def downgrade() -> None:
    op.drop_index('ix_checkpoints_job_id', table_name='checkpoints')
    op.drop_table('checkpoints')
