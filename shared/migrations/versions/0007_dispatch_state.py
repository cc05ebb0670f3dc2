"""the dispatcher's state: requested passes and the last pass's decisions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 23:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'dispatch_state',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('requested', sa.BigInteger(), nullable=False),
        sa.Column('planned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('entries', sa.JSON(), nullable=False),
        sa.Column('free_slots', sa.JSON(), nullable=False),
        sa.Column('usage', sa.JSON(), nullable=False),
    )
    op.bulk_insert(table, [{'id': 1, 'requested': 0, 'planned_at': None, 'digest': '', 'entries': [], 'free_slots': {},
                            'usage': {}}])


def downgrade() -> None:
    op.drop_table('dispatch_state')
