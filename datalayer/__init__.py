"""datalayer: a PostgreSQL data layer behind errorkit boundaries."""
