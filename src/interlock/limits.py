"""Explicit limits, enforced with errors that name the limit and how to raise it."""

from __future__ import annotations

from dataclasses import dataclass

from interlock.errors import LimitExceeded


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-app limits. Pass ``Interlock(..., limits=Limits(max_payload_bytes=...))`` to change."""

    max_payload_bytes: int = 1024 * 1024
    max_steps_per_delivery: int = 1000
    max_step_result_bytes: int = 256 * 1024

    def check(self, limit: str, value: int) -> None:
        maximum = int(getattr(self, limit))
        if value > maximum:
            raise LimitExceeded(
                f"{limit.replace('_', ' ')}: {value:,} is over the limit of {maximum:,} "
                f"(raise it with Limits({limit}=...) if this is expected)",
                limit=limit,
                value=value,
                maximum=maximum,
            )
