"""interlock: durable, per-key ordered, idempotent reactions to business events."""

from interlock.app import Interlock
from interlock.clock import Clock, SystemClock
from interlock.contracts import PII, Contract
from interlock.errors import (
    ConfigurationError,
    ContractViolation,
    InterlockError,
    LimitExceeded,
    NotFound,
    Permanent,
    RateLimited,
    Retryable,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
)
from interlock.events import Event
from interlock.flows import SLO, Flow, Retry
from interlock.limits import Limits
from interlock.steps import Context, SyncContext
from interlock.worker import Worker, WorkerConfig

__version__ = "0.1.0"

__all__ = [
    "PII",
    "SLO",
    "Clock",
    "ConfigurationError",
    "Context",
    "Contract",
    "ContractViolation",
    "Event",
    "Flow",
    "Interlock",
    "InterlockError",
    "LimitExceeded",
    "Limits",
    "NotFound",
    "Permanent",
    "RateLimited",
    "Retry",
    "Retryable",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "SyncContext",
    "SystemClock",
    "Worker",
    "WorkerConfig",
    "__version__",
]
