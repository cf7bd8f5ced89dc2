"""pytest fixtures for the vendor sandbox, for interlock's tests and for users' own.

Import them into a ``conftest.py`` (or list this module in ``pytest_plugins``)::

    from interlock.sandbox.pytest import sandbox_vendors, vendors  # noqa: F401

    def test_refund(vendors):
        stripe.api_base = vendors.stripe.url
        ...

``sandbox_vendors`` starts every simulator once per session (seed 0);
``vendors`` hands them to a test after a reset (empty state, no faults, an
empty request log), so tests stay independent without paying for a start each.
Both work in sync and async tests: the simulators run in their own thread.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from interlock.sandbox.runner import run
from interlock.sandbox.vendors import Vendors


@pytest.fixture(scope="session")
def sandbox_vendors() -> Iterator[Vendors]:
    """Every simulator, served for the whole session."""
    with run() as started:
        yield started


@pytest.fixture
def vendors(sandbox_vendors: Vendors) -> Vendors:
    """The session's simulators, reset for this test."""
    sandbox_vendors.reset()
    return sandbox_vendors
