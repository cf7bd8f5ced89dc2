"""Vendors' rate-limit signals: the header readers, and a vendor connector that reads
Shopify's call-limit header and slows down before the bucket overflows."""

from __future__ import annotations

from email.utils import formatdate

import httpx
import pytest

from interlock.connectors import (
    ApiKey,
    HttpConnector,
    Rate,
    RateSignal,
    allow_egress,
    call_limit,
    disallow_egress,
)
from interlock.connectors.signals import reset_seconds, retry_after
from interlock.sandbox import ShopifySimulator, serve


def test_standard_headers() -> None:
    signal = RateSignal.from_headers(
        httpx.Headers(
            {"RateLimit-Limit": "600", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"}
        )
    )
    assert signal == RateSignal(600, 0, 7, None) and signal.exhausted()
    legacy = RateSignal.from_headers(
        httpx.Headers({"X-RateLimit-Remaining": "12", "Retry-After": "3"})
    )
    assert (legacy.remaining, legacy.retry_after, legacy.exhausted(10)) == (12, 3, False)
    assert RateSignal.from_headers(httpx.Headers({})) == RateSignal()


def test_retry_after_as_a_date_and_resets_as_epoch_times() -> None:
    now = 1_800_000_000.0
    header = httpx.Headers({"Retry-After": formatdate(now + 30, usegmt=True)})
    assert retry_after(header, now) == 30
    assert reset_seconds(str(int(now + 42)), now) == 42
    assert reset_seconds("5", now) == 5
    assert retry_after(httpx.Headers({"Retry-After": "soon"}), now) is None


def test_call_limit_headers() -> None:
    assert call_limit("39/40", leak_per_second=2.0) == RateSignal(40, 1, 0.0, None)
    full = call_limit("40/40", leak_per_second=2.0, reserve=2)
    assert (full.remaining, full.reset_after) == (0, 1.5)
    assert call_limit(None, leak_per_second=2.0) == RateSignal()


class ShopifyLike(HttpConnector):
    """What a vendor connector does: read its own rate-limit header."""

    rate_reserve = 1.0

    def rate_signal(self, response: httpx.Response) -> RateSignal:
        header = response.headers.get("x-shopify-shop-api-call-limit")
        return call_limit(header, leak_per_second=10.0, reserve=self.rate_reserve)


async def test_a_vendor_bucket_is_never_overflowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_SHOP_TOKEN", "shpat_sandbox")
    async with serve((ShopifySimulator(bucket=4, leak_per_second=10.0),)) as vendors:
        shop = vendors.shopify
        allow_egress(shop.url)
        connector = ShopifyLike(
            "shop",
            base_url=shop.url + "/admin/api/2024-10",
            auth=ApiKey(secret="shop-token", header="X-Shopify-Access-Token"),
            rate=Rate(1000, per="1s"),  # far above the vendor's: its header does the pacing
        )
        try:
            for _ in range(12):
                await connector.get("/orders.json")
        finally:
            await connector.aclose()
            disallow_egress(shop.url)
    statuses = [e.status for e in shop.requests.all()]
    assert statuses == [200] * 12, "paused before the bucket filled: no 429"
    spread = shop.requests.all()[-1].at - shop.requests.all()[0].at
    assert spread >= (12 - 4) / 10 * 0.8
