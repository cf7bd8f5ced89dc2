"""The generic JSON service over HTTP: CRUD, auth modes, idempotency, OAuth rotation."""

from __future__ import annotations

import httpx

from interlock.sandbox import GenericSimulator, Vendors, run

KEY = {"X-API-Key": "sandbox-api-key"}


def test_crud_pagination_and_rate_limit_headers(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.generic.url, headers=KEY) as http:
        made = http.post("/v1/orders", json={"sku": "mug", "qty": 2})
        assert made.status_code == 201
        order = made.json()
        assert made.headers["ratelimit-limit"] == "600"
        patched = http.patch(f"/v1/orders/{order['id']}", json={"qty": 3}).json()
        assert (patched["sku"], patched["qty"]) == ("mug", 3)
        replaced = http.put(f"/v1/orders/{order['id']}", json={"sku": "cup"}).json()
        assert "qty" not in replaced
        for i in range(4):
            http.post("/v1/orders", json={"n": i})
        first = http.get("/v1/orders", params={"limit": 3}).json()
        second = http.get("/v1/orders", params={"limit": 3, "cursor": first["next_cursor"]}).json()
        assert len(first["data"]) == 3 and first["has_more"] is True
        assert len(second["data"]) == 2 and second["next_cursor"] is None
        assert http.delete(f"/v1/orders/{order['id']}").status_code == 204
        gone = http.get(f"/v1/orders/{order['id']}")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "not_found"
        assert http.post("/v1/orders", content=b"[1]").status_code == 400


def test_idempotency_key_replay_and_conflict(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.generic.url, headers=KEY) as http:
        key = {"Idempotency-Key": "g-1"}
        first = http.post("/v1/payments", json={"amount": 5}, headers=key)
        again = http.post("/v1/payments", json={"amount": 5}, headers=key)
        other = http.post("/v1/payments", json={"amount": 6}, headers=key)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(vendors.generic.state["payments"]) == 1


def test_auth_modes_are_configurable() -> None:
    with run((GenericSimulator(auth=("bearer",)),)) as vendors:
        url = vendors.generic.url + "/v1/things"
        by_key = httpx.get(url, headers=KEY)
        by_bearer = httpx.get(url, headers={"Authorization": "Bearer sandbox-bearer-token"})
    assert by_key.status_code == 401
    assert by_key.json()["error"]["code"] == "unauthorized"
    assert by_bearer.status_code == 200


def test_oauth_rotation_short_ttl_and_family_revocation(vendors: Vendors) -> None:
    g = vendors.generic
    creds = {
        "client_id": g.credentials["client_id"],
        "client_secret": g.credentials["client_secret"],
    }
    g.faults.set(token_ttl=0.2)
    grant = httpx.post(
        g.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": g.credentials["refresh_token"],
            **creds,
        },
    ).json()
    assert grant["expires_in"] == 1
    bearer = {"Authorization": f"Bearer {grant['access_token']}"}
    assert httpx.get(g.url + "/v1/x", headers=bearer).status_code == 200
    import time

    time.sleep(0.25)
    expired = httpx.get(g.url + "/v1/x", headers=bearer)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "token_expired"
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    reuse = httpx.post(
        g.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": g.credentials["refresh_token"],
            **creds,
        },
    )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    later = httpx.post(
        g.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
            **creds,
        },
    )
    assert later.json()["error"] == "invalid_grant"
    wrong = httpx.post(g.url + "/oauth/token", data={"grant_type": "client_credentials"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
