"""The HubSpot CRM simulator over HTTP, and its OAuth token lifecycle."""

from __future__ import annotations

import httpx

from interlock.sandbox import HubSpotSimulator, Vendors, run

PAT = {"Authorization": "Bearer pat-na1-sandbox-0000-0000-000000000000"}


def test_objects_search_upsert_and_associations(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.hubspot.url, headers=PAT) as http:
        contact = http.post(
            "/crm/v3/objects/contacts",
            json={"properties": {"email": "jo@x.test", "firstname": "Jo"}},
        )
        assert contact.status_code == 201
        body = contact.json()
        assert body["properties"]["email"] == "jo@x.test"
        assert body["id"].isdigit() and body["archived"] is False
        assert contact.headers["x-hubspot-ratelimit-max"] == "100"
        assert contact.headers["x-hubspot-ratelimit-remaining"] == "99"
        conflict = http.post(
            "/crm/v3/objects/contacts", json={"properties": {"email": "JO@x.test"}}
        )
        assert conflict.status_code == 409
        assert conflict.json()["category"] == "CONFLICT"
        invalid = http.post("/crm/v3/objects/deals", json={"properties": {"dealstage": "won"}})
        assert invalid.status_code == 400
        assert invalid.json()["category"] == "VALIDATION_ERROR"
        assert "INVALID_OPTION" in invalid.json()["message"]
        missing = http.get("/crm/v3/objects/contacts/1")
        assert missing.status_code == 404
        assert missing.json()["category"] == "OBJECT_NOT_FOUND"
        assert missing.json()["correlationId"]
        by_email = http.get("/crm/v3/objects/contacts/jo@x.test", params={"idProperty": "email"})
        assert by_email.json()["id"] == body["id"]
        upsert = http.post(
            "/crm/v3/objects/contacts/batch/upsert",
            json={
                "inputs": [
                    {"idProperty": "email", "id": "jo@x.test", "properties": {"lastname": "Doe"}},
                    {"idProperty": "email", "id": "new@x.test", "properties": {"firstname": "New"}},
                ]
            },
        ).json()
        assert upsert["status"] == "COMPLETE"
        assert [r["new"] for r in upsert["results"]] == [False, True]
        assert upsert["results"][0]["id"] == body["id"]
        found = http.post(
            "/crm/v3/objects/contacts/search",
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "lastname", "operator": "EQ", "value": "doe"}]}
                ]
            },
        ).json()
        assert found["total"] == 1
        assert found["results"][0]["id"] == body["id"]
        deal = http.post(
            "/crm/v3/objects/deals",
            json={"properties": {"dealname": "Big", "dealstage": "closedwon", "amount": "100"}},
        ).json()
        linked = http.put(
            f"/crm/v4/objects/deals/{deal['id']}/associations/default/contacts/{body['id']}"
        )
        assert linked.status_code == 200
        assert linked.json()["results"][0]["associationSpec"]["associationTypeId"] == 3
        listed = http.get(f"/crm/v4/objects/contacts/{body['id']}/associations/deals").json()
        assert listed["results"][0]["toObjectId"] == int(deal["id"])
        note = http.post(
            "/crm/v3/objects/notes",
            json={
                "properties": {"hs_note_body": "Shipped", "hs_timestamp": "2026-01-01T00:00:00Z"},
                "associations": [
                    {
                        "to": {"id": deal["id"]},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214}
                        ],
                    }
                ],
            },
        )
        assert note.status_code == 201
        shown = http.get(f"/crm/v3/objects/deals/{deal['id']}", params={"associations": "notes"})
        assert shown.json()["associations"]["notes"]["results"][0]["id"] == note.json()["id"]


def test_paging_next_after(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.hubspot.url, headers=PAT) as http:
        for i in range(5):
            http.post("/crm/v3/objects/companies", json={"properties": {"name": f"co{i}"}})
        names: list[str] = []
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 2, **({"after": after} if after else {})}
            page = http.get("/crm/v3/objects/companies", params=params).json()
            names += [c["properties"]["name"] for c in page["results"]]
            after = page.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
    assert names == [f"co{i}" for i in range(5)]


def test_ten_second_window_answers_429_with_policy_name() -> None:
    with (
        run((HubSpotSimulator(per_ten_seconds=2),)) as vendors,
        httpx.Client(base_url=vendors.hubspot.url, headers=PAT) as http,
    ):
        statuses = [http.get("/crm/v3/objects/contacts").status_code for _ in range(3)]
        limited = http.get("/crm/v3/objects/contacts")
    assert statuses == [200, 200, 429]
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert limited.json()["errorType"] == "RATE_LIMIT"


def _token(url: str, **fields: str) -> httpx.Response:
    base = {"client_id": "hubspot-sandbox-client", "client_secret": "hubspot-sandbox-secret"}
    return httpx.post(url + "/oauth/v1/token", data={**base, **fields})


def test_oauth_refresh_expiry_and_rotation_reuse_revokes_the_family(vendors: Vendors) -> None:
    hub = vendors.hubspot
    refresh = hub.credentials["refresh_token"]
    first = _token(hub.url, grant_type="refresh_token", refresh_token=refresh).json()
    assert set(first) == {"token_type", "access_token", "refresh_token", "expires_in"}
    assert first["refresh_token"] == refresh  # HubSpot keeps refresh tokens by default
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert httpx.get(hub.url + "/crm/v3/objects/contacts", headers=bearer).status_code == 200
    hub.faults.expire_tokens()
    expired = httpx.get(hub.url + "/crm/v3/objects/contacts", headers=bearer)
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    hub.faults.set(rotate_refresh_tokens=True)
    rotated = _token(hub.url, grant_type="refresh_token", refresh_token=refresh).json()
    assert rotated["refresh_token"] != refresh
    reused = _token(hub.url, grant_type="refresh_token", refresh_token=refresh)
    assert reused.status_code == 400
    assert reused.json()["status"] == "BAD_REFRESH_TOKEN"
    assert reused.json()["error"] == "invalid_grant"
    newest = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert httpx.get(hub.url + "/crm/v3/objects/contacts", headers=newest).status_code == 401
    after = _token(hub.url, grant_type="refresh_token", refresh_token=rotated["refresh_token"])
    assert after.json()["error"] == "invalid_grant"
    machine = _token(hub.url, grant_type="client_credentials").json()
    assert "refresh_token" not in machine
    assert machine["expires_in"] == 1800


def test_custom_unique_properties_allow_upsert_by_them(vendors: Vendors) -> None:
    vendors.hubspot.schema.define("deals", "order_id", unique=True)
    inputs = [{"idProperty": "order_id", "id": "1042", "properties": {"dealname": "Order 1042"}}]
    with httpx.Client(base_url=vendors.hubspot.url, headers=PAT) as http:
        first = http.post("/crm/v3/objects/deals/batch/upsert", json={"inputs": inputs}).json()
        again = http.post("/crm/v3/objects/deals/batch/upsert", json={"inputs": inputs}).json()
        unknown = http.post(
            "/crm/v3/objects/contacts/batch/upsert",
            json={"inputs": [{"idProperty": "firstname", "id": "Jo", "properties": {}}]},
        )
    assert first["results"][0]["new"] is True
    assert again["results"][0]["new"] is False
    assert again["results"][0]["id"] == first["results"][0]["id"]
    assert unknown.status_code == 400
