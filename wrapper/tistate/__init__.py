"""tistate: task-instance state transitions and asset events inside PostgreSQL."""

from __future__ import annotations

from .client import AsyncClient, Client
from .errors import (
    DatabaseError,
    ForbiddenError,
    GoneError,
    InvalidPayloadError,
    InvalidStateError,
    LockTimeoutError,
    NotFoundError,
    PoolExhaustedError,
    RetryableError,
    SchemaOutdatedError,
    TistateError,
)
from .models import (
    AssetProfile,
    DagDefinition,
    TIEnterRunningPayload,
    TIStateUpdate,
    TISuccessStatePayload,
    TITerminalStatePayload,
)

__version__ = "0.4.0"

__all__ = [
    "AssetProfile",
    "AsyncClient",
    "Client",
    "DagDefinition",
    "DatabaseError",
    "ForbiddenError",
    "GoneError",
    "InvalidPayloadError",
    "InvalidStateError",
    "LockTimeoutError",
    "NotFoundError",
    "PoolExhaustedError",
    "RetryableError",
    "SchemaOutdatedError",
    "TIEnterRunningPayload",
    "TIStateUpdate",
    "TISuccessStatePayload",
    "TITerminalStatePayload",
    "TistateError",
    "__version__",
]
