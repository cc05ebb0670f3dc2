"""a new job asks for a dispatch pass in the database itself: a trigger on INSERT

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:50:00.000000

Postgres: NOTIFY bosun_dispatch once per INSERT statement (delivered at commit). SQLite: a bump
of dispatch_state.requested, which the dispatcher loops poll. Either way a submission costs no
statement of its own to wake the dispatcher (shared.dispatch.requests).
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("""
            CREATE FUNCTION bosun_dispatch_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('bosun_dispatch', '');
                RETURN NULL;
            END $$""")
        op.execute("""
            CREATE TRIGGER jobs_dispatch_on_insert AFTER INSERT ON jobs
            FOR EACH STATEMENT EXECUTE FUNCTION bosun_dispatch_on_insert()""")
    else:
        op.execute("""
            CREATE TRIGGER jobs_dispatch_on_insert AFTER INSERT ON jobs
            BEGIN
                UPDATE dispatch_state SET requested = requested + 1 WHERE id = 1;
            END""")


def downgrade() -> None:
    op.execute('DROP TRIGGER jobs_dispatch_on_insert' + (' ON jobs' if op.get_bind().dialect.name == 'postgresql'
                                                          else ''))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION bosun_dispatch_on_insert()')
