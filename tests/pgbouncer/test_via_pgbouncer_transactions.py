"""tests/test_transactions.py through PgBouncer (POSTGRES_PGBOUNCER=true)."""

from ._rerun import rerun

rerun(globals(), "test_transactions.py")
