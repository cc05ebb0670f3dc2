"""the dataset catalog's worker-read part: FiftyOne's datasets as the last refresh found them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dataset_catalog',
        sa.Column('source', sa.String(length=16), primary_key=True),
        sa.Column('name', sa.Text(), primary_key=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('splits', sa.JSON(), nullable=False),
        sa.Column('classes', sa.JSON(), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('refreshed_by', sa.String(length=200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('dataset_catalog')
