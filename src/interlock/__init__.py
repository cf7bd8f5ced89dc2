"""interlock: durable, per-key ordered, idempotent reactions to business events."""

from interlock.app import Interlock
from interlock.clock import Clock, SystemClock
from interlock.contracts import PII, Contract
from interlock.errors import (
    CircuitOpen,
    ConfigurationError,
    ConnectionPaused,
    ContractViolation,
    EgressDenied,
    InterlockError,
    LimitExceeded,
    MissingRecord,
    NotFound,
    Permanent,
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    Retryable,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    VendorRejected,
    VendorUnavailable,
)
from interlock.events import Event
from interlock.flows import SLO, BusinessMetric, Flow, Retry
from interlock.limits import Limits
from interlock.steps import Context, SyncContext
from interlock.worker import Worker, WorkerConfig

__version__ = "0.1.0"

__all__ = [
    "PII",
    "SLO",
    "BusinessMetric",
    "CircuitOpen",
    "Clock",
    "ConfigurationError",
    "ConnectionPaused",
    "Context",
    "Contract",
    "ContractViolation",
    "EgressDenied",
    "Event",
    "Flow",
    "Interlock",
    "InterlockError",
    "LimitExceeded",
    "Limits",
    "MissingRecord",
    "NotFound",
    "Permanent",
    "PermissionDenied",
    "RateLimited",
    "ResourceNotFound",
    "Retry",
    "Retryable",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "SyncContext",
    "SystemClock",
    "VendorRejected",
    "VendorUnavailable",
    "Worker",
    "WorkerConfig",
    "__version__",
]
