"""Starting and stopping simulators: run(), serve(), the fixtures, and the Vendors object."""

from __future__ import annotations

import socket

import httpx
import pytest

from interlock.errors import ConfigurationError
from interlock.sandbox import ALL, PORT_OFFSETS, StripeSimulator, Vendors, run, serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_run_serves_each_vendor_on_its_own_port_and_stops() -> None:
    with run(("stripe", "slack"), seed=3) as vendors:
        urls = vendors.urls
        assert set(urls) == {"stripe", "slack"}
        assert len(set(urls.values())) == 2
        assert httpx.post(urls["slack"] + "/api/auth.test").json()["error"] == "not_authed"
        with pytest.raises(ConfigurationError, match="not running"):
            vendors.hubspot  # noqa: B018
    with pytest.raises(httpx.ConnectError):
        httpx.get(urls["stripe"] + "/v1/customers")


def test_a_seed_makes_ids_repeatable() -> None:
    def first_id() -> str:
        with run(("stripe",), seed=11) as vendors:
            made = httpx.post(
                vendors.stripe.url + "/v1/customers",
                headers={"Authorization": "Bearer sk_test_sandbox"},
            )
            return str(made.json()["id"])

    assert first_id() == first_id()


def test_port_base_fixes_the_ports() -> None:
    base = free_port()
    with run(("stripe",), port_base=base) as vendors:
        assert vendors.stripe.url == f"http://127.0.0.1:{base + PORT_OFFSETS['stripe']}"
        with (
            pytest.raises(ConfigurationError, match="cannot listen"),
            run(("stripe",), port_base=base),
        ):
            pass


def test_bad_vendor_lists_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="no sandbox simulator named"):
        run(("paypal",)).__enter__()
    with pytest.raises(ConfigurationError, match="served once"):
        run(("stripe", StripeSimulator())).__enter__()


async def test_serve_runs_in_the_current_event_loop() -> None:
    async with serve(("generic",)) as vendors:
        async with httpx.AsyncClient(base_url=vendors.generic.url) as client:
            made = await client.post(
                "/v1/notes", json={"text": "hi"}, headers={"X-API-Key": "sandbox-api-key"}
            )
        assert made.status_code == 201
        assert next(iter(vendors.generic.state["notes"].values()))["text"] == "hi"


async def test_the_fixture_works_in_async_tests_and_starts_reset(vendors: Vendors) -> None:
    assert set(vendors.urls) == set(ALL)
    assert len(vendors) == len(ALL)
    assert all(len(sim.requests) == 0 for sim in vendors)
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            vendors.stripe.url + "/v1/customers",
            headers={"Authorization": "Bearer sk_test_sandbox"},
        )
    assert answer.json()["data"] == []
    vendors.stripe.faults.outage(60)  # cleared for the next test by the fixture's reset


def test_the_next_test_gets_clean_simulators(vendors: Vendors) -> None:
    assert vendors.stripe.faults.settings.outage_until is None
    assert "stripe" in vendors


async def test_a_reset_without_a_server_raises_in_process() -> None:
    sim = StripeSimulator()
    sim.faults.reset(1)
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stripe.test") as client:
        with pytest.raises(ConnectionResetError):
            await client.get("/v1/customers")
        ok = await client.get("/v1/customers", headers={"Authorization": "Bearer sk_test_sandbox"})
    assert ok.status_code == 200
