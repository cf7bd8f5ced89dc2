"""The Slack Web API simulator over HTTP."""

from __future__ import annotations

import httpx

from interlock.sandbox import SlackSimulator, Vendors, run

BOT = {"Authorization": "Bearer xoxb-sandbox"}


def test_auth_test_and_post_message_json_and_form(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.slack.url + "/api", headers=BOT) as http:
        me = http.post("/auth.test").json()
        assert me["ok"] is True
        assert me["team_id"] == "T0SANDBOX"
        sent = http.post("/chat.postMessage", json={"channel": "#general", "text": "hi"})
        assert sent.status_code == 200
        body = sent.json()
        assert body["ok"] is True
        assert body["channel"].startswith("C")
        assert body["message"]["text"] == "hi"
        assert body["warning"] == "missing_charset"
        form = http.post(
            "/chat.postMessage",
            data={"channel": body["channel"], "text": "again", "thread_ts": body["ts"]},
        ).json()
        assert form["message"]["thread_ts"] == body["ts"]
        assert "warning" not in form
    assert [m["text"] for m in vendors.slack.state["messages"].values()] == ["hi", "again"]


def test_api_errors_are_http_200_with_ok_false(vendors: Vendors) -> None:
    url = vendors.slack.url + "/api/chat.postMessage"
    cases = {
        "channel_not_found": ({"channel": "#nope", "text": "x"}, BOT),
        "no_text": ({"channel": "#general"}, BOT),
        "not_in_channel": ({"channel": "#design", "text": "x"}, BOT),
        "is_archived": ({"channel": "#old-launch", "text": "x"}, BOT),
        "invalid_auth": ({"channel": "#general", "text": "x"}, {"Authorization": "Bearer xoxb-no"}),
        "not_authed": ({"channel": "#general", "text": "x"}, {}),
    }
    for error, (data, headers) in cases.items():
        response = httpx.post(url, data=data, headers=headers)
        assert response.status_code == 200
        assert response.json() == {"ok": False, "error": error}
    unknown = httpx.post(vendors.slack.url + "/api/chat.nothing", headers=BOT)
    assert unknown.json()["error"] == "unknown_method"


def test_conversations_list_pages_with_next_cursor(vendors: Vendors) -> None:
    with httpx.Client(base_url=vendors.slack.url + "/api", headers=BOT) as http:
        names: list[str] = []
        cursor = ""
        while True:
            page = http.get(
                "/conversations.list",
                params={"limit": 2, "cursor": cursor, "types": "public_channel,private_channel"},
            ).json()
            names += [c["name"] for c in page["channels"]]
            cursor = page["response_metadata"]["next_cursor"]
            if not cursor:
                break
        bad = http.get("/conversations.list", params={"cursor": "???"}).json()
    assert names == ["general", "random", "alerts", "revops", "old-launch", "design"]
    assert bad == {"ok": False, "error": "invalid_cursor"}


def test_post_message_is_rate_limited_per_channel() -> None:
    with (
        run((SlackSimulator(post_burst=2),)) as vendors,
        httpx.Client(base_url=vendors.slack.url + "/api", headers=BOT) as http,
    ):
        posts = [
            http.post("/chat.postMessage", data={"channel": "#general", "text": "x"})
            for _ in range(3)
        ]
        other = http.post("/chat.postMessage", data={"channel": "#random", "text": "x"})
    assert [p.status_code for p in posts] == [200, 200, 429]
    assert posts[2].json() == {"ok": False, "error": "ratelimited"}
    assert int(posts[2].headers["retry-after"]) >= 1
    assert other.status_code == 200


def test_rotating_tokens_expire(vendors: Vendors) -> None:
    slack = vendors.slack
    granted = httpx.post(
        slack.url + "/api/oauth.v2.access",
        data={
            "grant_type": "refresh_token",
            "refresh_token": slack.credentials["refresh_token"],
            "client_id": slack.credentials["client_id"],
            "client_secret": slack.credentials["client_secret"],
        },
    ).json()
    assert granted["ok"] is True
    assert granted["access_token"].startswith("xoxe.xoxb-")
    bearer = {"Authorization": f"Bearer {granted['access_token']}"}
    assert httpx.post(slack.url + "/api/auth.test", headers=bearer).json()["ok"] is True
    slack.faults.expire_tokens()
    expired = httpx.post(slack.url + "/api/auth.test", headers=bearer).json()
    assert expired == {"ok": False, "error": "token_expired"}
