"""tests/repositories/test_staff_schedules.py through PgBouncer (POSTGRES_PGBOUNCER=true)."""

from ._rerun import rerun

rerun(globals(), "repositories/conftest.py", "repositories/test_staff_schedules.py")
