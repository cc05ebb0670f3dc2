"""landscape tiles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 05:43:38.173116
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('points', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('values', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'index', name='uq_tile_index')
    )
    with op.batch_alter_table('tiles', schema=None) as batch_op:
        batch_op.create_index('ix_tiles_job_status', ['job_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tiles', schema=None) as batch_op:
        batch_op.drop_index('ix_tiles_job_status')

    op.drop_table('tiles')
