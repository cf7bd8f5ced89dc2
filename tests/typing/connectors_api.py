"""A typed usage file of the connectors API; mypy checks it (it is not run)."""

from __future__ import annotations

from pydantic import BaseModel

from interlock import Context, Contract, Interlock
from interlock.connectors import (
    ApiKey,
    BreakerPolicy,
    Connector,
    HttpConnector,
    OAuth2RefreshToken,
    Probe,
    Rate,
    Timeouts,
)

app = Interlock("typing-connectors", "sqlite:///typing.db")

crm: HttpConnector = app.connector(
    HttpConnector(
        "crm",
        base_url="https://crm.acme.test",
        auth=ApiKey(secret="crm-api-key"),
        rate=Rate(10, per="1s"),
        breaker=BreakerPolicy(failure_ratio=0.5, min_calls=20, cooldown="30s"),
        timeouts=Timeouts(connect="5s", total="30s"),
        probe="/v1/ping",
    )
)
erp = app.connector(
    HttpConnector(
        "erp",
        base_url="https://erp.acme.test",
        auth=OAuth2RefreshToken(
            token_url="/oauth/token",
            client_id="interlock",
            client_secret="erp-client-secret",
            refresh_token="erp-refresh-token",
        ),
    )
)
app.dry_run_flows.add("note")


class Deal(BaseModel):
    id: str
    stage: str


class Acme(Connector):
    idempotency_header = "Acme-Idempotency-Key"

    def probes(self) -> tuple[Probe, ...]:
        return (Probe("me", "/v1/me"),)

    async def find_deal(self, order_id: str) -> Deal:
        response = await self.request(
            "GET", "/v1/deals", params={"order": order_id}, operation="find_deal"
        )
        return Deal.model_validate(response.json())


class OrderShipped(Contract, event="order.shipped", subject="order_id"):
    order_id: str


@app.flow(OrderShipped, owner="revops@acme.test")
async def note(event: OrderShipped, ctx: Context) -> None:
    http: HttpConnector = ctx.connector(HttpConnector)
    anything: Connector = ctx.connector("erp")
    deal: Deal = await http.call("GET", f"/v1/deals/{event.order_id}", model=Deal)
    await ctx.step("add-note", http.post, "/v1/notes", {"deal": deal.id})
    await anything.request("POST", "/v1/audit", json={"order": event.order_id}, account="a7")
    key: str = ctx.call_key()
    ctx.log.info("noted", key=key)
