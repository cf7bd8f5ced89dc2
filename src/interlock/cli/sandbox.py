"""``interlock sandbox``: serve the vendor simulators, and steer running ones.

``run`` serves simulators in the foreground on fixed ports (``--port-base`` plus
each vendor's place: stripe, shopify, hubspot, zendesk, slack, generic) and
prints each base URL with its test credentials. ``faults``, ``reset`` and
``state`` call the control endpoints of a simulator running anywhere, found by
the same ``--port-base`` or given by ``--url``::

    interlock sandbox run --vendor stripe --vendor slack --port-base 9100 --seed 7
    interlock sandbox faults stripe --error-rate 0.1 --latency 50ms --rate-limit 3
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from interlock.cli.common import console, dump_json, friendly
from interlock.durations import seconds
from interlock.errors import ConfigurationError

sandbox = typer.Typer(
    help="Vendor simulators (Stripe, Shopify, HubSpot, Zendesk, Slack, generic) for tests.",
    no_args_is_help=True,
)

HostOpt = Annotated[str, typer.Option(help="Address the simulators listen on.")]
PortBaseOpt = Annotated[
    int,
    typer.Option(help="First port; each vendor listens on port-base + its offset.", min=1),
]
UrlOpt = Annotated[
    str | None, typer.Option(help="The simulator's base URL (default: from --host/--port-base).")
]
VendorArg = Annotated[str, typer.Argument(help="stripe, shopify, hubspot, zendesk, slack, generic")]


def _url(vendor: str, url: str | None, host: str, port_base: int) -> str:
    from interlock.sandbox.runner import PORT_OFFSETS

    if url:
        return url.rstrip("/")
    if vendor not in PORT_OFFSETS:
        raise ConfigurationError(f"unknown vendor {vendor!r}; known: {', '.join(PORT_OFFSETS)}")
    return f"http://{host}:{port_base + PORT_OFFSETS[vendor]}"


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    try:
        response = httpx.request(method, url, json=body, timeout=10.0)
    except httpx.HTTPError as exc:
        raise ConfigurationError(f"cannot reach the simulator at {url}: {exc}") from None
    if response.status_code != 200:
        raise ConfigurationError(f"the simulator refused: {response.text}")
    return response.json()


@sandbox.command("run")
@friendly
def run(
    vendor: Annotated[
        list[str] | None, typer.Option("--vendor", help="A vendor to serve (repeat); default all.")
    ] = None,
    port_base: PortBaseOpt = 9100,
    seed: Annotated[int, typer.Option(help="Seed for ids and injected faults.")] = 0,
    host: HostOpt = "127.0.0.1",
) -> None:
    """Serve simulators in the foreground until Ctrl-C, printing URLs and credentials."""
    from interlock.sandbox.runner import ALL, serve

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with serve(tuple(vendor or ALL), seed=seed, host=host, port_base=port_base) as sims:
            table = Table("vendor", "base URL", "credentials")
            for sim in sims:
                creds = "\n".join(f"{k}={v}" for k, v in sim.credentials.items())
                table.add_row(sim.name, sim.url, creds)
            console.print(table)
            console.print("serving; Ctrl-C to stop", soft_wrap=True)
            await stop.wait()

    asyncio.run(main())


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        key, sep, new = value.partition("=")
        if not sep or not key or not new:
            raise ConfigurationError(f"{option} takes FIELD=VALUE, got {value!r}")
        out[key] = new
    return out


@sandbox.command("faults")
@friendly
def faults(
    vendor: VendorArg,
    url: UrlOpt = None,
    host: HostOpt = "127.0.0.1",
    port_base: PortBaseOpt = 9100,
    clear: Annotated[bool, typer.Option(help="Remove every fault first.")] = False,
    error_rate: Annotated[
        float | None, typer.Option(help="Share of requests (0-1) failing.")
    ] = None,
    error_status: Annotated[int | None, typer.Option(help="Status of --error-rate errors.")] = None,
    latency: Annotated[str | None, typer.Option(help="Added to every request (50ms).")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="The next N requests get 429.")] = None,
    retry_after: Annotated[str | None, typer.Option(help="Retry-After of 429s (2s).")] = None,
    fail: Annotated[int | None, typer.Option(help="The next N requests get --status.")] = None,
    status: Annotated[int | None, typer.Option(help="Status of --fail errors (503).")] = None,
    timeout: Annotated[int | None, typer.Option(help="Hold the next N requests.")] = None,
    hold: Annotated[str | None, typer.Option(help="How long --timeout holds (30s).")] = None,
    reset: Annotated[int | None, typer.Option(help="Reset the next N connections.")] = None,
    outage: Annotated[str | None, typer.Option(help="503 everything for this long (10s).")] = None,
    token_ttl: Annotated[str | None, typer.Option(help="Lifetime of new OAuth tokens.")] = None,
    expire_tokens: Annotated[bool, typer.Option(help="Expire every issued token.")] = False,
    rename: Annotated[list[str] | None, typer.Option(help="Drift: OLD=NEW field name.")] = None,
    enum: Annotated[list[str] | None, typer.Option(help="Drift: FIELD=unseen value.")] = None,
    na: Annotated[list[str] | None, typer.Option(help="Drift: FIELD answers 'NA'.")] = None,
) -> None:
    """Set faults on a running simulator and print its fault settings."""
    body: dict[str, Any] = {"clear": clear, "expire_tokens": expire_tokens}
    durations = {
        "latency": latency,
        "retry_after": retry_after,
        "hold": hold,
        "token_ttl": token_ttl,
        "outage_for": outage,
    }
    body.update({k: seconds(v) for k, v in durations.items() if v is not None})
    numbers = {
        "error_rate": error_rate,
        "error_status": error_status,
        "rate_limit_next": rate_limit,
        "fail_next": fail,
        "fail_status": status,
        "timeout_next": timeout,
        "reset_next": reset,
    }
    body.update({k: v for k, v in numbers.items() if v is not None})
    if rename or enum or na:
        body["drift"] = {
            "rename": _pairs(rename, "--rename"),
            "enum": _pairs(enum, "--enum"),
            "na": list(na or []),
        }
    dump_json(_call("POST", _url(vendor, url, host, port_base) + "/_sandbox/faults", body))


@sandbox.command("reset")
@friendly
def reset(
    vendor: VendorArg,
    url: UrlOpt = None,
    host: HostOpt = "127.0.0.1",
    port_base: PortBaseOpt = 9100,
) -> None:
    """Empty a running simulator's state, faults and request log."""
    _call("POST", _url(vendor, url, host, port_base) + "/_sandbox/reset")
    console.print(f"{vendor} reset")


@sandbox.command("state")
@friendly
def state(
    vendor: VendorArg,
    url: UrlOpt = None,
    host: HostOpt = "127.0.0.1",
    port_base: PortBaseOpt = 9100,
) -> None:
    """Print a running simulator's state, credentials and request count as JSON."""
    dump_json(_call("GET", _url(vendor, url, host, port_base) + "/_sandbox/state"))
