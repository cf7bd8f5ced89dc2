"""Secrets by name, never in code.

``resolve_secret("shopify-webhook-secret")`` reads the environment variable
``INTERLOCK_SECRET_SHOPIFY_WEBHOOK_SECRET``. (An encrypted secrets store with
rotation joins this seam later; callers only ever ask by name.)
"""

from __future__ import annotations

import os
import re

from interlock.errors import ConfigurationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def env_name(name: str) -> str:
    """The environment variable that holds secret ``name``."""
    if not _NAME.match(name):
        raise ConfigurationError(
            f"secret name {name!r} must be letters, digits, '-', '_' or '.', e.g. "
            "'shopify-webhook-secret'"
        )
    return "INTERLOCK_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def resolve_secret(name: str) -> str:
    """The value of secret ``name``; a clear error names the variable to set if it is missing."""
    var = env_name(name)
    value = os.environ.get(var)
    if not value:
        raise ConfigurationError(f"secret {name!r} is not set: put it in the environment as {var}")
    return value
