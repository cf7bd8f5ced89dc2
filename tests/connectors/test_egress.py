"""The egress guard: non-public addresses are refused after resolution, unless allowed, and
the connection goes to the address that was checked. No test sends traffic off this machine:
refusals happen before any connection, and allowed connections go to the loopback sandbox."""

from __future__ import annotations

import ipaddress

import pytest

from interlock.connectors import ApiKey, Egress, HttpConnector
from interlock.connectors.egress import is_public
from interlock.errors import ConfigurationError, EgressDenied
from interlock.sandbox import GenericSimulator


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_only_public_unicast_addresses_pass_by_default(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
    assert Egress().permits("h", 443, ipaddress.ip_address(address)) is public


def test_allow_entries_are_networks_addresses_host_ports_or_urls() -> None:
    egress = Egress(allow=("10.20.0.0/16", "erp.internal:8443", "http://127.0.0.1:9000"))
    ip = ipaddress.ip_address
    assert egress.permits("x", 1, ip("10.20.3.4"))
    assert not egress.permits("x", 1, ip("10.21.0.1"))
    assert egress.permits("erp.internal", 8443, ip("10.9.9.9"))
    assert not egress.permits("erp.internal", 443, ip("10.9.9.9"))
    assert egress.permits("127.0.0.1", 9000, ip("127.0.0.1"))
    assert not egress.permits("127.0.0.1", 9001, ip("127.0.0.1"))
    assert Egress(check=False).permits("x", 1, ip("127.0.0.1"))
    with pytest.raises(ConfigurationError, match="egress allow entry"):
        Egress(allow=("http://",))


@pytest.mark.parametrize("resolved", ["10.0.0.7", "169.254.169.254", "::ffff:192.168.0.1"])
async def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(
    resolved: str, connectors: list[HttpConnector]
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return [resolved]

    crm = HttpConnector("crm", base_url="https://crm.example.test", resolver=resolver)
    connectors.append(crm)
    with pytest.raises(EgressDenied, match=f"resolves to {resolved}") as refused:
        await crm.get("/v1/customers")
    assert (refused.value.host, refused.value.address) == ("crm.example.test", resolved)
    assert crm.runtime.metrics.calls[("crm", "GET /v1/customers", "permanent")] == 1


async def test_loopback_is_refused_unless_allowed(
    generic: GenericSimulator, connectors: list[HttpConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox's own port is allowed process-wide (see conftest); another loopback
    # port, or the same one under another name, is not.
    other = generic.url.rsplit(":", 1)[0] + ":9"
    crm = HttpConnector("crm", base_url=other)
    connectors.append(crm)
    with pytest.raises(EgressDenied):
        await crm.get("/v1/customers")
    monkeypatch.setenv("INTERLOCK_EGRESS_ALLOW", "127.0.0.0/8")
    with pytest.raises(Exception, match="connect_error"):
        await crm.get("/v1/customers")  # now allowed: refused by the OS, not by the guard


async def test_the_connection_is_pinned_to_the_checked_address(
    generic: GenericSimulator, connectors: list[HttpConnector]
) -> None:
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a rebinding resolver
    port = int(generic.url.rsplit(":", 1)[1])

    async def resolver(host: str, port: int) -> list[str]:
        return next(answers)

    crm = HttpConnector(
        "crm",
        base_url=f"http://crm.internal.test:{port}",
        auth=ApiKey(secret="generic-key"),
        egress=Egress(allow=(f"crm.internal.test:{port}",)),
        resolver=resolver,
    )
    connectors.append(crm)
    await crm.get("/v1/customers")
    await crm.get("/v1/customers")  # the kept-alive connection: no second resolution
    seen = generic.requests.all()
    assert [e.headers["host"] for e in seen] == [f"crm.internal.test:{port}"] * 2
