"""scheduling: job gpus, hold and preemption flags; per-user limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('gpus', sa.Integer(), nullable=False, server_default='1'))
        batch.add_column(sa.Column('held', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('preempt_requested', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('preempted_by', sa.Integer(), nullable=True))
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('max_gpus', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('max_queued_jobs', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('max_queued_jobs')
        batch.drop_column('max_gpus')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('preempted_by')
        batch.drop_column('preempt_requested')
        batch.drop_column('held')
        batch.drop_column('gpus')
