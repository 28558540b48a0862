"""tests/test_facade_boundary.py through PgBouncer (POSTGRES_PGBOUNCER=true)."""

from ._rerun import rerun

rerun(globals(), "test_facade_boundary.py")
