"""tests/repositories/test_bookings.py through PgBouncer (POSTGRES_PGBOUNCER=true)."""

from ._rerun import rerun

rerun(globals(), "repositories/conftest.py", "repositories/test_bookings.py")
