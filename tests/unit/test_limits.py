from __future__ import annotations

import pytest

from interlock import LimitExceeded, Limits


def test_defaults() -> None:
    limits = Limits()
    assert limits.max_payload_bytes == 1024 * 1024
    assert limits.max_steps_per_delivery == 1000
    assert limits.max_step_result_bytes == 256 * 1024


def test_values_at_the_limit_pass() -> None:
    Limits(max_payload_bytes=10).check("max_payload_bytes", 10)


def test_over_the_limit_says_which_limit_and_how_to_raise_it() -> None:
    with pytest.raises(LimitExceeded) as info:
        Limits(max_payload_bytes=1000).check("max_payload_bytes", 123456)
    exc = info.value
    assert (exc.limit, exc.value, exc.maximum) == ("max_payload_bytes", 123456, 1000)
    assert str(exc) == (
        "max payload bytes: 123,456 is over the limit of 1,000 "
        "(raise it with Limits(max_payload_bytes=...) if this is expected)"
    )
