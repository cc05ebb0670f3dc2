"""sweeps: a series of jobs from one template over axes of spec values; each child job's sweep and point

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 17:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sweeps',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('owner_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('axes', sa.JSON(), nullable=False),
        sa.Column('template', sa.JSON(), nullable=False),
        sa.Column('seed', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_sweeps_owner_id', 'sweeps', ['owner_id'])
    # plain ALTER TABLEs, also on SQLite: a batch copy of `jobs` there would drop its dispatch trigger (0008)
    if op.get_bind().dialect.name == 'sqlite':  # alembic would add the reference as a separate ALTER
        op.execute('ALTER TABLE jobs ADD COLUMN sweep_id INTEGER REFERENCES sweeps (id)')
    else:
        op.add_column('jobs', sa.Column('sweep_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_jobs_sweep_id', 'jobs', 'sweeps', ['sweep_id'], ['id'])
    op.add_column('jobs', sa.Column('sweep_point', sa.JSON(), nullable=True))
    op.create_index('ix_jobs_sweep_id', 'jobs', ['sweep_id'])


def downgrade() -> None:
    op.drop_index('ix_jobs_sweep_id', table_name='jobs')
    op.drop_column('jobs', 'sweep_point')
    if op.get_bind().dialect.name != 'sqlite':  # SQLite drops the column with its unnamed reference
        op.drop_constraint('fk_jobs_sweep_id', 'jobs', type_='foreignkey')
    op.drop_column('jobs', 'sweep_id')
    op.drop_index('ix_sweeps_owner_id', table_name='sweeps')
    op.drop_table('sweeps')
