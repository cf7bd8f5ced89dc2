"""OAuth2 against the generic simulator's token endpoint: rotation persisted before use,
refresh before expiry, a 401 forcing one refresh, single-flight refreshes, invalid_grant
pausing the connection until re-authorization, and credential expiry warnings."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from structlog.testing import capture_logs

from interlock import Interlock
from interlock.connectors import HttpConnector, OAuth2ClientCredentials, OAuth2RefreshToken
from interlock.connectors.tokenset import TokenSet
from interlock.errors import ConnectionPaused
from interlock.sandbox import GenericSimulator

CLIENT = "generic-sandbox-client"


@pytest.fixture
def oauth_env(generic: GenericSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_CRM_CLIENT_SECRET", "generic-sandbox-secret")


def refresh_auth(**options: object) -> OAuth2RefreshToken:
    return OAuth2RefreshToken(
        token_url="/oauth/token",
        client_id=CLIENT,
        client_secret="crm-client-secret",
        refresh_token="crm-refresh-token",
        **options,
    )


def seed(app: Interlock, value: str) -> None:
    app.secrets.set("crm-refresh-token", value, actor="ops@acme.test", now=time.time())


def token_requests(generic: GenericSimulator) -> int:
    return len(generic.requests.matching("POST", "/oauth/token"))


@pytest.fixture
def crm(
    oauth_env: None, real_app: Interlock, generic: GenericSimulator, connectors: list[HttpConnector]
) -> HttpConnector:
    seed(real_app, generic.credentials["refresh_token"])
    made = real_app.connector(HttpConnector("crm", base_url=generic.url, auth=refresh_auth()))
    connectors.append(made)
    return made


def stored(app: Interlock) -> TokenSet:
    app.secrets.forget()
    token = TokenSet.decode(app.secrets.resolve("connector.crm.oauth"))
    assert token is not None
    return token


async def test_rotated_tokens_are_persisted_before_they_are_used(
    crm: HttpConnector, real_app: Interlock, generic: GenericSimulator
) -> None:
    await crm.get("/v1/customers")
    token = stored(real_app)
    assert token.refresh_token not in (None, generic.credentials["refresh_token"]), "rotated"
    (info,) = [s for s in real_app.secrets.list() if s.name == "connector.crm.oauth"]
    api_call = generic.requests.matching("GET", "/v1/customers")[0]
    assert info.created_at <= api_call.at, "stored before the first call that used it"
    assert api_call.headers["authorization"] == f"Bearer {token.access_token}"
    assert b"at_" not in real_app.store.current_secret("connector.crm.oauth").token  # type: ignore[union-attr]

    generic.faults.expire_tokens()  # the vendor expires every access token early
    await crm.get("/v1/customers")  # 401 → one refresh (with the rotated token) → retried
    assert [e.status for e in generic.requests.all()] == [200, 200, 401, 200, 200]
    assert token_requests(generic) == 2
    assert stored(real_app).refresh_token != token.refresh_token


async def test_tokens_are_refreshed_before_they_expire(
    crm: HttpConnector, generic: GenericSimulator
) -> None:
    generic.faults.set(token_ttl=1.0)
    await crm.get("/v1/customers")
    await asyncio.sleep(0.85)  # within a fifth of the lifetime of expiry: refresh first
    await crm.get("/v1/customers")
    assert token_requests(generic) == 2
    assert 401 not in [e.status for e in generic.requests.all()]


async def test_concurrent_calls_refresh_once(
    crm: HttpConnector, real_app: Interlock, generic: GenericSimulator
) -> None:
    other_process = Interlock("other", real_app.database_url)  # the same store, another app
    try:
        twin = other_process.connector(
            HttpConnector("crm", base_url=generic.url, auth=refresh_auth())
        )
        await asyncio.gather(*(c.get("/v1/customers") for c in (crm, twin) for _ in range(10)))
        await twin.aclose()
    finally:
        other_process.close()
    assert token_requests(generic) == 1
    assert len(generic.requests.matching("GET", "/v1/customers")) == 20


async def test_invalid_grant_pauses_the_connection_until_reauthorized(
    crm: HttpConnector, real_app: Interlock, generic: GenericSimulator
) -> None:
    await crm.get("/v1/customers")
    generic.faults.expire_tokens()
    # Someone replays the first refresh token: the vendor revokes the whole family.
    async with httpx.AsyncClient() as client:
        replay = await client.post(
            generic.url + "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": generic.credentials["refresh_token"],
                "client_id": CLIENT,
                "client_secret": "generic-sandbox-secret",
            },
        )
    assert replay.json()["error"] == "invalid_grant"
    with capture_logs() as logs, pytest.raises(ConnectionPaused, match="needs re-authorization"):
        await crm.get("/v1/customers")
    (alert,) = [e for e in logs if e["event"] == "connector.needs_reauth"]
    assert alert["alert"] is True and alert["error"] == "invalid_grant"
    (state,) = real_app.store.connector_states()
    assert (state.connection, state.reason) == (
        "needs_reauth",
        alert["error"] + ": " + alert["description"],
    )
    calls = len(generic.requests.all())
    with pytest.raises(ConnectionPaused) as paused:
        await crm.get("/v1/customers")
    assert len(generic.requests.all()) == calls, "paused: nothing is sent"
    assert paused.value.retry_after == 300.0
    assert crm.runtime.metrics.alerts[("crm", "needs_reauth")] == 1

    # The operator authorizes again and stores the new refresh token: calls resume.
    fresh = generic.issuer.issue().refresh_token
    assert fresh is not None
    seed(real_app, fresh)
    await crm.get("/v1/customers")
    (state,) = real_app.store.connector_states()
    assert state.connection == "ok"


async def test_client_credentials(
    oauth_env: None, real_app: Interlock, generic: GenericSimulator, connectors: list[HttpConnector]
) -> None:
    auth = OAuth2ClientCredentials(
        token_url="/oauth/token", client_id=CLIENT, client_secret="crm-client-secret"
    )
    crm = real_app.connector(HttpConnector("crm", base_url=generic.url, auth=auth))
    connectors.append(crm)
    await asyncio.gather(*(crm.get("/v1/customers") for _ in range(5)))
    assert token_requests(generic) == 1
    token = stored(real_app)
    assert token.refresh_token is None and token.expires_at is not None
    body = generic.requests.matching("POST", "/oauth/token")[0].form()
    assert body["grant_type"] == "client_credentials"
    assert [c.name for c in crm.credentials()] == ["access token", "secret crm-client-secret"]


async def test_a_credential_close_to_expiry_raises_a_warning(
    crm: HttpConnector, real_app: Interlock, generic: GenericSimulator
) -> None:
    soon = time.time() + 3600
    real_app.secrets.set(
        "crm-refresh-token",
        generic.credentials["refresh_token"],
        actor="ops",
        now=time.time(),
        expires_at=soon,
    )
    with capture_logs() as logs:
        await crm.get("/v1/customers")  # calls look at their credentials now and then
        credentials = {c.name: c.expires_at for c in crm.credentials()}  # so do checks
    assert credentials["secret crm-refresh-token"] == soon
    assert credentials["access token"] is not None
    (warning,) = [e for e in logs if e["event"] == "connector.credential_expiring"]  # once
    assert warning["credential"] == "secret crm-refresh-token"
    assert 3500 < warning["seconds_left"] <= 3600
    metrics = crm.runtime.metrics
    assert metrics.expiry[("crm", "secret crm-refresh-token")] == soon
    assert metrics.alerts[("crm", "credential_expiring")] == 1
