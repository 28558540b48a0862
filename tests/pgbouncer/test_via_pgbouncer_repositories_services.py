"""tests/repositories/test_services.py through PgBouncer (POSTGRES_PGBOUNCER=true)."""

from ._rerun import rerun

rerun(globals(), "repositories/conftest.py", "repositories/test_services.py")
