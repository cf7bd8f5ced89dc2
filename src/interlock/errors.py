"""The interlock error tree.

Every error interlock raises on purpose derives from :class:`InterlockError`
and carries a message that says what went wrong and how to fix it::

    InterlockError
    ├── ConfigurationError      a declaration or setting is wrong (fix the code)
    │   └── AppNotFound         an APP path (module:attribute) does not resolve
    ├── ContractViolation       a payload does not satisfy its contract
    ├── LimitExceeded           payload, step count or step result over a limit
    ├── StoreError              the store cannot do what was asked
    │   ├── StoreUnavailable    locked, unreachable or failing I/O; nothing was acknowledged
    │   ├── StoreCorrupt        the database file is not a usable interlock store
    │   └── NotFound            an id that does not exist
    └── HandlerError            control flow raised by flow code to steer retries
        ├── MissingRecord       a referenced record does not exist (yet): the flow's on_missing
        ├── Retryable           try again later (the default for unknown exceptions)
        │   ├── RateLimited     try again after ``retry_after`` seconds
        │   │   └── ConnectionPaused   a connection needs re-authorization; wait for it
        │   ├── VendorUnavailable      a vendor's 5xx, a timeout or a reset
        │   └── CircuitOpen     a connector's breaker is open: failing fast
        └── Permanent           do not retry; dead-letter the delivery
            ├── VendorRejected         a vendor's 4xx: the request itself is wrong
            ├── PermissionDenied       401/403: credentials or scopes are missing
            ├── ResourceNotFound       404/410 from a vendor
            └── EgressDenied           a URL resolves to a private or loopback address

The vendor errors (raised by connectors) carry ``connector``, ``operation``,
``status`` and the vendor's own ``code``; their message holds the vendor's
(redacted) message, so an attempt's reason says what the vendor said.

``LeaseLost`` is not an error of the user's: a worker raises it internally when
its fencing token was superseded, and the outcome is dropped.
"""

from __future__ import annotations

from typing import Any


class InterlockError(Exception):
    """Base class of every error interlock raises on purpose."""


class ConfigurationError(InterlockError):
    """A declaration or setting is wrong; the message says which and how to fix it."""


class AppNotFound(ConfigurationError):
    """An ``APP`` path (``module:attribute``) could not be imported or resolved."""


class ContractViolation(InterlockError):
    """A payload does not satisfy its contract. Never retried: it would fail again."""

    def __init__(self, message: str, *, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class LimitExceeded(InterlockError):
    """A documented limit (payload size, steps per delivery, step result size) was hit."""

    def __init__(self, message: str, *, limit: str, value: int, maximum: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.maximum = maximum


class StoreError(InterlockError):
    """The store could not complete an operation."""


class StoreUnavailable(StoreError):
    """The store is locked, unreachable or failing I/O. Nothing was acknowledged."""


class StoreCorrupt(StoreError):
    """The database is not a usable interlock store (corrupt file, foreign schema)."""


class NotFound(StoreError):
    """No record has the given id."""


class HandlerError(InterlockError):
    """Raised by flow code to tell the worker what to do with a failed attempt."""


class MissingRecord(HandlerError):
    """A record the event refers to does not exist (yet): a customer not synced, a deal
    not created. What happens is the flow's (or contract's) ``on_missing`` policy:
    ``retry`` with backoff (the default), ``dead``, ``skip``, or ``park`` until an event
    of ``wait_for`` whose fields equal ``match`` arrives, then run again::

        raise MissingRecord("deal for order 1042", wait_for=DealCreated,
                            match={"order_id": "1042"})
    """

    def __init__(
        self, what: str, *, wait_for: type[Any] | None = None, match: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"missing record: {what}")
        self.what = what
        self.wait_for = wait_for
        self.match = dict(match or {})


class Retryable(HandlerError):
    """A transient failure: the delivery is retried with backoff."""


class RateLimited(Retryable):
    """The vendor asked us to slow down: retry after ``retry_after`` seconds.

    A rate-limited attempt is recorded but does not use up the retry budget
    (``Retry.attempts``); the flow's ``max_elapsed`` still bounds it.
    """

    def __init__(self, message: str = "rate limited", *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, float(retry_after))


class Permanent(HandlerError):
    """A failure that retrying cannot fix: the delivery is dead-lettered at once."""


class LeaseLost(InterlockError):
    """The worker's lease was taken over (fencing token superseded); its outcome is dropped."""


class _VendorDetail(Exception):
    """What a connector knows about a failed call (the base of the vendor errors)."""

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.connector = connector
        self.operation = operation
        self.status = status
        self.code = code


class VendorUnavailable(_VendorDetail, Retryable):
    """A vendor answered 5xx, timed out or reset the connection: retried with backoff."""


class CircuitOpen(Retryable):
    """A connector's circuit breaker is open: the call failed fast without reaching the
    vendor. ``retry_after`` is when the breaker lets a trial call through."""

    def __init__(self, message: str, *, connector: str, retry_after: float) -> None:
        super().__init__(message)
        self.connector = connector
        self.retry_after = max(0.0, float(retry_after))


class ConnectionPaused(RateLimited):
    """A connection needs re-authorization (its refresh token was refused): its deliveries
    wait ``retry_after`` seconds and try again, without using up their retry budget, until
    an operator stores new credentials (``interlock secrets set``)."""

    def __init__(self, message: str, *, connector: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.connector = connector


class VendorRejected(_VendorDetail, Permanent):
    """A vendor refused the request itself (a 4xx such as a validation error)."""


class PermissionDenied(_VendorDetail, Permanent):
    """A vendor answered 401 or 403: the credential is wrong, revoked or lacks a scope.
    Never retried blindly; ``scope`` is what the credential was granted, when known."""

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        code: str | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(
            message, connector=connector, operation=operation, status=status, code=code
        )
        self.scope = scope


class ResourceNotFound(_VendorDetail, Permanent):
    """A vendor answered 404 or 410 (not the store's :class:`NotFound`)."""


class EgressDenied(Permanent):
    """A connector refused to connect: the host resolves to a private, loopback, link-local
    or otherwise non-public address that is not explicitly allowed."""

    def __init__(self, message: str, *, host: str, address: str) -> None:
        super().__init__(message)
        self.host = host
        self.address = address
