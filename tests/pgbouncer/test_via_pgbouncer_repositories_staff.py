"""tests/repositories/test_staff.py through PgBouncer (POSTGRES_PGBOUNCER=true)."""

from ._rerun import rerun

rerun(globals(), "repositories/conftest.py", "repositories/test_staff.py")
