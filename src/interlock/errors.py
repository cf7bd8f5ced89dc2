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
        ├── Retryable           try again later (the default for unknown exceptions)
        │   └── RateLimited     try again after ``retry_after`` seconds
        └── Permanent           do not retry; dead-letter the delivery

``LeaseLost`` is not an error of the user's: a worker raises it internally when
its fencing token was superseded, and the outcome is dropped.
"""

from __future__ import annotations


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
