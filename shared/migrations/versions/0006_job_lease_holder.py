"""who holds a running job's lease: a worker, the job's tiles, or the tile assembling it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('holder', sa.String(length=16), nullable=False, server_default='worker'))
    # jobs whose tiles held them were marked by names in the worker column
    op.execute("UPDATE jobs SET holder = 'tiles', worker = NULL WHERE worker = 'tiles'")
    op.execute("UPDATE jobs SET holder = 'assembly', worker = NULL WHERE worker = 'tiles:assembling'")


def downgrade() -> None:
    op.execute("UPDATE jobs SET worker = 'tiles' WHERE holder = 'tiles'")
    op.execute("UPDATE jobs SET worker = 'tiles:assembling' WHERE holder = 'assembly'")
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('holder')
