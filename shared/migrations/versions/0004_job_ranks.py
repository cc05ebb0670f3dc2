"""multi-GPU jobs: ranks of a job's attempt; worker host and address

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_ranks',
        sa.Column('job_id', sa.Integer(), sa.ForeignKey('jobs.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('rank', sa.Integer(), primary_key=True),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=200), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_job_ranks_worker', 'job_ranks', ['worker'])
    with op.batch_alter_table('workers') as batch:
        batch.add_column(sa.Column('host', sa.String(length=200), nullable=False, server_default=''))
        batch.add_column(sa.Column('address', sa.String(length=200), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('workers') as batch:
        batch.drop_column('address')
        batch.drop_column('host')
    op.drop_index('ix_job_ranks_worker', table_name='job_ranks')
    op.drop_table('job_ranks')
