"""jobs' tags (a table, so jobs are listed by tag with an index) and notes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_tags',
        sa.Column('job_id', sa.Integer(), sa.ForeignKey('jobs.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('tag', sa.String(length=64), primary_key=True),
    )
    op.create_index('ix_job_tags_tag', 'job_tags', ['tag'])
    # a plain ALTER TABLE, also on SQLite: a batch copy of `jobs` there would drop its dispatch trigger (0008)
    op.add_column('jobs', sa.Column('notes', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    op.drop_column('jobs', 'notes')
    op.drop_index('ix_job_tags_tag', table_name='job_tags')
    op.drop_table('job_tags')
