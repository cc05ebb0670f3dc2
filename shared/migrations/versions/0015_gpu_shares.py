"""small jobs share a GPU: jobs.gpus becomes a float (0.5 is half a GPU), workers report free GPU memory

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 01:45:00.000000

On SQLite the column is replaced by plain ALTER TABLEs (add, copy, drop, rename): a batch copy
of `jobs` would drop its dispatch trigger (0008) and rewrite its references (0013).
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def _retype_gpus(old: sa.types.TypeEngine, new: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        declared = 'FLOAT' if isinstance(new, sa.Float) else 'INTEGER'
        op.execute(f"ALTER TABLE jobs ADD COLUMN gpus_retyped {declared} NOT NULL DEFAULT '1'")
        op.execute('UPDATE jobs SET gpus_retyped = gpus')
        op.execute('ALTER TABLE jobs DROP COLUMN gpus')
        op.execute('ALTER TABLE jobs RENAME COLUMN gpus_retyped TO gpus')
    else:
        op.alter_column('jobs', 'gpus', existing_type=old, type_=new, existing_nullable=False,
                        postgresql_using='gpus::double precision' if isinstance(new, sa.Float)
                        else 'ceil(gpus)::integer')


def upgrade() -> None:
    _retype_gpus(sa.Integer(), sa.Float())
    op.add_column('workers', sa.Column('gpu_free_mb', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('workers', 'gpu_free_mb')
    op.execute('UPDATE jobs SET gpus = 1 WHERE gpus > 0 AND gpus < 1')  # a share comes back as a whole GPU
    _retype_gpus(sa.Float(), sa.Integer())
