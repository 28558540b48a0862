"""datalayer: a PostgreSQL data layer behind errorkit boundaries."""

from datalayer._budget import Budget, check_budget
from datalayer._config import Settings
from datalayer._database import Database
from datalayer._database_async import AsyncDatabase
from datalayer._facade import DataLayer
from datalayer._facade_async import AsyncDataLayer
from datalayer._migrate import migrate
from datalayer._migrate_async import migrate_async
from datalayer._policy import HealthReport
from datalayer.errors import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    QueryTimeoutError,
    TransientError,
    ValidationError,
)
from datalayer.whatsapp import (
    AsyncAuthStateStore,
    AuthStateStore,
    check_session_health,
    check_session_health_async,
    cleanup_expired_keys,
    cleanup_expired_keys_async,
)

__all__ = [
    "AsyncAuthStateStore",
    "AsyncDataLayer",
    "AsyncDatabase",
    "AuthStateStore",
    "Budget",
    "ConflictError",
    "DataLayer",
    "DataLayerError",
    "Database",
    "HealthReport",
    "NotFoundError",
    "QueryTimeoutError",
    "Settings",
    "TransientError",
    "ValidationError",
    "check_budget",
    "check_session_health",
    "check_session_health_async",
    "cleanup_expired_keys",
    "cleanup_expired_keys_async",
    "migrate",
    "migrate_async",
]
