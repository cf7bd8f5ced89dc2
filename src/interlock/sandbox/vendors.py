"""The running simulators, by vendor: what :func:`~interlock.sandbox.run` yields.

Each attribute is the simulator itself, with its ``url``, ``credentials``,
``faults``, ``state``, ``requests`` and ``send_webhook``; an attribute for a
vendor that was not started raises a clear error::

    vendors.stripe.url              # "http://127.0.0.1:53121"
    vendors["slack"].faults.outage(5)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from interlock.errors import ConfigurationError
from interlock.sandbox.generic import GenericSimulator
from interlock.sandbox.hubspot import HubSpotSimulator
from interlock.sandbox.shopify import ShopifySimulator
from interlock.sandbox.simulator import Simulator
from interlock.sandbox.slack import SlackSimulator
from interlock.sandbox.stripe import StripeSimulator
from interlock.sandbox.zendesk import ZendeskSimulator

S = TypeVar("S", bound=Simulator)


class Vendors:
    """Simulators by name; iterate for all of them."""

    def __init__(self, simulators: Sequence[Simulator]) -> None:
        self._by_name = {sim.name: sim for sim in simulators}

    def __getitem__(self, name: str) -> Simulator:
        try:
            return self._by_name[name]
        except KeyError:
            started = ", ".join(self._by_name) or "none"
            raise ConfigurationError(
                f"the {name} simulator is not running (started: {started}); "
                f"pass it in vendors=(...)"
            ) from None

    def __iter__(self) -> Iterator[Simulator]:
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)

    def _typed(self, name: str, cls: type[S]) -> S:
        sim = self[name]
        if not isinstance(sim, cls):
            raise ConfigurationError(
                f"the {name} simulator is a {type(sim).__name__}, not {cls.__name__}"
            )
        return sim

    @property
    def urls(self) -> dict[str, str]:
        return {name: sim.url for name, sim in self._by_name.items()}

    def reset(self) -> None:
        """Reset every simulator: empty state, no faults, an empty request log."""
        for sim in self:
            sim.reset()

    @property
    def stripe(self) -> StripeSimulator:
        return self._typed("stripe", StripeSimulator)

    @property
    def shopify(self) -> ShopifySimulator:
        return self._typed("shopify", ShopifySimulator)

    @property
    def hubspot(self) -> HubSpotSimulator:
        return self._typed("hubspot", HubSpotSimulator)

    @property
    def zendesk(self) -> ZendeskSimulator:
        return self._typed("zendesk", ZendeskSimulator)

    @property
    def slack(self) -> SlackSimulator:
        return self._typed("slack", SlackSimulator)

    @property
    def generic(self) -> GenericSimulator:
        return self._typed("generic", GenericSimulator)
