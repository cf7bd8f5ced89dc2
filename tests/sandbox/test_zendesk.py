"""The Zendesk Support simulator over HTTP."""

from __future__ import annotations

import httpx

from interlock.sandbox import Vendors

AUTH = ("agent@sandbox.test/token", "zendesk-sandbox-api-token")


def test_tickets_comments_users_and_validation(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.zendesk.url, auth=AUTH) as http:
        made = http.post(
            "/api/v2/tickets.json",
            json={
                "ticket": {
                    "subject": "Refund",
                    "comment": {"body": "Please refund"},
                    "priority": "high",
                    "requester": {"name": "Jo", "email": "jo@x.test"},
                }
            },
        )
        assert made.status_code == 201
        ticket = made.json()["ticket"]
        assert (ticket["status"], ticket["description"]) == ("new", "Please refund")
        assert made.headers["x-rate-limit"] == "700"
        requester = http.get(f"/api/v2/users/{ticket['requester_id']}.json").json()["user"]
        assert requester["email"] == "jo@x.test"
        updated = http.put(
            f"/api/v2/tickets/{ticket['id']}.json",
            json={"ticket": {"status": "solved", "comment": {"body": "Done", "public": False}}},
        )
        assert updated.json()["ticket"]["status"] == "solved"
        comments = http.get(f"/api/v2/tickets/{ticket['id']}/comments.json").json()
        assert [c["body"] for c in comments["comments"]] == ["Please refund", "Done"]
        assert comments["comments"][1]["public"] is False
        invalid = http.post("/api/v2/tickets.json", json={"ticket": {"subject": "No body"}})
        assert invalid.status_code == 422
        assert invalid.json()["error"] == "RecordInvalid"
        assert invalid.json()["details"]["description"][0]["error"] == "BlankValue"
        assert http.get("/api/v2/tickets/999.json").json() == {
            "error": "RecordNotFound",
            "description": "Not found",
        }
        upsert = http.post(
            "/api/v2/users/create_or_update.json",
            json={"user": {"name": "Jo D", "email": "jo@x.test"}},
        )
        assert upsert.status_code == 200
        assert upsert.json()["user"]["id"] == requester["id"]
    denied = httpx.get(vendors.zendesk.url + "/api/v2/tickets.json", auth=("x", "y"))
    assert denied.status_code == 401
    assert denied.json() == {"error": "Couldn't authenticate you"}


def test_cursor_and_offset_pagination(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.zendesk.url, auth=AUTH) as http:
        for i in range(5):
            http.post(
                "/api/v2/tickets.json",
                json={"ticket": {"subject": f"t{i}", "comment": {"body": "x"}}},
            )
        subjects: list[str] = []
        url: str | None = vendors.zendesk.url + "/api/v2/tickets.json?page[size]=2"
        while url:
            page = http.get(url).json()
            subjects += [t["subject"] for t in page["tickets"]]
            url = page["links"]["next"] if page["meta"]["has_more"] else None
        assert subjects == [f"t{i}" for i in range(5)]
        offset = http.get("/api/v2/tickets.json", params={"per_page": 2}).json()
        assert offset["count"] == 5
        assert offset["next_page"].endswith("page=2&per_page=2")
        assert offset["previous_page"] is None


def test_ticket_creation_honours_idempotency_keys(vendors: Vendors) -> None:
    body = {"ticket": {"subject": "Once", "comment": {"body": "only once"}}}
    with httpx.Client(base_url=vendors.zendesk.url, auth=AUTH) as http:
        key = {"Idempotency-Key": "t-1"}
        first = http.post("/api/v2/tickets.json", json=body, headers=key)
        again = http.post("/api/v2/tickets.json", json=body, headers=key)
        other = http.post(
            "/api/v2/tickets.json", json={"ticket": {**body["ticket"], "subject": "x"}}, headers=key
        )
    assert first.headers["x-idempotency-lookup"] == "miss"
    assert again.headers["x-idempotency-lookup"] == "hit"
    assert again.json() == first.json()
    assert other.status_code == 400
    assert len(vendors.zendesk.state["tickets"]) == 1


def test_oauth_refresh_tokens_rotate_and_reuse_is_invalid_grant(vendors: Vendors) -> None:
    zd = vendors.zendesk
    creds = {"client_id": "zendesk-sandbox-client", "client_secret": "zendesk-sandbox-secret"}
    old = zd.credentials["refresh_token"]
    fresh = httpx.post(
        zd.url + "/oauth/tokens",
        json={"grant_type": "refresh_token", "refresh_token": old, **creds},
    ).json()
    assert fresh["refresh_token"] != old
    assert fresh["token_type"] == "bearer"
    bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert httpx.get(zd.url + "/api/v2/users/me.json", headers=bearer).status_code == 200
    reuse = httpx.post(
        zd.url + "/oauth/tokens",
        json={"grant_type": "refresh_token", "refresh_token": old, **creds},
    )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    revoked = httpx.get(zd.url + "/api/v2/users/me.json", headers=bearer)
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "invalid_token"
