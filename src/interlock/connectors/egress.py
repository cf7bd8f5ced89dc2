"""The egress guard: connectors reach public addresses only, unless told otherwise.

A connector's base URL is configuration, and configuration can be wrong or
hostile (a webhook-configured URL pointing at ``169.254.169.254``, an internal
admin API, the database). Every connection a connector opens goes through
:class:`GuardedBackend`: the host is resolved, each address is checked, and the
connection is made to the checked address itself — pinned, so a second DNS
answer (rebinding) cannot swap in another. TLS still verifies the host name.

Refused unless allowed: private, loopback, link-local, shared (CGNAT),
multicast, reserved and unspecified addresses, IPv4-mapped ones included.
Allow them explicitly, narrowest first::

    HttpConnector("erp", base_url="https://erp.internal", egress=Egress(allow=("10.20.0.0/16",)))
    allow_egress("http://127.0.0.1:8089")      # this process: one loopback port (the sandbox's)
    INTERLOCK_EGRESS_ALLOW="10.20.0.0/16,erp.internal:443"    # a deployment setting
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from interlock.errors import ConfigurationError, EgressDenied

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
ENV_ALLOW = "INTERLOCK_EGRESS_ALLOW"

_process_allow: set[str] = set()
_process_lock = threading.Lock()


def allow_egress(*entries: str) -> None:
    """Allow these destinations for every connector of this process.

    Each entry is a network (``10.0.0.0/8``), an address, a ``host:port`` or a URL
    (its host and port): the sandbox allows its own loopback ports this way.
    """
    for entry in entries:
        _Rules.parse([entry])  # fail early on a typo
    with _process_lock:
        _process_allow.update(entries)


def disallow_egress(*entries: str) -> None:
    """Take back :func:`allow_egress`."""
    with _process_lock:
        _process_allow.difference_update(entries)


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (a mapped IPv4 address is judged as one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True, slots=True)
class _Rules:
    networks: tuple[IPNetwork, ...]
    hosts: tuple[tuple[str, int | None], ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> _Rules:
        networks: list[IPNetwork] = []
        hosts: list[tuple[str, int | None]] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            parts = urlsplit(entry if "//" in entry else f"//{entry}")
            try:
                host, port = parts.hostname, parts.port
            except ValueError:
                host = None
            if not host:
                raise ConfigurationError(
                    f"egress allow entry {raw!r}: write a network (10.0.0.0/8), an address, "
                    "host:port or a URL"
                )
            hosts.append((host.lower(), port))
        return cls(tuple(networks), tuple(hosts))

    def allows(self, host: str, port: int, address: IPAddress) -> bool:
        if any(address in network for network in self.networks):
            return True
        names = {host.lower(), str(address)}
        return any(h in names and (p is None or p == port) for h, p in self.hosts)


@dataclass(frozen=True, slots=True)
class Egress:
    """Which non-public destinations a connector may reach (none by default).

    ``allow`` takes networks, addresses, ``host:port`` entries or URLs. The
    process-wide :func:`allow_egress` list and ``$INTERLOCK_EGRESS_ALLOW`` add to it.
    ``Egress(check=False)`` switches the guard off (a connector to an internal
    service that is trusted by design).
    """

    allow: tuple[str, ...] = ()
    check: bool = True

    def __post_init__(self) -> None:
        _Rules.parse(self.allow)

    def permits(self, host: str, port: int, address: IPAddress) -> bool:
        if not self.check or is_public(address):
            return True
        with _process_lock:
            entries = [*self.allow, *_process_allow]
        entries.extend(e for e in os.environ.get(ENV_ALLOW, "").split(",") if e.strip())
        return _Rules.parse(entries).allows(host, port, address)

    def choose(self, host: str, port: int, addresses: list[str]) -> str:
        """The first address of ``host`` it may connect to; EgressDenied when none."""
        refused = ""
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if self.permits(host, port, address):
                return text
            refused = refused or text
        raise EgressDenied(
            f"egress to {host}:{port} refused: it resolves to {refused or 'nothing'}, a "
            "private, loopback or link-local address; allow it with Egress(allow=(...)) on the "
            f"connector or ${ENV_ALLOW} if that is intended",
            host=host,
            address=refused,
        )


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system resolver (an address resolves to itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the egress policy permits."""

    def __init__(self, egress: Egress, resolver: Resolver | None = None) -> None:
        self._egress = egress
        self._resolve = resolver or system_resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        address = self._egress.choose(host, port, addresses)
        return await self._inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied(
            f"egress to unix socket {path} refused", host=f"unix:{path}", address=path
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a :class:`GuardedBackend` (no proxies from the environment:
    a proxy would make the connection the guard checks)."""

    def __init__(
        self,
        egress: Egress,
        *,
        limits: httpx.Limits,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
        super().__init__(verify=context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=1,  # a refused connect is retried once; nothing sent is ever retried here
            network_backend=GuardedBackend(egress, resolver),
        )
