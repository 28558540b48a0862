"""datalayer: a PostgreSQL data layer behind errorkit boundaries."""

from datalayer._budget import Budget, check_budget
from datalayer._config import Settings
from datalayer._database import Database
from datalayer._facade import DataLayer, HealthReport
from datalayer._migrate import migrate
from datalayer.errors import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    QueryTimeoutError,
    TransientError,
    ValidationError,
)
from datalayer.whatsapp import AuthStateStore, check_session_health, cleanup_expired_keys

__all__ = [
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
    "cleanup_expired_keys",
    "migrate",
]
