"""The public namespace is curated: this fails when it drifts."""

from __future__ import annotations

import interlock

EXPECTED = {
    "PII",
    "SLO",
    "BusinessMetric",
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
    "MissingRecord",
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
    # vendor errors raised by connectors (interlock.connectors holds the connectors)
    "CircuitOpen",
    "ConnectionPaused",
    "EgressDenied",
    "PermissionDenied",
    "ResourceNotFound",
    "VendorRejected",
    "VendorUnavailable",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(interlock.__all__) == EXPECTED
    assert len(interlock.__all__) == len(set(interlock.__all__))  # ruff RUF022 keeps it sorted


def test_every_exported_name_exists_and_errors_share_one_root() -> None:
    for name in interlock.__all__:
        assert hasattr(interlock, name), name
    for name in (
        "ConfigurationError",
        "ContractViolation",
        "LimitExceeded",
        "StoreError",
        "Permanent",
        "Retryable",
        "RateLimited",
        "NotFound",
    ):
        assert issubclass(getattr(interlock, name), interlock.InterlockError)
    for name in ("VendorUnavailable", "CircuitOpen", "ConnectionPaused"):
        assert issubclass(getattr(interlock, name), interlock.Retryable)
    assert issubclass(interlock.ConnectionPaused, interlock.RateLimited)
    for name in ("PermissionDenied", "ResourceNotFound", "VendorRejected", "EgressDenied"):
        assert issubclass(getattr(interlock, name), interlock.Permanent)
