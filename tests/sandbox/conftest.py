"""The sandbox's own fixtures, imported the way users import them."""

from __future__ import annotations

from interlock.sandbox.pytest import sandbox_vendors, vendors

__all__ = ["sandbox_vendors", "vendors"]
