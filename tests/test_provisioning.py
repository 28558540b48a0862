import psycopg


def test_suite_database_is_fresh_and_writable(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None and name[0].startswith("datalayer_test_")
        conn.execute("CREATE TABLE provisioning_probe (id int)")
        conn.execute("INSERT INTO provisioning_probe VALUES (1)")
        row = conn.execute("SELECT count(*) FROM provisioning_probe").fetchone()
        assert row == (1,)
        conn.execute("DROP TABLE provisioning_probe")
